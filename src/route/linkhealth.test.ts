// Link health (./linkhealth.ts): probes, liveness and loss on in-memory links with a simulated clock.
import { describe, expect, test } from "bun:test";
import { build, relayVia } from "../sim/routers.ts";
import type { NodeId } from "../identity/identity.ts";
import { HOP_PROBE, HOP_PROBE_ACK } from "./frame.ts";
import { ACTIVE_FOR_MS, CONFIRM_MS, DEAD_MS, DOUBT_MS, IDLE_DEAD_MS, IDLE_PROBE_MS, LinkHealth, PROBE_MS } from "./linkhealth.ts";

describe("link health", () => {
  test("a link that falls silent is dead for paths; when it answers again it is up again", () => {
    let silent = false;
    const n = build({
      relays: ["R1", "R2"],
      edges: ["A", "B"],
      links: [["A", "R1"], ["A", "R2"], ["B", "R1"], ["B", "R2"]],
      seeds: { A: ["R1", "R2"], B: ["R1", "R2"] },
      delayMs: (a, b) => (a === "R2" || b === "R2" ? 20 : 1),
      loss: (a, b) => (silent && [a, b].sort().join() === "A,R1" ? 1 : 0),
    });
    n.run(3000);
    n.stream("A", "B", 500);
    expect(n.r.A.pathTo(n.id("B"))).toBe(relayVia(n, "R1"));
    const upsBefore = n.pathUps.A.filter((p) => p === "R1").length;
    silent = true;
    n.run(1000);
    expect(n.r.A.linksReport().find((l) => l.peer === n.id("R1"))?.alive).toBe(false);
    expect(n.r.A.pathTo(n.id("B"))).toBe(relayVia(n, "R2"));
    const before = n.got.B.length;
    n.stream("A", "B", 1000);
    expect(n.got.B.length - before).toBe(20); // all through R2
    silent = false;
    n.run(1000);
    expect(n.r.A.linksReport().find((l) => l.peer === n.id("R1"))?.alive).toBe(true);
    expect(n.pathUps.A.filter((p) => p === "R1").length).toBe(upsBefore + 1);
    n.stream("A", "B", 1000);
    expect(n.r.A.pathTo(n.id("B"))).toBe(relayVia(n, "R1")); // still far cheaper than R2
    expect(n.link("A", "R1")?.state).toBe("open"); // silent for a second only: never closed
  });

  test("a direct link that loses many probes is measured so, left for a relay, and taken back when it heals", () => {
    let lossy = false;
    const n = build({
      relays: ["R"],
      edges: ["A", "B"],
      links: [["A", "R"], ["B", "R"], ["A", "B"]],
      seeds: { A: ["R"], B: ["R"] },
      loss: (a, b) => (lossy && [a, b].sort().join() === "A,B" ? 0.4 : 0),
    });
    n.run(2000);
    n.stream("A", "B", 2000);
    expect(n.r.A.pathTo(n.id("B"))).toBe("direct");
    lossy = true; // 40% each way: about 64% of probe round trips fail
    n.stream("A", "B", 10_000);
    const loss = n.r.A.linksReport().find((l) => l.peer === n.id("B"))!.loss;
    expect(loss).toBeGreaterThan(0.4);
    expect(loss).toBeLessThan(0.85);
    expect(n.r.A.linksReport().find((l) => l.peer === n.id("R"))!.loss).toBeLessThan(0.05);
    expect(n.r.A.pathTo(n.id("B"))).toBe(relayVia(n, "R"));
    lossy = false;
    n.stream("A", "B", 5000);
    expect(n.r.A.linksReport().find((l) => l.peer === n.id("B"))!.loss).toBeLessThan(0.1);
    expect(n.r.A.pathTo(n.id("B"))).toBe("direct");
  });
});

