// Every decoder and entry point that takes bytes from the network (or from a file a stranger could
// hand us), each with valid seeds made by the real encoders and the only errors it may throw.
import { Hold } from "../../src/datapath/hold.ts";
import { generateIdentity, encodePublicIdentity, decodePublicIdentity, IdentityError, type NodeId } from "../../src/identity/identity.ts";
import { HandshakeError } from "../../src/handshake/errors.ts";
import { decodeInitiation, decodeResponse, MAC1_BYTES } from "../../src/handshake/messages.ts";
import { consumeInitiation, createInitiation, mac1Key } from "../../src/handshake/machine.ts";
import { hmac } from "../../src/handshake/kdf.ts";
import { fragment, Reassembler } from "../../src/handshake/fragment.ts";
import { Sessions } from "../../src/session/sessions.ts";
import { TYPE_INIT_FRAGMENT } from "../../src/session/wire.ts";
import { decodeForward, encodeForward, encodeHop, HOP_LOOKUP, HOP_MISS, HOP_PROBE, HOP_PROBE_ACK, HOP_RECORD, HOP_UNREACHABLE, idBody, readId, readU32, relayed, TYPE_REPORT, u32 } from "../../src/route/frame.ts";
import { decodeRecord, encodeRecord, identityRecordCrypto, peekRecord } from "../../src/route/record.ts";
import { Router, type RouterLink } from "../../src/route/router.ts";
import { simRecordCrypto } from "../../src/sim/crypto.ts";
import { TrustError } from "../../src/trust/errors.ts";
import { decodeCertificate, issueCertificate, verifyCertificate } from "../../src/trust/certificate.ts";
import { decodeEnrolment, decodeToken, encodeToken, enrolmentKey, issueEnrolment } from "../../src/trust/enrolment.ts";
import { issueRevocation, verifyRevocation } from "../../src/trust/revocation.ts";
import { Firewall, issuePolicy, verifyPolicy } from "../../src/trust/policy.ts";
import { decodeBundle, encodeBundle } from "../../src/trust/networks.ts";
import { decodeNetworkInfo, encodeNetworkInfo, networkIdOf, type Root } from "../../src/trust/root.ts";
import { makeSignal, SignalError, SignalVerifier } from "../../src/signal/messages.ts";
import { bindingResponse } from "../../src/seed/stun.ts";
import { answerQuery } from "../../src/trust/dns.ts";
import { ConfigError, parseConfig } from "../../src/config/load.ts";
import { decodeClaims, encodeClaims, PeerTable } from "../../src/datapath/peers.ts";
import { Prober, recordMessage, CONTROL_POLICY } from "../../src/node/control.ts";
import { Outside } from "../../src/datapath/outside.ts";
import { MemoryRoute, MemorySession } from "../../src/datapath/ports.ts";
import { packetTooBig } from "../../src/datapath/toobig.ts";
import { decodeAdvert, encodeAdvert, encodeQuery as encodeRouteQuery } from "../../src/route/subnets.ts";
import { RouteError } from "../../src/route/errors.ts";
import { Routes } from "../../src/node/routes.ts";
import { EXIT_GRANT } from "../../src/trust/subnet.ts";
import { decodeQuery as decodeMemberQuery, encodeQuery as encodeMemberQuery } from "../../src/node/members.ts";
import { FastChannel, TOKEN_BYTES, type IceConnection } from "../../src/tether/fast.ts";
import { readFileSync } from "node:fs";
import { join } from "node:path";
import { randomBytes } from "node:crypto";
import { ml_dsa65 } from "@noble/post-quantum/ml-dsa.js";
import type { Target } from "./mutate.ts";

const text = (s: string) => new Uint8Array(Buffer.from(s));
const str = (b: Uint8Array) => Buffer.from(b).toString("utf8");

/** A network root made from fixed bytes (no files): the same keys on every run. */
function testRoot(): Root {
  const seed = new Uint8Array(32).fill(7);
  const k = ml_dsa65.keygen(seed);
  return { name: "fuzz", id: networkIdOf(k.publicKey), rootPub: k.publicKey, dsaSecret: k.secretKey } as unknown as Root;
}

