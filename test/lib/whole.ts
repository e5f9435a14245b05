// Whole nodes in one process for unit tests (as wireguard-go's TestTwoDevicePing): real identities,
// handshakes, sessions, router, datapath and admission, over in-memory links (src/tether/memory.ts) and
// memory TUNs (src/tun/memory.ts). No root, no werift, no seeds. Also the packets and pings such tests send.
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { ml_dsa65 } from "@noble/post-quantum/ml-dsa.js";
import { parseConfig } from "../../src/config/load.ts";
import { ipv6BytesOf } from "../../src/identity/address.ts";
import type { Identity, NodeId } from "../../src/identity/identity.ts";
import { Node } from "../../src/node/node.ts";
import type { MemoryNet } from "../../src/tether/memory.ts";
import { issueCertificate } from "../../src/trust/certificate.ts";
import { encodeBundle, Networks } from "../../src/trust/networks.ts";
import { networkIdOf, type Root } from "../../src/trust/root.ts";
import { createMemoryTun, type MemoryTun } from "../../src/tun/memory.ts";

export interface Whole {
  node: Node;
  tun: MemoryTun;
  id: NodeId;
  /** Its overlay IPv4 address, 100.64.0.(i + 1). */
  ipv4: string;
}

export interface WholeOptions {
  /** Node i is named `${prefix}${i}`, its TUN `${prefix}mem${i}`. */
  prefix: string;
  /** Which nodes (by index) relay for the others. */
  relays?: ReadonlySet<number>;
  /** Each node allow-lists all the others ([network] allow; default true). */
  allow?: boolean;
  /** Each node is also a member of this network (a certificate in its state directory). */
  network?: Root;
}

/** A network root made from a fixed seed byte (the same keys every run). */
export function testNetwork(seed: number, name = "home"): Root {
  const keys = ml_dsa65.keygen(new Uint8Array(32).fill(seed));
  return { name, id: networkIdOf(keys.publicKey), rootPub: keys.publicKey, dsaSecret: keys.secretKey };
}

/** The nodes one test file runs: start() builds and starts them, stop() (afterEach) stops them and removes their state. */
export class WholeNodes {
  private readonly running: Node[] = [];
  private readonly dirs: string[] = [];

  /** Build and start one node per identity over `net`, node i with the overlay IPv4 address 100.64.0.(i + 1)/24. */
  async start(net: MemoryNet, ids: readonly Identity[], opts: WholeOptions): Promise<Whole[]> {
    const { prefix, relays = new Set<number>(), allow = true, network } = opts;
    const out: Whole[] = [];
    for (const [i, identity] of ids.entries()) {
      const dir = mkdtempSync(join(tmpdir(), `trellis-whole-${prefix}-`));
      this.dirs.push(dir);
      const ipv4 = `100.64.0.${i + 1}`;
      if (network) {
        const now = Math.floor(Date.now() / 1000);
        const cert = issueCertificate({ networkId: network.id, nodeId: identity.public.id, name: `${prefix}${i}`, ipv4, ipv4Prefix: 24, tags: [], subnets: [], notBefore: now - 60, notAfter: now + 3600 }, network);
        Networks.install(dir, identity.public.id, encodeBundle(network, cert));
      }
      const others = ids.filter((o) => o !== identity).map((o) => `"${o.public.id}"`).join(", ");
      const config = parseConfig(
        `[node]\nname = "${prefix}${i}"\nstate_dir = "${dir}"\nipv4 = "${ipv4}/24"\n` +
          (allow ? `[network]\nallow = [${others}]\n` : "") +
          `[tun]\nname = "${prefix}mem${i}"\n[relay]\nenabled = ${relays.has(i)}\nseed = false\n`,
        `${prefix}${i}.toml`,
      );
      const tun = createMemoryTun(`${prefix}mem${i}`, 1500);
      const node = new Node(config, identity, { openTun: async () => tun, links: net.factory() });
      this.running.push(node);
      out.push({ node, tun, id: identity.public.id, ipv4 });
    }
    for (const w of out) await w.node.start();
    return out;
  }

  async stop(): Promise<void> {
    for (const n of this.running.splice(0)) await n.stop();
    for (const d of this.dirs.splice(0)) rmSync(d, { recursive: true, force: true });
  }
}

/** An ICMPv6 echo request (or reply) from a to b with `seq` and `size` bytes of payload. */
export function echo6(a: NodeId, b: NodeId, seq: number, size = 56, reply = false): Uint8Array {
  const p = new Uint8Array(40 + 8 + size);
  p[0] = 0x60;
  new DataView(p.buffer).setUint16(4, 8 + size);
  p[6] = 58;
  p[7] = 64;
  p.set(ipv6BytesOf(a), 8);
  p.set(ipv6BytesOf(b), 24);
  p[40] = reply ? 129 : 128;
  new DataView(p.buffer).setUint16(46, seq);
  for (let i = 0; i < size; i++) p[48 + i] = (seq + i) & 255;
  return p;
}

/** The node answers echo requests written to its TUN the way a kernel would. */
export function answerPings(w: Whole): void {
  w.tun.onWrite = (p) => {
    if (p[0] >> 4 === 6 && p[6] === 58 && p[40] === 128) {
      const r = Uint8Array.from(p);
      r.set(p.subarray(24, 40), 8);
      r.set(p.subarray(8, 24), 24);
      r[40] = 129;
      w.tun.inject([r]);
    }
  };
}

/**
 * Ping from a to b through the TUNs (an echo request every `everyMs`, `size` bytes) until a reply comes
 * back; resolves to the wall time it took.
 */
export async function ping(a: Whole, b: Whole, seq: number, opts: { timeoutMs?: number; everyMs?: number; size?: number } = {}): Promise<number> {
  const { timeoutMs = 10_000, everyMs = 5, size = 56 } = opts;
  const t0 = performance.now();
  const end = t0 + timeoutMs;
  while (performance.now() < end) {
    const got = a.tun.written.findIndex((p) => p[40] === 129 && new DataView(p.buffer, p.byteOffset).getUint16(46) === seq);
    if (got >= 0) {
      a.tun.written.splice(got, 1);
      return performance.now() - t0;
    }
    a.tun.inject([echo6(a.id, b.id, seq, size)]);
    await Bun.sleep(everyMs);
  }
  throw new Error(`no echo reply for seq ${seq} from ${b.id} within ${timeoutMs} ms`);
}
