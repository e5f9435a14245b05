// Preloaded into a `trellis up` process by test/hostile/flood.test.ts (TestNode spec `preload`): a
// hostile member. It runs as a normal admitted node; once the file FLOOD_GO exists it floods its link to
// the node FLOOD_VICTIM for FLOOD_S seconds at FLOOD_RATE packets a second, then writes what it sent to
// FLOOD_OUT (JSON). The flood (issue 14):
//   raw UDP from its own ICE address to the victim's (the fast channel's 5-tuple): junk data packets,
//     forward frames with forged sources and bad link tags, junk probe answers;
//   raw UDP from another port of the same host to the same victim port (off-path junk);
//   on the fast channel, properly link-authenticated: data frames with fresh forged sources;
//   on the control channel: junk initiations, junk first fragments with fresh message ids, a valid
//     initiation replayed under fresh forged sources, its own record re-issued with a junk signature,
//     overlay signals from fresh identities with junk signatures, unsealed delivery reports.
// The control channel is reliable (SCTP): it is fed only while less than CTL_QUEUE bytes wait on it.
import { createSocket } from "node:dgram";
import { existsSync, writeFileSync } from "node:fs";
import { randomBytes } from "node:crypto";
import { WebrtcLink } from "../../src/tether/webrtc.ts";
import { encodePublicIdentity, decodePublicIdentity, generateIdentity, loadIdentity, type NodeId } from "../../src/identity/identity.ts";
import { fragment } from "../../src/handshake/fragment.ts";
import { createInitiation } from "../../src/handshake/machine.ts";
import { encodeForward, encodeHop, HOP_RECORD, relayed, TYPE_REPORT, TYPE_SIGNAL } from "../../src/route/frame.ts";
import { encodeRecord } from "../../src/route/record.ts";

const env = (k: string) => {
  const v = process.env[k];
  if (!v) throw new Error(`rogue-flood: ${k} not set`);
  return v;
};
const victim = env("FLOOD_VICTIM") as NodeId;
const go = env("FLOOD_GO"), out = env("FLOOD_OUT");
const seconds = Number(process.env.FLOOD_S ?? 30), rate = Number(process.env.FLOOD_RATE ?? 12_000);
const CTL_QUEUE = 256 * 1024;

// Everything is prepared now, while the process is still root and before the node starts.
const self = loadIdentity(env("FLOOD_STATE"));
const victimPub = decodePublicIdentity(Uint8Array.from(Buffer.from(env("FLOOD_VICTIM_PUB"), "base64")));
const throwaway = generateIdentity();
const initiation = fragment(0xc1, createInitiation(throwaway, victimPub, new Uint8Array(0), 4242, 1n).message);
const strangers = Array.from({ length: 8 }, () => generateIdentity().public);
const junkSig = randomBytes(3309);

const links = new Set<WebrtcLink>();
const sendControl = WebrtcLink.prototype.sendControl;
WebrtcLink.prototype.sendControl = function (this: WebrtcLink, b: Uint8Array): void {
  links.add(this);
  return sendControl.call(this, b);
};

const fresh = (n: number) => ("f100" + n.toString(16).padStart(28, "0")) as NodeId;
const counts: Record<string, number> = {};
const count = (k: string, n = 1) => (counts[k] = (counts[k] ?? 0) + n);

interface Pc {
  pc: { iceTransports: { connection: { nominated?: { remoteAddr: [string, number]; protocol: { transport?: { socket: { send(b: Uint8Array, port: number, host: string): void } } } } } }[] };
  ctl?: { bufferedAmount: number };
}