/** IPv4/IPv6 packets of each upper protocol, for the firewall, the data path and 'too big'. */
function ipPackets(): Uint8Array[] {
  const v4 = (proto: number, payload: number[]) => {
    const p = new Uint8Array(20 + payload.length);
    p[0] = 0x45;
    new DataView(p.buffer).setUint16(2, p.length);
    p[8] = 64;
    p[9] = proto;
    p.set([100, 64, 0, 2], 12);
    p.set([100, 64, 0, 3], 16);
    p.set(payload, 20);
    return p;
  };
  const v6 = (next: number, payload: number[]) => {
    const p = new Uint8Array(40 + payload.length);
    p[0] = 0x60;
    new DataView(p.buffer).setUint16(4, payload.length);
    p[6] = next;
    p[7] = 64;
    p.set([0xfd, 0x74, 0x72, 0x65, 0x6c, 0x6c], 8);
    p.set([0xfd, 0x74, 0x72, 0x65, 0x6c, 0x6c], 24);
    p.set(payload, 40);
    return p;
  };
  const tcp = [0x30, 0x39, 0x00, 0x16, 0, 0, 0, 1, 0, 0, 0, 0, 0x50, 0x02, 0xff, 0xff, 0, 0, 0, 0];
  const udp = [0x30, 0x39, 0x00, 0x35, 0, 12, 0, 0, 1, 2, 3, 4];
  const icmp = [8, 0, 0, 0, 0, 1, 0, 1];
  const frag = [6, 0, 0, 1, 0, 0, 0, 42, ...tcp]; // fragment header, then TCP
  const hop = [17, 0, 1, 4, 0, 0, 0, 0, ...udp]; // hop-by-hop options, then UDP
  return [v4(6, tcp), v4(17, udp), v4(1, icmp), v6(6, tcp), v6(17, udp), v6(58, [128, 0, 0, 0, 0, 1, 0, 1]), v6(44, frag), v6(0, hop), v4(6, [...tcp, ...new Array(1400).fill(0)])];
}