// Each test runs twice: idle probes as PROBE frames, and as the link's own (the fast channel's, probeIdle).
for (const light of [false, true])
describe(`link health: probe rate${light ? ", the link's own idle probe" : ""}`, () => {
  /**
   * One link to "P" on a manual clock; answers come back 10 ms later while `answering`. `sent`: when
   * probes went (PROBE frames, and with `light` the link's own idle probes too); `hops`: PROBE frames alone.
   * With `light` the link has its own idle probe (RouterLink.probeIdle, the fast channel's), answered the same way.
   */
  function rig({ light = false } = {}) {
    let now = 0;
    let answering = true;
    const sent: number[] = [];
    const hops: number[] = [];
    const pending: { at: number; body?: Uint8Array; answered?: (rtt: number) => void; sentAt: number }[] = [];
    const peer = "00000000000000000000000000000001" as NodeId;
    const probeIdle = (answered: (rtt: number) => void) => {
      sent.push(now);
      if (answering) pending.push({ at: now + 10, answered, sentAt: now });
      return true;
    };
    const link = { peer, state: "open" as const, sendPacket: () => true, sendProbe: () => true, sendControl: () => {}, ...(light ? { probeIdle } : {}) };
    const h = new LinkHealth({
      links: { link: () => link, connect: () => {}, disconnect: () => {} },
      now: () => now,
      sendHop: (_p, kind, body) => {
        if (kind !== HOP_PROBE) return;
        sent.push(now);
        hops.push(now);
        if (answering) pending.push({ at: now + 10, body, sentAt: now });
      },
      onChange: () => {},
      onAlive: () => {},
      log: () => {},
      random: () => spread,
    });
    let spread = 0.5;
    h.opened(peer);
    /** Advance `ms` in ticks of 50 ms (the node ticks every 100 ms). */
    const run = (ms: number) => {
      for (const end = now + ms; now < end; ) {
        now += 50;
        for (const p of pending.splice(0).filter((p) => (p.at <= now ? true : (pending.push(p), false)))) {
          h.heard(peer);
          if (p.body) h.onProbe(peer, HOP_PROBE_ACK, p.body);
          else p.answered!(now - p.sentAt);
        }
        h.tick(now);
      }
    };
    return { h, peer, sent, hops, run, use: () => h.used(peer), silence: () => (answering = false), resume: () => (answering = true), now: () => now, spread: (x: number) => (spread = x) };
  }

  test("an idle link is probed after 3/4 to all of IDLE_PROBE_MS of silence, one carrying packets every PROBE_MS", () => {
    for (const spread of [0, 0.99]) {
      const r = rig({ light });
      r.spread(spread);
      r.run(ACTIVE_FOR_MS + 1000); // the link starts active (it just opened), then idles
      r.sent.length = 0;
      r.run(120_000);
      const gap = IDLE_PROBE_MS * (0.75 + 0.25 * spread);
      expect(r.sent.length).toBeGreaterThanOrEqual(Math.floor(120_000 / (gap + 100)) - 1);
      expect(r.sent.length).toBeLessThanOrEqual(Math.ceil(120_000 / gap) + 1);
      for (let k = 1; k < r.sent.length; k++) expect(r.sent[k] - r.sent[k - 1]).toBeGreaterThanOrEqual(gap);
      expect(r.h.alive(r.peer)).toBe(true);
    }
    const r = rig({ light });
    r.run(ACTIVE_FOR_MS + 1000);
    r.sent.length = 0;
    r.use(); // packets: probed at once, then at the fast rate
    r.run(50);
    expect(r.sent.length).toBe(1);
    for (let t = 0; t < 2000; t += 500) {
      r.use();
      r.run(500);
    }
    expect(r.sent.length).toBeGreaterThanOrEqual(2000 / PROBE_MS - 2);
  });

  test("an idle link that hears the peer's own probes sends none: one exchange per idle link, not one per end", () => {
    const r = rig({ light });
    r.run(ACTIVE_FOR_MS + 1000);
    r.sent.length = 0;
    // The peer's gap runs out first: its probe arrives (heard, answered) every 3/4 of IDLE_PROBE_MS.
    for (let t = 0; t < 10; t++) {
      r.run(IDLE_PROBE_MS * 0.75 - 50);
      r.h.heard(r.peer);
      r.h.onProbe(r.peer, HOP_PROBE, Uint8Array.of(0, 0, 0, t));
    }
    expect(r.sent.length).toBe(0);
    expect(r.h.alive(r.peer)).toBe(true);
    expect(r.h.fast(r.peer)).toBe(false);
    // The peer stops: our own probe goes within IDLE_PROBE_MS of the last one heard.
    const last = r.now();
    while (r.sent.length === 0) r.run(50);
    expect(r.sent[0] - last).toBeLessThanOrEqual(IDLE_PROBE_MS);
  });

  test("a link that died while idle: traffic on it finds out within DEAD_MS of the first packet; idle, within IDLE_DEAD_MS", () => {
    const r = rig({ light });
    r.run(ACTIVE_FOR_MS + 3000);
    const answered = r.sent.length;
    while (r.sent.length === answered) r.run(50); // an idle probe went and is answered: the link is fine
    r.run(100);
    r.silence();
    r.run(IDLE_PROBE_MS / 2); // dies before its next idle probe
    r.use(); // the first packet since the link went quiet
    const woke = r.now();
    r.run(DEAD_MS - 100);
    expect(r.h.alive(r.peer)).toBe(true);
    r.run(150);
    expect(r.h.alive(r.peer)).toBe(false);
    expect(r.now() - woke).toBeLessThanOrEqual(DEAD_MS + 100);

    const idle = rig({ light });
    idle.run(ACTIVE_FOR_MS + 3000);
    idle.silence();
    const from = idle.now();
    while (idle.h.alive(idle.peer)) idle.run(50);
    expect(idle.now() - from).toBeLessThanOrEqual(IDLE_DEAD_MS + 100);
  });

  test("one lost idle probe puts the link in doubt (fast probes), not down", () => {
    const r = rig({ light });
    r.run(ACTIVE_FOR_MS + 3000);
    // Lose exactly the next probe.
    const before = r.sent.length;
    r.silence();
    while (r.sent.length === before) r.run(50);
    const lostAt = r.now();
    r.resume();
    expect(r.h.fast(r.peer, lostAt)).toBe(false);
    r.run(DOUBT_MS + 100);
    expect(r.h.fast(r.peer)).toBe(true);
    r.run(IDLE_DEAD_MS);
    expect(r.h.alive(r.peer)).toBe(true);
    expect(r.h.fast(r.peer)).toBe(false);
  });

  // The relays e2e flake: a relay killed while our link to it idled looked alive for up to IDLE_DEAD_MS
  // after its last answer, long enough for a restart to pass unnoticed.
  test("an idle link to a peer that died is dead within CONFIRM_MS of its next probe", () => {
    const r = rig({ light });
    r.run(ACTIVE_FOR_MS + 3000);
    r.silence();
    // The peer's own idle probe (or anything) came just before ours went: IDLE_DEAD_MS of silence counted
    // from it would keep the link alive for seconds more.
    while (r.now() < r.h.due(r.peer)! - 100) r.run(50);
    r.h.heard(r.peer);
    const before = r.sent.length;
    while (r.sent.length === before) r.run(50);
    const probedAt = r.sent[before];
    r.run(CONFIRM_MS - 100);
    expect(r.h.alive(r.peer)).toBe(true);
    while (r.h.alive(r.peer)) r.run(50);
    expect(r.now() - probedAt).toBeLessThanOrEqual(CONFIRM_MS + 50);
  });

  test("a suspected idle link is probed at once and for CONFIRM_MS at the fast rate: answered, it stays up and idle; silent, it is dead within CONFIRM_MS", () => {
    const r = rig({ light });
    r.run(ACTIVE_FOR_MS + 3000);
    r.sent.length = 0;
    r.h.suspect(r.peer);
    expect(r.h.fast(r.peer)).toBe(true);
    r.run(50);
    expect(r.sent.length).toBe(1);
    r.run(500);
    expect(r.h.fast(r.peer)).toBe(true); // answered, and still confirming
    r.run(1000);
    expect(r.h.alive(r.peer)).toBe(true);
    expect(r.h.fast(r.peer)).toBe(false);
    const settled = r.sent.length; // fast probes for CONFIRM_MS, and the one already due at the fast rate then
    expect(settled).toBeGreaterThanOrEqual(Math.floor(CONFIRM_MS / PROBE_MS) - 1);
    expect(settled).toBeLessThanOrEqual(Math.ceil(CONFIRM_MS / PROBE_MS) + 2);
    r.run(2000);
    expect(r.sent.length).toBe(settled);

    r.silence();
    r.h.heard(r.peer); // the peer's own probe, just before it went: idle, it would look alive for seconds
    r.h.suspect(r.peer);
    const at = r.now();
    r.run(CONFIRM_MS - 100);
    expect(r.h.alive(r.peer)).toBe(true);
    expect(r.sent.length).toBeGreaterThanOrEqual(settled + Math.floor((CONFIRM_MS - 100) / PROBE_MS) - 1);
    while (r.h.alive(r.peer)) r.run(50);
    expect(r.now() - at).toBeLessThanOrEqual(CONFIRM_MS + 50);
  });
});

