// A hostile client for the seed flood test, run inside its own namespace:
//   bun flood.ts URL ROOTDIR
// At once: STUN probes (bare and padded), 50 MB in oversized WebSocket frames, registrations with fresh
// identities, 10,000 invite PUTs (one signed enrolment of a self-made network, padded 10,000 ways), then
// 1,000 WebSocket connections held open for HOLD_S seconds (the seed closes those that never register). Prints one JSON line of what it saw.
import { randomBytes } from "node:crypto";
import { encodePublicIdentity, generateIdentity, sign } from "../../src/identity/identity.ts";
import { REGISTER_CONTEXT } from "../../src/seed/server.ts";
import { createNetwork, encodeNetworkInfo } from "../../src/trust/root.ts";
import { enrolmentKey, issueEnrolment, sha256hex } from "../../src/trust/enrolment.ts";

const [url, rootDir] = process.argv.slice(2);
const HOLD_S = Number(process.env.HOLD_S ?? 15);
const u = new URL(url);
const wsUrl = url.replace(/^http/, "ws") + "/v1/signal";
const tls = { rejectUnauthorized: false };
const out: Record<string, unknown> = {};
const WS = WebSocket as unknown as new (u: string, o?: object) => WebSocket;

// 1. STUN: 5,000 bare 20-byte requests and 1,000 padded ones; count the bytes that come back.
const stun = async () => {
  let bytesIn = 0, replies = 0, larger = 0;
  const sock = await Bun.udpSocket({ socket: { data: (_s, d) => void ((bytesIn += d.length), replies++) } });
  const req = (pad: number) => {
    const r = new Uint8Array(20 + pad);
    const dv = new DataView(r.buffer);
    dv.setUint16(0, 1);
    dv.setUint16(2, pad);
    dv.setUint32(4, 0x2112a442);
    if (pad) (dv.setUint16(20, 0x8022), dv.setUint16(22, pad - 4));
    r.set(randomBytes(12), 8);
    return r;
  };
  let bytesOut = 0;
  for (let i = 0; i < 6000; i++) {
    const r = req(i < 5000 ? 0 : 12);
    bytesOut += r.length;
    sock.send(r, Number(u.port || 443), u.hostname);
    if (i % 200 === 0) await Bun.sleep(1);
  }
  await Bun.sleep(500);
  sock.close();
  out.stun = { sent: 6000, bytesOut, replies, bytesIn, amplification: bytesIn / bytesOut, larger };
};

// 2. 50 MB in 1 MB frames, each on a fresh socket.
const oversized = async () => {
  let closedBig = 0, openFailed = 0;
  const frame = new Uint8Array(1024 * 1024);
  for (let i = 0; i < 50; i++) {
    await new Promise<void>((res) => {
      const w = new WS(wsUrl, { tls });
      const t = setTimeout(() => (w.close(), res()), 3000);
      w.onopen = () => w.send(frame);
      w.onclose = (e) => {
        if (e.code === 1009) closedBig++;
        clearTimeout(t);
        res();
      };
      w.onerror = () => void openFailed++;
    });
  }
  out.oversized = { frames: 50, closedBig, openFailed };
};

// 3. Registrations with fresh identities, 10 sockets at a time.
const registrations = async () => {
  let registered = 0, refused = 0;
  const reasons = new Map<string, number>();
  const one = () =>
    new Promise<void>((res) => {
      const id = generateIdentity();
      const w = new WS(wsUrl, { tls });
      const t = setTimeout(() => (w.close(), res()), 5000);
      w.onmessage = (e) => {
        const m = JSON.parse(String(e.data));
        if (m.t === "challenge")
          w.send(JSON.stringify({ t: "register", pub: Buffer.from(encodePublicIdentity(id.public)).toString("base64"), sig: Buffer.from(sign(id, REGISTER_CONTEXT, Buffer.from(m.nonce, "base64"))).toString("base64"), tether: true }));
        if (m.t === "registered") registered++;
      };
      w.onclose = (e) => {
        if (e.reason) reasons.set(e.reason.split(":")[0], (reasons.get(e.reason.split(":")[0]) ?? 0) + 1), refused++;
        clearTimeout(t);
        res();
      };
    });
  const t0 = Date.now();
  for (let i = 0; i < 20; i++) await Promise.all(Array.from({ length: 10 }, one));
  out.registrations = { tried: 200, registered, refused, reasons: Object.fromEntries(reasons), seconds: (Date.now() - t0) / 1000 };
};

// 4. 10,000 invite PUTs: one enrolment of a self-made network, padded 10,000 ways.
const invites = async () => {
  const root = createNetwork("evil", rootDir);
  const enrolment = issueEnrolment({ networkId: root.id, publicKey: enrolmentKey(randomBytes(32)).publicKey, usableUntil: 2 ** 32 - 1, grantsFor: 3600, name: "", ipv4Prefix: 10, tags: [], issuedAt: Math.floor(Date.now() / 1000), subnets: [] }, root);
  const hash = sha256hex(enrolment);
  const base = { network: JSON.parse(encodeNetworkInfo(root)), enrolment: Buffer.from(enrolment).toString("base64") };
  const codes = new Map<number, number>();
  const t0 = Date.now();
  let next = 0;
  const worker = async () => {
    while (next < 10_000) {
      const i = next++;
      const body = JSON.stringify({ ...base, pad: "x".repeat(i % 2000), n: i });
      const h = i % 2 ? hash : sha256hex(Buffer.from(body));
      const r = await fetch(`${url}/v1/enrol/${h}`, { method: "PUT", body, tls } as RequestInit).catch(() => undefined);
      const code = r?.status ?? 0;
      await r?.arrayBuffer().catch(() => {});
      codes.set(code, (codes.get(code) ?? 0) + 1);
    }
  };
  await Promise.all(Array.from({ length: 32 }, worker));
  out.invites = { puts: 10_000, codes: Object.fromEntries(codes), seconds: (Date.now() - t0) / 1000 };
};

// 5. 1,000 connections, held.
const connections = async () => {
  let opened = 0, refused = 0, closedEarly = 0, maxOpen = 0;
  const socks: WebSocket[] = [];
  // When each held socket opened. The seed closes a socket that has not registered after 5 s, which frees
  // its slot; under load our close event for it can come after the open of the one that took the slot. So
  // "open at once" counts sockets younger than 4.5 s: an older one is the seed's to close, not ours to count.
  const openSince = new Set<{ at: number }>();
  const openNow = () => {
    const now = Date.now();
    let n = 0;
    for (const o of openSince) if (now - o.at < 4_500) n++;
    return n;
  };
  await Promise.all(
    Array.from({ length: 1000 }, () =>
      new Promise<void>((res) => {
        const w = new WS(wsUrl, { tls });
        socks.push(w);
        const t = setTimeout(res, 5000);
        const me = { at: 0 };
        w.onopen = () => ((me.at = Date.now()), openSince.add(me), opened++, (maxOpen = Math.max(maxOpen, openNow())), clearTimeout(t), res());
        w.onerror = () => (refused++, clearTimeout(t), res());
        w.onclose = () => void (closedEarly++, openSince.delete(me));
      }),
    ),
  );
  await Bun.sleep(HOLD_S * 1000);
  out.connections = { tried: 1000, opened, maxOpenAtOnce: maxOpen, refused, closedByServer: closedEarly };
  for (const w of socks) w.close();
};

const t0 = Date.now();
await Promise.all([stun(), oversized(), registrations(), invites(), connections()]);
out.seconds = (Date.now() - t0) / 1000;
console.log(JSON.stringify(out));
process.exit(0);
