// The tag firewall against a hostile member's IPv6 fragments, real nodes in namespaces (issue 14, 8).
// The policy lets "server" reach "laptop", and "laptop" reach "server" not at all. The server (the
// victim) pings the laptop with a fragmented IPv6 packet; then the laptop (the attacker) sends a TCP SYN
// to the victim's port 22 in two IPv6 fragments, crafted on a raw socket in its namespace (python3).
// Before the fix the victim's firewall keyed flows by the next header (44, fragment) without walking
// to TCP, so after its own fragmented ping every IPv6 fragment from the laptop passed for 120 s. Now the
// first fragment is judged by its real protocol and port (refused), and the later one, whose datagram
// never passed, is refused too.
import { afterAll, beforeAll, describe, expect, setDefaultTimeout, test } from "bun:test";
import { writeFileSync } from "node:fs";
import { join } from "node:path";
import { e2eReady, sh, TestNet } from "../lib/netns.ts";
import { TestNode, teardown, tempDir, waitFor } from "../lib/nodes.ts";
import { loadIdentity } from "../../src/identity/identity.ts";
import { createNetwork } from "../../src/trust/root.ts";
import { issueCertificate } from "../../src/trust/certificate.ts";
import { encodeBundle, Networks } from "../../src/trust/networks.ts";
import { issuePolicy } from "../../src/trust/policy.ts";

setDefaultTimeout(120_000);
const root = e2eReady(import.meta.file);

/** A TCP SYN from `src` to `dst`:22 in two IPv6 fragments (16 + 4 bytes of TCP), sent on a raw socket. */
const CRAFT = `
import socket, struct, sys
src, dst = sys.argv[1], sys.argv[2]
s6, d6 = socket.inet_pton(socket.AF_INET6, src), socket.inet_pton(socket.AF_INET6, dst)
tcp = bytearray(struct.pack("!HHIIBBHHH", 40000, 22, 1, 0, 5 << 4, 0x02, 65535, 0, 0))
pseudo = s6 + d6 + struct.pack("!I", len(tcp)) + b"\\0\\0\\0\\x06"
data = pseudo + bytes(tcp)
c = sum((data[i] << 8) + data[i + 1] for i in range(0, len(data), 2))
while c >> 16: c = (c & 0xffff) + (c >> 16)
struct.pack_into("!H", tcp, 16, ~c & 0xffff)
sock = socket.socket(socket.AF_INET6, socket.SOCK_RAW, socket.IPPROTO_RAW)
sock.setsockopt(socket.IPPROTO_IPV6, 36, 1)  # IPV6_HDRINCL
ident = 0x5eed
for off, chunk, more in ((0, tcp[:16], 1), (16, tcp[16:], 0)):
    frag = struct.pack("!BBHI", 6, 0, ((off // 8) << 3) | more, ident)
    ip = struct.pack("!IHBB", 6 << 28, len(frag) + len(chunk), 44, 64) + s6 + d6
    sock.sendto(ip + frag + bytes(chunk), (dst, 0))
print("sent")
`;

describe.skipIf(!root)("hostile member: IPv6 fragments through the tag firewall (namespaces)", () => {
  let net: TestNet, dir: string;
  let seed: TestNode, v: TestNode, m: TestNode;

  beforeAll(async () => {
    dir = tempDir("hostile-frag");
    net = new TestNet("hfrag");
    for (const h of ["seed", "v", "m"]) net.addHost(h);
    const seeds = [`http://${net.host("seed").ip}:7443`];
    seed = new TestNode(net, { host: "seed", name: "seed", relay: true }, dir);
    v = new TestNode(net, { host: "v", name: "server", seeds }, dir);
    m = new TestNode(net, { host: "m", name: "laptop", seeds }, dir);
    const home = createNetwork("home", join(dir, "root-home"));
    const now = Math.floor(Date.now() / 1000);
    const policy = issuePolicy({ networkId: home.id, version: 1, rules: [{ from: "server", to: "laptop" }] }, home);
    for (const [n, ipv4, tag] of [[v, "100.64.9.1", "server"], [m, "100.64.9.2", "laptop"]] as const) {
      const id = loadIdentity(join(n.dir, "state")).public.id;
      Networks.install(join(n.dir, "state"), id, encodeBundle(home, issueCertificate({ networkId: home.id, nodeId: id, name: n.spec.name, ipv4, ipv4Prefix: 24, tags: [tag], subnets: [], notBefore: now - 60, notAfter: now + 3600 }, home)));
      writeFileSync(join(n.dir, "state", "networks", home.id, "policy.rec"), Buffer.from(policy).toString("base64") + "\n");
    }
    seed.spec.allow = [v.id, m.id]; // the seed's relay is no member: it carries them as allow-listed nodes
    seed.writeConfig();
    writeFileSync(join(dir, "craft.py"), CRAFT);
    await seed.start();
    await Promise.all([v.start(), m.start()]);
  });

  afterAll(async () => {
    await teardown([v, m, seed], net, dir);
  });

  test("after the victim's own fragmented packet, a fragmented SYN to its port 22 is refused, both fragments", async () => {
    const counters = () => v.api("/v1/status").counters as Record<string, number>;
    // The victim sends a fragmented IPv6 packet to the laptop (the policy lets it): a session forms on the way.
    const ping = (size: number) => /[1-9]\d* received/.test(sh(["ip", "netns", "exec", v.ns, "ping", "-6", "-c", "1", "-W", "2", "-s", String(size), m.ipv6], { allowFail: true }));
    await waitFor("v's ping reaches m", () => ping(56), 60_000);
    await waitFor("v's fragmented ping reaches m", () => ping(3000), 20_000);
    const before = counters();
    expect(sh(["ip", "netns", "exec", m.ns, "python3", join(dir, "craft.py"), m.ipv6, v.ipv6]).trim()).toBe("sent");
    await waitFor("both fragments refused by v's firewall", () => counters().outside_policy_dropped - before.outside_policy_dropped >= 2, 10_000);
    const after = counters();
    console.log(`[hostile fragments] v: policy dropped +${after.outside_policy_dropped - before.outside_policy_dropped}, written to its TUN +${after.tun_tx_packets - before.tun_tx_packets}`);
  });
});