export function targets(): Target[] {
  const now = Date.now();
  const alice = generateIdentity(new Uint8Array(128).fill(1));
  const bob = generateIdentity(new Uint8Array(128).fill(2));
  const root = testRoot();
  const t: Target[] = [];

  // ── handshake ────────────────────────────────────────────────────────────────────────────────────
  const claims = encodeClaims({ name: "alice", ipv4: "100.64.0.2" });
  const init = createInitiation(alice, bob.public, claims, 7, 1n);
  const bobMac1 = mac1Key(bob.public);
  // A response, from a real handshake between two Sessions.
  const wire: { to: NodeId; p: Uint8Array }[] = [];
  const sa = new Sessions({ signatures: "sync", hold: new Hold(), identity: alice, claims, accept: () => true, transmit: (to, p) => wire.push({ to, p }), deliver: () => {} });
  const sb = new Sessions({ signatures: "sync", hold: new Hold(), identity: bob, claims: encodeClaims({ name: "bob" }), accept: () => true, transmit: (to, p) => wire.push({ to, p }), deliver: () => {} });
  sa.learn(bob.public);
  sb.learn(alice.public);
  sa.send(bob.public.id, new Uint8Array([0x60, 0, 0, 0]));
  const initFragments = wire.splice(0).map((w) => w.p);
  for (const f of initFragments) sb.receive(f, alice.public.id);
  const respFragments = wire.splice(0).map((w) => w.p);
  for (const f of respFragments) sa.receive(f, bob.public.id);
  const dataPackets = wire.splice(0).map((w) => w.p);
  sa.send(bob.public.id, new Uint8Array(1200).fill(0x45));
  dataPackets.push(...wire.splice(0).map((w) => w.p));
  const whole = (frags: Uint8Array[]) => {
    const r = new Reassembler();
    let m: Uint8Array | undefined;
    for (const f of frags) m = r.add("x", "x", f) ?? m;
    return m!;
  };
  const response = whole(respFragments);
  t.push({ name: "handshake initiation (decode)", seeds: [init.message], count: 5000, run: (b) => decodeInitiation(b), allowed: [HandshakeError] });
  t.push({ name: "handshake response (decode)", seeds: [response], count: 5000, run: (b) => decodeResponse(b), allowed: [HandshakeError] });
  // Past mac1: each mutant gets a correct mac1, so it reaches the KEM, the DH and the AEAD.
  t.push({
    name: "handshake initiation past mac1 (consume)", longCount: 20_000,
    seeds: [init.message],
    count: 400,
    run: (b) => {
      let m;
      try {
        m = decodeInitiation(b);
      } catch {}
      if (m) b.set(hmac(bobMac1, m.macced).subarray(0, MAC1_BYTES), m.macced.length); // mac1 follows what it covers
      consumeInitiation(bob, bobMac1, b, () => true);
    },
    allowed: [HandshakeError],
  });
  t.push({ name: "handshake fragments (reassembler)", seeds: [...initFragments, ...respFragments], count: 20000, run: (() => {
    const r = new Reassembler();
    let i = 0;
    return (b: Uint8Array) => {
      const src = `src${i++ % 37}`;
      r.add(i % 3 ? src : "relay", src, b);
    };
  })() });
  // The whole session entry point: fragments, data packets, anything, from a linked peer.
  {
    const warned: string[] = [];
    const victim = new Sessions({ signatures: "sync", hold: new Hold(), identity: bob, claims, accept: () => true, transmit: () => {}, deliver: () => {}, log: (level, m) => level === "warn" && m.startsWith("dropped a packet") && warned.push(m) });
    victim.learn(alice.public);
    // give the victim a live session with alice so data packets reach the keypair and the replay window
    for (const f of initFragments) victim.receive(f, alice.public.id);
    t.push({
      name: "session packets (Sessions.receive)",
      seeds: [...initFragments, ...respFragments, ...dataPackets],
      count: 30000,
      run: (b) => {
        victim.receive(b, alice.public.id);
        if (warned.length) throw new Error(warned.splice(0).join("; "));
      },
    });
  }

  // ── frames between relays ────────────────────────────────────────────────────────────────────────
  const A = "a1".repeat(16) as NodeId, B = "b2".repeat(16) as NodeId, X = "c3".repeat(16) as NodeId;
  const fwd = encodeForward(B, A, dataPackets[0] ?? new Uint8Array([0xc4, 1, 2, 3]));
  const simRec = encodeRecord({ id: X, relay: true, relays: [], hints: ["http://10.0.0.1:7443"], issued: now, expires: now + 60_000, load: 5 }, simRecordCrypto(X));
  const hops = [
    encodeHop(HOP_PROBE, u32(1)), encodeHop(HOP_PROBE_ACK, u32(1)), encodeHop(HOP_RECORD, simRec),
    encodeHop(HOP_LOOKUP, idBody(B)), encodeHop(HOP_LOOKUP, new Uint8Array(10).fill(0xb2)), encodeHop(HOP_MISS, idBody(B)), encodeHop(HOP_UNREACHABLE, idBody(B)),
  ];
  const report = new Uint8Array([TYPE_REPORT, ...Buffer.from(B, "hex"), 0, 0, 0, 1]);
  const frames = [fwd, relayed(fwd, X, true), encodeForward(A, B, new Uint8Array([0xc7, 1, 2])), ...hops, report];
  t.push({ name: "forward frames (decodeForward)", seeds: frames, count: 20000, run: (b) => { decodeForward(b); readU32(b); readId(b); } });
  {
    const link = (peer: NodeId): RouterLink => ({ peer, state: "open", sendPacket: () => true, sendProbe: () => true, sendControl: () => {} });
    let clock = now;
    const router = new Router({
      self: A, relay: { enabled: true, bandwidthBps: 0 }, links: { link, connect: () => {}, disconnect: () => {} },
      now: () => clock, crypto: simRecordCrypto(A), idleTimeoutMs: 60_000, deliver: () => {},
    });
    router.linked(X);
    router.linked(B);
    let n = 0;
    t.push({ name: "forward, hop and report frames (Router.receive)", seeds: frames, count: 30000, run: (b) => {
      router.receive(X, b);
      if (++n % 500 === 0) {
        clock += 250;
        router.tick();
      }
    } });
  }
  // ── records, certificates, tokens, revocations, policies ─────────────────────────────────────────
  const realCrypto = identityRecordCrypto(alice);
  const record = encodeRecord({ id: alice.public.id, relay: false, relays: [B, X], hints: ["https://seed.example:443"], issued: now, expires: now + 60_000 }, realCrypto);
  t.push({ name: "discovery records (peek)", seeds: [record, simRec], count: 20000, run: (b) => void peekRecord(b) });
  t.push({ name: "discovery records (decode + verify)", longCount: 20_000, seeds: [record], count: 1500, run: (b) => decodeRecord(b, realCrypto, now) });
  const nowS = Math.floor(now / 1000);
  const cert = issueCertificate({ networkId: root.id, nodeId: alice.public.id, name: "alice", ipv4: "100.64.0.2", ipv4Prefix: 24, tags: ["laptop"], subnets: [{ family: 4, prefix: 24, address: "192.168.1.0" }], notBefore: nowS - 60, notAfter: nowS + 3600 }, root);
  const ek = enrolmentKey(new Uint8Array(32).fill(3));
  const enrol = issueEnrolment({ networkId: root.id, publicKey: ek.publicKey, issuedAt: nowS - 10, usableUntil: nowS + 3600, grantsFor: 86400, tags: ["laptop"], ipv4: "100.64.0.9", name: "", ipv4Prefix: 24, subnets: [{ family: 4, prefix: 24, address: "192.168.1.0" }] }, root);
  const certByInvite = issueCertificate({ networkId: root.id, nodeId: alice.public.id, name: "alice", ipv4: "100.64.0.9", ipv4Prefix: 24, tags: ["laptop"], subnets: [], notBefore: nowS - 60, notAfter: nowS + 3600, enrolment: enrol } as never, ek);
  t.push({ name: "certificates (decode)", seeds: [cert, certByInvite], count: 20000, run: (b) => void decodeCertificate(b), allowed: [TrustError, IdentityError] });
  t.push({ name: "certificates (verify)", longCount: 20_000, seeds: [cert, certByInvite], count: 1500, run: (b) => void verifyCertificate(b, root.rootPub, root.id, alice.public.id, nowS), allowed: [TrustError, IdentityError] });
  t.push({ name: "enrolments (decode)", seeds: [enrol], count: 10000, run: (b) => void decodeEnrolment(b), allowed: [TrustError, IdentityError] });
  const token = encodeToken({ networkId: root.id, seed: new Uint8Array(32).fill(3), hash: "ab".repeat(32), expires: nowS + 3600, seeds: ["http://10.0.0.1:7443", "https://seed.example"] });
  t.push({ name: "invite tokens (text)", seeds: [text(token)], count: 15000, run: (b) => void decodeToken(str(b)), allowed: [TrustError] });
  t.push({ name: "invite tokens (payload bytes)", seeds: [Buffer.from(token.slice(token.indexOf(":") + 1), "base64url")], count: 15000, run: (b) => void decodeToken(`trellis1:${Buffer.from(b).toString("base64url")}`), allowed: [TrustError] });
  const bundle = encodeBundle(root, cert);
  t.push({ name: "certificate bundles (text)", longCount: 100_000, seeds: [text(bundle)], count: 3000, run: (b) => void decodeBundle(str(b)), allowed: [TrustError, IdentityError] });
  t.push({ name: "network info (JSON)", seeds: [text(encodeNetworkInfo(root))], count: 10000, run: (b) => void decodeNetworkInfo(str(b), "fuzz"), allowed: [TrustError] });
  const revocation = issueRevocation({ networkId: root.id, nodeId: bob.public.id, time: nowS, reason: "lost laptop" }, root);
  t.push({ name: "revocations (verify)", longCount: 20_000, seeds: [revocation], count: 1500, run: (b) => void verifyRevocation(b, root.rootPub, root.id), allowed: [TrustError, IdentityError] });
  const policy = issuePolicy({ networkId: root.id, version: 3, rules: [{ from: "laptop", to: "server", proto: "tcp", ports: "22" }, { from: "*", to: "*", proto: "icmp" }] }, root);
  t.push({ name: "policies (verify)", longCount: 20_000, seeds: [policy], count: 1500, run: (b) => void verifyPolicy(b, root.rootPub, root.id), allowed: [TrustError] });
  t.push({ name: "public identities", seeds: [encodePublicIdentity(alice.public)], count: 3000, run: (b) => void decodePublicIdentity(b), allowed: [IdentityError] });
  t.push({ name: "handshake claims (JSON)", seeds: [claims, encodeClaims({ name: "x", certs: [bundle] })], count: 10000, run: (b) => void decodeClaims(b) });

  // ── signalling ───────────────────────────────────────────────────────────────────────────────────
  {
    const sig = makeSignal(alice, "offer", bob.public.id, "v=0\r\no=- 1 1 IN IP4 0.0.0.0\r\n", now, [bundle]);
    const verifier = new SignalVerifier(bob.public.id, () => now);
    t.push({ name: "signal envelopes (JSON → verify)", longCount: 200_000, seeds: [text(JSON.stringify(sig)), text(JSON.stringify({ ...sig, kind: "bye", sdp: undefined }))], count: 4000, run: (b) => {
      let raw: unknown;
      try {
        raw = JSON.parse(str(b)); // the seed client parses inside its own try
      } catch {
        return;
      }
      verifier.verify(raw);
    }, allowed: [SignalError] });
  }

  // ── STUN, DNS, config ────────────────────────────────────────────────────────────────────────────
  const stunReq = new Uint8Array(20);
  new DataView(stunReq.buffer).setUint16(0, 0x0001);
  new DataView(stunReq.buffer).setUint32(4, 0x2112a442);
  stunReq.set(randomBytesFixed(12), 8);
  const stunWithAttr = new Uint8Array([...stunReq.subarray(0, 2), 0, 8, ...stunReq.subarray(4), 0x80, 0x22, 0, 4, 0x74, 0x65, 0x73, 0x74]);
  t.push({ name: "STUN binding requests", seeds: [stunReq, stunWithAttr], count: 20000, run: (b) => void bindingResponse(b, "198.51.100.7", 40000) });
  const q = (name: string, type: number) => new Uint8Array([0x12, 0x34, 1, 0, 0, 1, 0, 0, 0, 0, 0, 0, ...name.split(".").flatMap((l) => [l.length, ...Buffer.from(l)]), 0, 0, type, 0, 1]);
  t.push({ name: "DNS queries", seeds: [q("alice.home", 1), q("bob.home", 28), q("x.y.z", 16)], count: 20000, run: (b) => void answerQuery(b, (n) => (n.startsWith("alice") ? [new Uint8Array([100, 64, 0, 2])] : undefined)) });
  const configs = ["trellis.toml", "seed.toml"].map((f) => {
    try {
      return text(readFileSync(join(import.meta.dir, "../../config", f), "utf8").replace(/^# ?([a-z_]+ = )/gm, "$1"));
    } catch {
      return text("[node]\nname = \"x\"\n");
    }
  });
  t.push({ name: "config files (TOML)", seeds: configs, count: 6000, run: (b) => void parseConfig(str(b), "fuzz.toml"), allowed: [ConfigError] });

  // ── what a peer's sealed payload carries: control messages and IP packets ────────────────────────
  {
    const peers = new PeerTable();
    peers.ensure(alice.public.id).ipv4 = "100.64.0.2";
    const prober = new Prober(() => {}, () => performance.now());
    const fw = new Firewall({ networkId: root.id, version: 1, rules: [{ from: "laptop", to: "server", proto: "tcp", ports: "22" }] });
    const outside = new Outside(peers, { ipv6: new Uint8Array(16), ipv4Keys: [] }, {
      session: new MemorySession(), route: new MemoryRoute(), tun: { writeOne: () => {} },
      policy: { inbound: (from: string, p: Uint8Array) => fw.inbound(from, ["laptop"], ["server"], p) },
      control: (from, p) => void prober.receive(from, p),
      signal: () => {},
    });
    const control = [new Uint8Array([1, 0, 0, 0, 9]), new Uint8Array([2, 0, 0, 0, 9]), recordMessage(CONTROL_POLICY, policy)];
    t.push({ name: "decrypted payloads (Outside: IP, control, firewall)", seeds: [...ipPackets(), ...control], count: 20000, run: (b) => outside.fromPeer(alice.public.id, b) });
    t.push({ name: "firewall flows (outbound + inbound)", seeds: ipPackets(), count: 20000, run: (b) => { fw.outbound("p", b); fw.inbound("p", ["laptop"], ["server"], b); } });
    t.push({ name: "packet too big (from the TUN)", seeds: ipPackets(), count: 20000, run: (b) => void packetTooBig(b, 1280) });
  }

  // ── subnet routes: route queries and adverts inside the session, router lookups ─────────────────
  {
    const config = parseConfig('[routes]\naccept = true\nexit_node = "auto"\n', "fuzz.toml");
    const grant = [{ family: 4 as const, address: "192.168.0.0", prefix: 16 }, ...EXIT_GRANT];
    const routes = new Routes({
      config, self: bob.public.id, grant: [], send: () => {}, reach: () => false, resetSession: () => {}, ask: () => {},
      membership: () => ({ networkId: root.id, nodeId: alice.public.id, name: "alice", ipv4Prefix: 24, tags: [], subnets: grant, notBefore: 0, notAfter: 2 ** 40 }),
      grantIn: () => [], allowListed: () => false, peerAt: () => undefined,
      name: () => "alice", underlay: () => [], rxBytes: () => 0, isOverlay4: () => false, log: () => {},
    });
    routes.addRouter(alice.public.id);
    const adverts = [encodeAdvert({ seq: 1, exit: true, prefixes: [{ family: 4, address: "192.168.50.0", prefix: 24 }, { family: 6, address: "fd00:1::", prefix: 64 }] }), encodeAdvert({ seq: 2, exit: false, prefixes: [] }), encodeRouteQuery(7)];
    t.push({ name: "route adverts (decode)", seeds: adverts, count: 20000, run: (b) => void decodeAdvert(b), allowed: [RouteError] });
    t.push({ name: "route queries and adverts (Routes.control)", seeds: adverts, count: 20000, run: (b) => void routes.control(alice.public.id, b) });
    t.push({ name: "member lookup queries (addresses, names, routers)", seeds: [encodeMemberQuery({ ipv4: "100.64.0.2" }), encodeMemberQuery({ name: "alice" }), encodeMemberQuery({ router: 3 })], count: 10000, run: (b) => void decodeMemberQuery(b) });
  }

  // ── the fast channel: raw datagrams on the ICE 5-tuple ───────────────────────────────────────────
  {
    let deliver = (_b: Uint8Array, _a: [string, number]) => {};
    const socket = { setRecvBufferSize() {}, setSendBufferSize() {}, send() {} };
    const transport = { socket, onData: (_d: Buffer, _a: [string, number]) => {} } as never as { socket: unknown; onData: (d: Buffer, a: [string, number]) => void };
    const conn = { nominated: { protocol: { transport }, remoteAddr: ["198.51.100.9", 5000] }, canSendApplicationData: () => true, protocols: [{ transport }], checkList: [{ state: 3, remoteAddr: ["198.51.100.9", 5000] }] } as unknown as IceConnection;
    const fc = new FastChannel(conn, () => {}, () => {}, "fuzz");
    fc.keyed(new Uint8Array(TOKEN_BYTES).fill(5));
    deliver = (b, a) => transport.onData(Buffer.from(b), a);
    const probe = new Uint8Array(24);
    probe[0] = 0xca;
    probe[1] = 1;
    t.push({
      name: "fast-channel datagrams",
      seeds: [probe, ...dataPackets, fwd, new Uint8Array([0x16, 0xfe, 0xfd, 0, 0]), new Uint8Array([0, 1, 0, 0, 0x21, 0x12, 0xa4, 0x42])],
      count: 20000,
      run: (() => {
        let i = 0;
        return (b: Uint8Array) => deliver(b, i++ % 8 === 0 ? ["203.0.113.1", 9] : ["198.51.100.9", 5000]);
      })(),
      done: () => fc.close(),
    });
  }
  return t;
}

function randomBytesFixed(n: number): Uint8Array {
  return new Uint8Array(n).map((_, i) => (i * 37 + 11) & 255);
}
void randomBytes;
