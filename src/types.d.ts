// Module declarations for files Bun imports as text (the C helper embedded in the binary).
declare module "*.c" {
  const source: string;
  export default source;
}
