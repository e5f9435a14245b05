// Small networks of routers over the in-memory fabric with a simulated clock: what the route/ tests build.
import type { NodeId } from "../identity/identity.ts";
import { SimClock, rng } from "./clock.ts";
import { Fabric } from "./fabric.ts";
import { TYPE_DATA } from "../route/frame.ts";
import type { DiscoveryRecord } from "../route/record.ts";
import { simRecordCrypto as cheapCrypto } from "./crypto.ts";
import { Router } from "../route/router.ts";
import type { Decision } from "../route/steering.ts";

export interface Spec {
  relays: string[];
  edges: string[];
  /** Pairs that can link (either order). */
  links: [string, string][];
  /** Relays each node is told of (as seeds would). */
  seeds: Record<string, string[]>;
  delayMs?: (a: string, b: string) => number;
  idleTimeoutMs?: number;
  /** Relay bandwidth cap in bits per second (0 = none). */
  relayBps?: number;
  /** Fraction of unreliable messages (packets, probes) lost on a→b. */
  loss?: (a: string, b: string) => number;
  /** Path-policy decisions, by node name. */
  onDecision?: Record<string, (d: Decision) => void>;
  /** The fast-channel MTU every link reports (none: any size goes). */
  fastMtu?: number;
  /**
   * Routers as a real node runs them: delivery reports sealed (here: handed straight to the other
   * router, as an established session would), deliveries counted once "opened" — which a data packet
   * is here only when its claimed source is one of the named nodes and it came the way that node sent it.
   */
  sealed?: boolean;
}

export function build(spec: Spec) {
  const clock = new SimClock();
  const names = [...spec.relays, ...spec.edges];
  const id = (name: string) => Buffer.from(name.padEnd(16, ".")).toString("hex") as NodeId;
  const nameOf = new Map(names.map((n) => [id(n), n]));
  const ok = new Set(spec.links.flatMap(([a, b]) => [`${a}|${b}`, `${b}|${a}`]));
  const fabric = new Fabric({
    clock,
    random: rng(7),
    canLink: (a, b) => ok.has(`${nameOf.get(a)}|${nameOf.get(b)}`),
    delayMs: (a, b) => spec.delayMs?.(nameOf.get(a)!, nameOf.get(b)!) ?? 2,
    loss: (a, b) => spec.loss?.(nameOf.get(a)!, nameOf.get(b)!) ?? 0,
    fastMtu: () => spec.fastMtu,
  });
  const got: Record<string, { src: string; seq: number; bytes: number }[]> = {};
  const records: Record<string, DiscoveryRecord[]> = {};
  const pathUps: Record<string, string[]> = {};
  const r: Record<string, Router> = {};
  for (const n of names) {
    got[n] = [];
    records[n] = [];
    pathUps[n] = [];
    r[n] = new Router({
      self: id(n),
      relay: { enabled: spec.relays.includes(n), bandwidthBps: spec.relayBps ?? 0 },
      links: fabric.port(id(n)),
      now: () => clock.now,
      crypto: cheapCrypto(id(n)),
      idleTimeoutMs: spec.idleTimeoutMs ?? 60_000,
      deliver: (src, inner, link, via) => {
        if (spec.sealed && !nameOf.has(src)) return; // a forged source: its session would not open this
        if (spec.sealed && inner[0] === TYPE_DATA) r[n].opened(src, link, via, inner.length);
        r[n].active(src);
        got[n].push({ src: nameOf.get(src)!, seq: inner[1], bytes: inner.length });
      },
      sealed: spec.sealed
        ? (dst, payload) => {
            const to = nameOf.get(dst);
            if (!to) return false;
            r[to].sealedReport(id(n), payload);
            return true;
          }
        : undefined,
      onRecord: (rec) => records[n].push(rec),
      onDecision: spec.onDecision?.[n],
      onPathUp: (peer) => pathUps[n].push(nameOf.get(peer)!),
    });
    fabric.add(id(n), r[n]);
    clock.every(100, () => fabric.isUp(id(n)) && r[n].tick());
  }
  for (const [n, list] of Object.entries(spec.seeds)) for (const s of list) r[n].addRelay(id(s));
  let seq = 0;
  /** One packet (an unreliable session packet, 0xC4) of `size` bytes; its second byte is a sequence number. */
  const send = (from: string, to: string, size = 4) => {
    r[from].active(id(to));
    const p = new Uint8Array(size);
    p[0] = TYPE_DATA;
    p[1] = seq++ & 255;
    return r[from].send(id(to), p);
  };
  const run = (ms: number) => clock.runUntil(clock.now + ms);
  /** Send from → to every 50 ms for `ms`. */
  const stream = (from: string, to: string, ms: number) => {
    for (let t = 0; t < ms; t += 50) {
      send(from, to);
      run(50);
    }
  };
  const link = (a: string, b: string) => fabric.port(id(a)).link(id(b));
  return { clock, fabric, r, id, got, records, pathUps, send, run, stream, link };
}

export const relayVia = (n: { id(s: string): NodeId }, ...names: string[]) => names.map((s) => `relay:${n.id(s)}`).join(" ");