function flood(link: WebrtcLink): void {
  const inner = link as unknown as Pc;
  const pair = inner.pc.iceTransports[0]?.connection.nominated;
  const sock = pair?.protocol.transport?.socket;
  if (!pair || !sock) throw new Error("rogue-flood: the link has no nominated pair");
  const [host, port] = pair.remoteAddr;
  const offPath = createSocket(host.includes(":") ? "udp6" : "udp4");
  const started = performance.now();
  let due = 0, n = 0, issued = Date.now();
  console.error(`rogue-flood: flooding ${victim} at ${host}:${port} for ${seconds} s at ${rate} packets/s`);
  const forged = (src: NodeId, payload: Uint8Array) => relayed(encodeForward(victim, src, payload), self.public.id, true);
  const tick = () => {
    const elapsed = (performance.now() - started) / 1000;
    if (elapsed >= seconds || link.state !== "open") {
      clearInterval(timer);
      offPath.close();
      writeFileSync(out, JSON.stringify({ seconds: elapsed, linkState: link.state, counts, total: Object.values(counts).reduce((a, b) => a + b, 0) }));
      console.error(`rogue-flood: done: ${JSON.stringify(counts)}`);
      return;
    }
    due = Math.floor(elapsed * rate);
    for (; n < due; n++) {
      const k = n % 20;
      try {
        if (k < 5) {
          // junk data packet: an unknown receiver index, a counter and junk "ciphertext"
          const p = randomBytes(64);
          p[0] = 0xc4;
          sock.send(p, port, host);
          count("udp_junk_data");
        } else if (k < 10) {
          // a forward frame with a forged source and a made-up link tag
          const f = forged(fresh(n), Uint8Array.of(0xc4, ...randomBytes(40)));
          sock.send(Buffer.concat([f, randomBytes(24)]), port, host);
          count("udp_forged_frame_bad_tag");
        } else if (k < 12) {
          const p = randomBytes(24);
          p[0] = 0xca;
          p[1] = 2;
          sock.send(p, port, host);
          count("udp_junk_probe_answer");
        } else if (k < 14) {
          const p = randomBytes(48);
          p[0] = [0xc4, 0xc5, 0xca][n % 3];
          offPath.send(p, port, host);
          count("udp_off_path_junk");
        } else if (k < 16) {
          // properly link-authenticated (the hostile member holds the link's keys): fresh forged sources
          if (link.sendPacket(forged(fresh(n), Uint8Array.of(0xc4, 0, 0, 0, 1, ...randomBytes(48))))) count("fast_forged_data_frame");
          else count("fast_refused_by_own_link");
        } else {
          if ((inner.ctl?.bufferedAmount ?? 0) > CTL_QUEUE) {
            count("ctl_skipped_queue_full");
            continue;
          }
          const c = n % 7;
          if (c === 0) link.sendControl(Uint8Array.of(0xc1, n & 255, (n >> 8) & 255, 0, 0, 0, 1, 0)), count("ctl_junk_initiation");
          else if (c === 1) {
            const g = randomBytes(1200);
            g[0] = 0xc1;
            g.writeUInt32LE(n >>> 0, 1);
            g[5] = 0;
            g[6] = 24;
            link.sendControl(g);
            count("ctl_junk_first_fragment");
          } else if (c === 2) {
            for (const f of initiation) link.sendControl(forged(fresh(n), f));
            count("ctl_replayed_initiation_forged_source");
            count("ctl_replayed_initiation_fragments", initiation.length);
          } else if (c === 3) {
            const rec = encodeRecord({ id: self.public.id, relay: n % 2 === 0, relays: [], hints: [], issued: ++issued, expires: issued + 5 * 60_000 }, { publicBytes: encodePublicIdentity(self.public), sign: () => junkSig, verify: () => false });
            link.sendControl(encodeHop(HOP_RECORD, rec));
            count("ctl_own_record_junk_signature");
          } else if (c === 4) {
            const s = strangers[n % strangers.length];
            const env = { v: 1, kind: "offer", from: s.id, to: victim, ts: Date.now(), nonce: randomBytes(16).toString("base64"), sdp: "v=0", pub: Buffer.from(encodePublicIdentity(s)).toString("base64"), sig: junkSig.toString("base64") };
            const body = new TextEncoder().encode(JSON.stringify(env));
            const payload = new Uint8Array(1 + body.length);
            payload[0] = TYPE_SIGNAL;
            payload.set(body, 1);
            link.sendControl(forged(s.id, payload));
            count("ctl_forged_signal");
          } else if (c === 5) {
            link.sendControl(forged(fresh(n), Uint8Array.of(TYPE_REPORT, 1, ...randomBytes(16), 0, 0x10, 0, 0)));
            count("ctl_unsealed_report");
          } else {
            link.sendControl(Uint8Array.of(0xc6, 0x99, ...randomBytes(30)));
            count("ctl_junk_hop");
          }
        }
      } catch (e) {
        count(`error ${(e as Error).message.slice(0, 40)}`);
      }
    }
  };
  const timer = setInterval(tick, 5);
}

const waiting = setInterval(() => {
  if (!existsSync(go)) return;
  const link = [...links].find((l) => l.peer === victim && l.state === "open");
  if (!link) return;
  clearInterval(waiting);
  try {
    flood(link);
  } catch (e) {
    writeFileSync(out, JSON.stringify({ error: (e as Error).message }));
  }
}, 100);
console.error(`rogue-flood: this node floods ${victim} once ${go} exists`);
