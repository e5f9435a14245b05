// Types for the Prometheus text parser the e2e tests use (the package ships none).
declare module "parse-prometheus-text-format" {
  export default function parse(text: string): { name: string; help: string; type: string; metrics: { value: string; labels?: Record<string, string> }[] }[];
}
