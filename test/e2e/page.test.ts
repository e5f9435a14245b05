// e2e: the node's page as a person sees it. Two edges and a relay in namespaces; headless Chromium
// inside alpha's namespace loads http://127.0.0.1:7080/: no console errors, every peer's name and path
// on the page, the mesh drawn, the path on the page changes within 2 s of the direct link being blocked
// (nftables), keyboard selection works, screenshots (light and dark) are saved and checked. Firefox
// (Marionette, test/lib/firefox-check.ts) shows the same rows and drawing.
import { afterAll, beforeAll, describe, expect, setDefaultTimeout, test } from "bun:test";
import { copyFileSync, mkdirSync, statSync } from "node:fs";
import { join } from "node:path";
import { e2eReady, sh, TestNet } from "../lib/netns.ts";
import { BUN, ROOT, TestNode, teardown, tempDir, waitFor } from "../lib/nodes.ts";
import { enrol } from "../lib/members.ts";
import { Browser, chromiumPath } from "../lib/browser.ts";
import { createNetwork } from "../../src/trust/root.ts";

setDefaultTimeout(120_000);
const root = e2eReady(import.meta.file);
const chromium = chromiumPath() !== null;
const firefox = Bun.which("firefox-esr") !== null || Bun.which("firefox") !== null;
if (root && !chromium) {
  console.error(`!! skipped (chromium is not installed; scripts/deps.sh installs it): ${import.meta.file}`);
  if (process.env.TRELLIS_REQUIRE_E2E === "1")
    test("chromium for the page e2e", () => {
      throw new Error("chromium is not installed (TRELLIS_REQUIRE_E2E=1): run scripts/deps.sh");
    });
}

interface PageRow {
  id: string;
  text: string;
  name: string;
  path: string;
  dataPath: string;
}
/** What the page shows in the peers table, read from the DOM. */
const ROWS = `[...document.querySelectorAll("#peers-table tbody tr")].map((tr) => ({ id: tr.dataset.peer, text: tr.innerText, name: tr.children[0].firstChild.textContent, path: tr.children[2].innerText.trim(), dataPath: tr.dataset.path }))`;