describe("link health: the link's own idle probe", () => {
  /** As the rig above, small: one link whose probeIdle answers (or not) after 10 ms. */
  function light() {
    let now = 0, answering = true;
    const hops: number[] = [], lights: number[] = [];
    const waiting: { at: number; sentAt: number; cb: (rtt: number) => void }[] = [];
    const peer = "00000000000000000000000000000002" as NodeId;
    const link = {
      peer, state: "open" as const, sendPacket: () => true, sendProbe: () => true, sendControl: () => {},
      probeIdle: (cb: (rtt: number) => void) => (lights.push(now), answering && waiting.push({ at: now + 10, sentAt: now, cb }), true),
    };
    const acks: Uint8Array[] = [];
    const h = new LinkHealth({ links: { link: () => link, connect: () => {}, disconnect: () => {} }, now: () => now, sendHop: (_p, kind, body) => kind === HOP_PROBE && (hops.push(now), answering && acks.push(body)), onChange: () => {}, onAlive: () => {}, log: () => {}, random: () => 0.5 });
    h.opened(peer);
    const run = (ms: number) => {
      for (const end = now + ms; now < end; ) {
        now += 50;
        for (const w of waiting.splice(0)) w.at <= now ? w.cb(now - w.sentAt) : waiting.push(w);
        for (const b of acks.splice(0)) (h.heard(peer), h.onProbe(peer, HOP_PROBE_ACK, b));
        h.tick(now);
      }
    };
    return { h, peer, hops, lights, run, silence: (s: boolean) => (answering = !s) };
  }

  test("an idle link sends no PROBE frames while its own probe is answered; the answers measure its RTT", () => {
    const r = light();
    r.run(ACTIVE_FOR_MS + 1000); // opened active: PROBE frames at the fast rate, then idle
    const hopsBefore = r.hops.length;
    expect(hopsBefore).toBeGreaterThan(0);
    r.run(120_000);
    expect(r.hops.length).toBe(hopsBefore);
    expect(r.lights.length).toBeGreaterThanOrEqual(5);
    expect(r.h.alive(r.peer)).toBe(true);
    expect(r.h.fast(r.peer)).toBe(false);
    // The RTT came from them: answered 50 ms later on this 50 ms tick (PROBE frames answered at 50 too).
    expect(r.h.get(r.peer)!.rttMs).toBeGreaterThan(0);
  });

  test("its own probe unanswered: in doubt, PROBE frames at the fast rate; those unanswered too, dead within CONFIRM_MS", () => {
    const r = light();
    r.run(ACTIVE_FOR_MS + 1000);
    const lights = r.lights.length;
    r.silence(true);
    while (r.lights.length === lights) r.run(50);
    const probedAt = r.lights.at(-1)!;
    const hops = r.hops.length;
    r.run(DOUBT_MS + 100);
    expect(r.h.fast(r.peer)).toBe(true);
    expect(r.hops.length).toBeGreaterThan(hops); // the fast probes are PROBE frames (the data channel)
    while (r.h.alive(r.peer)) r.run(50);
    expect(r.hops.at(-1)! - probedAt).toBeLessThanOrEqual(CONFIRM_MS + 50);
    expect(r.lights.at(-1)).toBe(probedAt); // none of its own while in doubt
  });

  test("its own probe lost, the PROBE frames that follow answered: the link stays up and goes back to its own probe", () => {
    const r = light();
    r.run(ACTIVE_FOR_MS + 1000);
    const lights = r.lights.length;
    r.silence(true);
    while (r.lights.length === lights) r.run(50);
    r.silence(false);
    r.run(DOUBT_MS + 200);
    expect(r.h.fast(r.peer)).toBe(true);
    r.run(IDLE_PROBE_MS * 2);
    expect(r.h.alive(r.peer)).toBe(true);
    expect(r.h.fast(r.peer)).toBe(false);
    expect(r.lights.length).toBeGreaterThan(lights + 1);
  });
});
