// docs/grafana-dashboard.json: it parses, every query names only metrics this node exports (src/api/metrics.ts),
// and every exported metric family is on the dashboard.
import { describe, expect, test } from "bun:test";
import { readFileSync } from "node:fs";
import { join } from "node:path";
import { metricsRegistry } from "./metrics.ts";
import { fakeNode } from "./fixture.ts";

const FILE = join(import.meta.dir, "../../docs/grafana-dashboard.json");

function exported(): Set<string> {
  const node = { ...fakeNode(), routeStats: { forwarded: 0, forwardedBytes: 0 } };
  return new Set(metricsRegistry(node as never).getMetricsAsArray().map((m) => m.name));
}

function queries(d: any): string[] {
  const out: string[] = [];
  const walk = (panels: any[]) => {
    for (const p of panels ?? []) {
      for (const t of p.targets ?? []) if (t.expr) out.push(t.expr);
      walk(p.panels);
    }
  };
  walk(d.panels);
  for (const v of d.templating?.list ?? []) if (v.type === "query") out.push(typeof v.query === "string" ? v.query : v.query.query);
  return out;
}

describe("Grafana dashboard", () => {
  const dash = JSON.parse(readFileSync(FILE, "utf8"));
  const names = exported();

  test("parses, has a title, a uid and panels with unique ids", () => {
    expect(dash.title).toBe("trellis node");
    expect(dash.uid).toMatch(/^[a-z0-9-]+$/);
    const ids = dash.panels.map((p: any) => p.id);
    expect(new Set(ids).size).toBe(ids.length);
    expect(dash.panels.filter((p: any) => p.type !== "row").length).toBeGreaterThanOrEqual(10);
  });

  test("every query names only metrics the node exports", () => {
    const qs = queries(dash);
    expect(qs.length).toBeGreaterThan(10);
    for (const q of qs) {
      const used = q.match(/\btrellis_[a-z0-9_]+/g) ?? [];
      expect(used.length).toBeGreaterThan(0);
      for (const m of used) expect(names.has(m) ? m : `${m} (not exported; query: ${q})`).toBe(m);
      // Nothing else that looks like a metric name: identifiers before { or [ are trellis_ ones.
      for (const [, id] of q.matchAll(/([a-zA-Z_:][a-zA-Z0-9_:]*)\s*[{[]/g)) expect(id.startsWith("trellis_") ? id : `${id} in ${q}`).toBe(id);
    }
  });

  test("every exported metric family is on the dashboard", () => {
    const text = queries(dash).join("\n");
    for (const n of names) expect(text.includes(n) ? n : `${n} missing`).toBe(n);
  });
});
