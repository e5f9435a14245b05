// The page's routes: embedded assets with a strict CSP and nothing fetched from elsewhere, the JSON
// snapshot, the live stream, throughput from byte counters, the decisions shown.
import { describe, expect, test } from "bun:test";
import { pageRoutes, VIEW_EVERY_MS } from "./page.ts";
import { buildView, Rates } from "./view.ts";
import { fakeNode, IDS } from "./fixture.ts";

describe("page routes", () => {
  const app = pageRoutes(fakeNode());

  test("GET / is the page, with a CSP that allows only this origin", async () => {
    const r = await app.request("/");
    expect(r.status).toBe(200);
    expect(r.headers.get("content-type")).toContain("text/html");
    const csp = r.headers.get("content-security-policy")!;
    expect(csp).toContain("default-src 'none'");
    expect(csp).toContain("script-src 'self'");
    expect(csp).toContain("frame-ancestors 'none'");
    const html = await r.text();
    expect(html).toContain('<script src="/page.js"');
    expect(html).toContain('href="/page.css"');
  });

  test("every asset is served and none names another host (no CDN)", async () => {
    for (const [path, type] of [["/", "text/html"], ["/page.css", "text/css"], ["/page.js", "text/javascript"]]) {
      const r = await app.request(path);
      expect(r.status).toBe(200);
      expect(r.headers.get("content-type")).toContain(type);
      const body = await r.text();
      // The only absolute URL allowed is the SVG namespace name (an identifier, never fetched).
      expect(body.replace("http://www.w3.org/2000/svg", "")).not.toMatch(/(https?:)?\/\/[a-z0-9.-]+\.[a-z]{2,}/i);
      expect(body).not.toMatch(/@import|url\(\s*['"]?http/i);
    }
    const css = await (await app.request("/page.css")).text();
    expect(css).toContain("prefers-color-scheme: dark");
  });

  test("GET /v1/view: the node, its networks, peers with paths, relays with scores", async () => {
    const v = (await (await app.request("/v1/view")).json()) as any;
    expect(v.node.name).toBe("alpha");
    expect(v.networks[0].name).toBe("home");
    const byName = Object.fromEntries(v.peers.map((p: any) => [p.name, p]));
    expect(byName.bravo.path).toBe("direct");
    expect(byName.bravo.underlay).toBe("198.18.2.2:51000 srflx");
    expect(byName.charlie.via).toEqual([IDS.seed]);
    expect(byName.charlie.rtt_ms).toBe(1.9);
    expect(byName.seed.relay).toBe(true);
    expect(v.relays[0].scores).toEqual([{ peer: IDS.charlie, name: "charlie", reward: 0.81, index: 0.86, chosen: true, choices: 12 }]);
    expect(v.links.map((l: any) => l.peer).sort()).toEqual([IDS.bravo, IDS.seed].sort());
  });

  test("GET /v1/view/events streams a snapshot at once and again within a second", async () => {
    const ctl = new AbortController();
    const r = await app.request("/v1/view/events", { signal: ctl.signal });
    expect(r.headers.get("content-type")).toContain("text/event-stream");
    const reader = r.body!.getReader();
    let text = "";
    const t0 = Date.now();
    while ((text.match(/event: view/g) ?? []).length < 2) {
      const { value, done } = await reader.read();
      if (done) break;
      text += new TextDecoder().decode(value);
    }
    const elapsed = Date.now() - t0;
    ctl.abort();
    await reader.cancel().catch(() => {});
    expect((text.match(/event: view/g) ?? []).length).toBeGreaterThanOrEqual(2);
    expect(elapsed).toBeLessThan(1000);
    expect(VIEW_EVERY_MS).toBeLessThanOrEqual(1000);
    const first = JSON.parse(text.split("\n").find((l) => l.startsWith("data: "))!.slice(6));
    expect(first.node.name).toBe("alpha");
  });

  test("the page's files are in the bundle `bun build --compile` embeds (imported as text)", async () => {
    const out = await Bun.build({ entrypoints: [`${import.meta.dir}/page.ts`], target: "bun" });
    expect(out.success).toBe(true);
    const code = await out.outputs[0].text();
    expect(code).toContain("Skip to peers"); // index.html
    expect(code).toContain("prefers-color-scheme"); // page.css
    expect(code).toContain("/v1/view/events"); // page.js
  });
});

describe("view", () => {
  test("throughput is the rate of the byte counters between snapshots", () => {
    const n = fakeNode();
    const rates = new Rates(400);
    buildView(n, rates, 1000);
    const bravo = n.peersList.find((p) => p.id === IDS.bravo)!;
    bravo.tx_bytes += 125_000; // 1 Mbit in 1 s
    bravo.rx_bytes += 250_000;
    const v = buildView(n, rates, 2000);
    const p = v.peers.find((x) => x.id === IDS.bravo)!;
    expect(p.tx_bps).toBe(1_000_000);
    expect(p.rx_bps).toBe(2_000_000);
    // A snapshot sooner than the interval keeps the last rate instead of measuring a sliver.
    expect(buildView(n, rates, 2100).peers.find((x) => x.id === IDS.bravo)!.tx_bps).toBe(1_000_000);
  });

  test("recent decisions: path changes, policy switches and each destination's latest, newest first", () => {
    let t = 1000;
    const n = fakeNode(() => t);
    n.recent.change(IDS.bravo as any, undefined, `relay:${IDS.seed}`);
    t = 2000;
    n.recent.change(IDS.bravo as any, `relay:${IDS.seed}`, "direct");
    const cand = (path: string, reward: number) => ({ path, rtt_ms: 1, loss: 0, goodput_bps: 0, reward, index: reward });
    const other = "d4d4d4d4d4d4d4d4d4d4d4d4d4d4d4d4";
    n.recent.decision({ t: 3000, dst: IDS.charlie as any, round: 1, candidates: [cand(`relay:${IDS.seed}`, 0.8)], choice: `relay:${IDS.seed}`, reward: null });
    n.recent.decision({ t: 4000, dst: IDS.charlie as any, round: 2, candidates: [cand(`relay:${IDS.seed}`, 0.3), cand(`relay:${other}`, 0.7)], choice: `relay:${other}`, reward: 0.3 });
    const v = buildView(n, new Rates(), 5000);
    expect(v.events.map((e) => [e.t, e.name, e.kind])).toEqual([
      [4000, "charlie", "decision"],
      [4000, "charlie", "decision"],
      [2000, "bravo", "change"],
      [1000, "bravo", "change"],
    ]);
    expect(v.events[2].text).toBe("via seed → direct");
    expect(v.events[3].text).toBe("first packets via seed");
    expect(v.events.some((e) => e.text.startsWith("policy switched to via d4d4d4d4"))).toBe(true);
  });

  test("the history is bounded", () => {
    const n = fakeNode();
    for (let i = 0; i < 500; i++) n.recent.change(IDS.bravo as any, "direct", `relay:${IDS.seed}`);
    expect(n.recent.changes.length).toBe(50);
    expect(buildView(n, new Rates()).events.length).toBeLessThanOrEqual(40);
  });
});
