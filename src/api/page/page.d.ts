// page.js is imported as text (src/api/page.ts): the module is its source.
declare const source: string;
export default source;
