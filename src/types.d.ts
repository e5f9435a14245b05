// Module declarations for files Bun imports as text (the C helper embedded in the binary).
declare module "*.c" {
  const source: string;
  export default source;
}
// The page's stylesheet (src/api/page/), served from the binary; its HTML and script are typed in src/api/page.ts.
declare module "*.css" {
  const source: string;
  export default source;
}
