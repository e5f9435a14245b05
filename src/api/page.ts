// The page at the API's root: HTML, CSS and script embedded in the binary (imported as text), a JSON
// snapshot (GET /v1/view) and a live stream of snapshots (GET /v1/view/events, server-sent events).
// Read-only: every route here is a GET and nothing on the page changes the node.
import { Hono } from "hono";
import { streamSSE } from "hono/streaming";
import htmlText from "./page/index.html" with { type: "text" };
import css from "./page/page.css" with { type: "text" };
import script from "./page/page.js" with { type: "text" };
import { buildView, Rates, type ViewSource } from "./view.ts";

// Bun's types call an .html import a bundle; imported as text it is the file's contents.
const html = htmlText as unknown as string;

/** How often the stream sends a snapshot (the page is at most this late). */
export const VIEW_EVERY_MS = 500;

// Nothing but our own files and our own API: no CDN, no inline script, no framing.
const CSP = "default-src 'none'; script-src 'self'; style-src 'self'; connect-src 'self'; img-src 'self' data:; base-uri 'none'; form-action 'none'; frame-ancestors 'none'";
const headers = (type: string) => ({ "content-type": type, "cache-control": "no-cache", "x-content-type-options": "nosniff", "content-security-policy": CSP, "referrer-policy": "no-referrer" });

export function pageRoutes(node: ViewSource): Hono {
  const app = new Hono();
  const rates = new Rates();
  app.get("/", (c) => c.body(html, 200, headers("text/html; charset=utf-8")));
  app.get("/page.css", (c) => c.body(css, 200, headers("text/css; charset=utf-8")));
  app.get("/page.js", (c) => c.body(script, 200, headers("text/javascript; charset=utf-8")));
  app.get("/v1/view", (c) => c.json(buildView(node, rates)));
  app.get("/v1/view/events", (c) =>
    streamSSE(c, async (stream) => {
      let open = true;
      stream.onAbort(() => void (open = false));
      while (open) {
        await stream.writeSSE({ event: "view", data: JSON.stringify(buildView(node, rates)) });
        await stream.sleep(VIEW_EVERY_MS);
      }
    }),
  );
  return app;
}