describe.skipIf(!root || !chromium)("the node's page in Chromium (namespaces)", () => {
  let net: TestNet, dir: string, browser: Browser | undefined;
  const n: Record<string, TestNode> = {};
  let pinging: ReturnType<typeof setInterval> | undefined;
  const peerOf = (x: TestNode, y: TestNode) => (x.api("/v1/status").peers ?? []).find((p: any) => p.id === y.id);

  beforeAll(async () => {
    dir = tempDir("e2e-page");
    net = new TestNet("pg");
    for (const h of ["relay", "a", "b"]) net.addHost(h);
    const seed = `http://${net.host("relay").ip}:7443`;
    const home = createNetwork("home", join(dir, "root"));
    n.relay = new TestNode(net, { host: "relay", name: "relay", relay: true, listen: `${net.host("relay").ip}:7443`, seeds: [seed] }, dir);
    n.a = new TestNode(net, { host: "a", name: "alpha", seeds: [seed] }, dir);
    n.b = new TestNode(net, { host: "b", name: "bravo", seeds: [seed] }, dir);
    [["relay", "100.64.9.10"], ["a", "100.64.9.1"], ["b", "100.64.9.2"]].forEach(([h, ip]) => enrol(n[h], home, ip));
    await n.relay.start();
    await Promise.all([n.a.start(), n.b.start()]);
    // Traffic a → b, so there is a path and the policy has something to decide.
    pinging = setInterval(() => sh(["ip", "netns", "exec", n.a.ns, "ping", "-c", "1", "-W", "1", n.b.ipv6], { allowFail: true }), 250);
    await waitFor("a linked to the relay", () => (n.a.api("/v1/status").links ?? []).some((l: any) => l.relay && l.alive), 60_000);
    await waitFor("a → b direct", () => peerOf(n.a, n.b)?.path === "direct", 60_000);
    browser = new Browser(n.a.ns, { width: 1280, height: 900 });
    await browser.open("http://127.0.0.1:7080/");
  });

  afterAll(async () => {
    if (pinging) clearInterval(pinging);
    await browser?.close();
    await teardown(Object.values(n), net, dir);
  });

  test("every peer's name and path is on the page, the mesh is drawn, no console errors", async () => {
    const peers = n.a.api("/v1/status").peers as any[];
    expect(peers.map((p) => p.name).sort()).toEqual(["bravo", "relay"]);
    const rows = await waitFor("the page lists every peer with its path", async () => {
      const r = await browser!.eval<PageRow[]>(ROWS);
      return peers.every((p) => r.some((x) => x.id === p.id && x.name === p.name && x.dataPath === (p.path ?? ""))) ? r : null;
    }, 10_000);
    const bravo = rows.find((r) => r.id === n.b.id)!;
    expect(bravo.path).toBe("direct");
    expect(bravo.text).toContain(n.b.ipv6);
    // The relay: linked, but alpha has no end-to-end session with it (nothing to send it).
    expect(rows.find((r) => r.id === n.relay.id)!.path).toBe(peers.find((p) => p.id === n.relay.id).path === "direct" ? "direct" : "linked, no session");
    // The drawing: this node, the relay and bravo, one edge per link, labelled with RTTs.
    const mesh = await browser!.eval<{ nodes: string[]; edges: { key: string; stroke: string; cls: string }[]; labels: string[]; title: string }>(
      `({ nodes: [...document.querySelectorAll("#mesh .node")].map((g) => g.dataset.key), edges: [...document.querySelectorAll("#mesh #edges path")].map((p) => ({ key: p.dataset.edge, stroke: p.style.stroke, cls: p.getAttribute("class") })), labels: [...document.querySelectorAll("#mesh .elabel")].map((t) => t.textContent), title: document.title })`,
    );
    expect(mesh.nodes.sort()).toEqual([n.a.id, n.b.id, n.relay.id].sort());
    expect(mesh.edges.find((e) => e.key === `link:${n.b.id}`)?.stroke).toBe("var(--direct)");
    expect(mesh.edges.some((e) => e.key === `link:${n.relay.id}`)).toBe(true);
    expect(mesh.labels.filter((l) => / ms$/.test(l)).length).toBeGreaterThanOrEqual(2);
    expect(mesh.title).toBe("alpha · trellis");
    const header = await browser!.eval<string>(`document.querySelector(".top").innerText`);
    expect(header).toContain("home"); // the network
    expect(header).toContain(n.a.ipv6);
    expect(browser!.errors).toEqual([]);
  });

  test("screenshots in light and dark are saved to the test's temp dir", async () => {
    for (const scheme of ["light", "dark"] as const) {
      await browser!.scheme(scheme);
      await Bun.sleep(300);
      const file = join(dir, `page-${scheme}.png`);
      const size = await browser!.screenshot(file);
      expect(statSync(file).size).toBe(size);
      expect(size).toBeGreaterThan(40_000); // a blank 1280×900 page is a few kilobytes
      console.log(`screenshot (${scheme}): ${file}, ${size} bytes`);
      if (process.env.TRELLIS_SCREENSHOTS) {
        mkdirSync(process.env.TRELLIS_SCREENSHOTS, { recursive: true });
        copyFileSync(file, join(process.env.TRELLIS_SCREENSHOTS, `page-${scheme}.png`));
      }
    }
    const bg = await browser!.eval<string>(`getComputedStyle(document.body).backgroundColor`);
    expect(bg).toBe("rgb(13, 17, 23)"); // the dark scheme's background
    await browser!.scheme("light");
    expect(await browser!.eval<string>(`getComputedStyle(document.body).backgroundColor`)).toBe("rgb(244, 246, 249)");
  });

  test("keyboard: Tab reaches the drawing and the rows; Enter selects a peer in both", async () => {
    await browser!.eval(`document.activeElement && document.activeElement.blur(), window.focus(), true`);
    const seen: string[] = [];
    for (let i = 0; i < 12; i++) {
      await browser!.key("Tab");
      seen.push(await browser!.eval<string>(`(() => { const e = document.activeElement; return e ? (e.dataset.key ? (e.tagName + ":" + e.dataset.key) : e.tagName) : "" })()`));
    }
    expect(seen.some((s) => s.startsWith("g:") || s.startsWith("G:"))).toBe(true); // a node of the drawing
    expect(seen.some((s) => s === `TR:${n.b.id}`)).toBe(true); // bravo's row
    // Focus bravo's row and press Enter: the row and bravo's node in the drawing are selected.
    await browser!.eval(`document.querySelector('tr[data-peer="${n.b.id}"]').focus(), true`);
    await browser!.key("Enter");
    const sel = await browser!.eval<string[]>(`[...document.querySelectorAll(".sel")].map((e) => e.tagName + ":" + e.dataset.key)`);
    expect(sel.sort()).toEqual([`TR:${n.b.id}`, `g:${n.b.id}`].sort());
    // Still selected and focused after live updates.
    await Bun.sleep(1200);
    expect(await browser!.eval<string>(`document.activeElement.dataset.key`)).toBe(n.b.id);
    expect(await browser!.eval<number>(`document.querySelectorAll(".sel").length`)).toBe(2);
  });

  test("trellis netcheck --peer bravo, beside the running node: the direct link is up", () => {
    const r = n.a.cli(["netcheck", "--config", n.a.configPath, "--peer", "bravo"]);
    console.log(`netcheck in alpha's namespace:\n${r.out}${r.err}`);
    expect(r.code).toBe(0);
    expect(r.out).toMatch(/^ok {4}direct link to bravo: up now \(198\.18\.\d+\.2:\d+ \w+\)$/m);
    expect(r.out).toMatch(/^ok {4}NAT: none, this host.s own address 198\.18\.\d+\.2:\d+ is what seeds see/m);
  });

  test("Firefox shows the same peers, paths and drawing, with no errors", async () => {
    if (!firefox) {
      console.error("!! skipped: Firefox is not installed (scripts/deps.sh installs firefox-esr)");
      if (process.env.TRELLIS_REQUIRE_E2E === "1") throw new Error("firefox-esr is not installed (TRELLIS_REQUIRE_E2E=1)");
      return;
    }
    const shot = join(dir, "page-firefox.png");
    const p = Bun.spawn(["ip", "netns", "exec", n.a.ns, BUN, join(ROOT, "test/lib/firefox-check.ts"), "http://127.0.0.1:7080/", shot, `document.querySelector('tr[data-peer="${n.b.id}"]')`], { stdout: "pipe", stderr: "pipe" });
    const [out, err] = await Promise.all([new Response(p.stdout).text(), new Response(p.stderr).text(), p.exited]);
    const line = out.trim().split("\n").pop() ?? "";
    if (!line.startsWith("{")) throw new Error(`firefox-check: ${out}${err}`);
    const shown = JSON.parse(line);
    const peers = n.a.api("/v1/status").peers as any[];
    for (const peer of peers) expect(shown.rows.some((r: any) => r.id === peer.id && r.name === peer.name && r.dataPath === (peer.path ?? ""))).toBe(true);
    expect(shown.nodes.sort()).toEqual([n.a.id, n.b.id, n.relay.id].sort());
    expect(shown.edges.find((e: any) => e.key === `link:${n.b.id}`)?.stroke).toMatch(/^rgb\(/); // the var() colour resolved
    expect(shown.live).toBe("live");
    expect(shown.errors).toEqual([]);
    expect(statSync(shot).size).toBeGreaterThan(40_000);
    if (process.env.TRELLIS_SCREENSHOTS) copyFileSync(shot, join(process.env.TRELLIS_SCREENSHOTS, "page-firefox.png"));
  }, 180_000);

  test("blocking the direct link (nft): the page shows bravo via the relay within 2 s", async () => {
    const t0 = Date.now();
    net.block("a", "b");
    let moved = 0;
    while (Date.now() - t0 < 5000) {
      const r = await browser!.eval<PageRow[]>(ROWS);
      const b = r.find((x) => x.id === n.b.id);
      if (b && b.dataPath.startsWith("relay:") && b.path === "via relay") {
        moved = Date.now() - t0;
        break;
      }
      await Bun.sleep(50);
    }
    console.log(`page showed bravo via the relay ${moved} ms after the direct link was blocked`);
    expect(moved).toBeGreaterThan(0);
    expect(moved).toBeLessThan(2000);
    // The drawing follows: a dashed hop from the relay to bravo in the relay's colour, and the change is listed.
    await waitFor("relay hop drawn", () => browser!.eval<boolean>(`!!document.querySelector('#edges path[data-edge^="hop:${n.b.id}"]')`), 3000);
    // The list records a move when the next packet takes the new path.
    await waitFor("the move listed", async () => (await browser!.eval<string>(`document.querySelector("#events").innerText`)).includes("direct → via relay"), 5000);
    if (process.env.TRELLIS_SCREENSHOTS) await browser!.screenshot(join(process.env.TRELLIS_SCREENSHOTS, "page-relayed.png"));
    expect(browser!.errors).toEqual([]);
  });
});
