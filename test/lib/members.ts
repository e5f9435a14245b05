// Membership for e2e tests: sign a node's certificate with a network root and install it in the
// node's state directory, as `trellis join --install` would.
import { join } from "node:path";
import { loadIdentity } from "../../src/identity/identity.ts";
import type { Root } from "../../src/trust/root.ts";
import { issueCertificate } from "../../src/trust/certificate.ts";
import { encodeBundle, Networks } from "../../src/trust/networks.ts";
import type { TestNode } from "./nodes.ts";

export function enrol(n: TestNode, r: Root, ipv4: string, tags: string[] = []): void {
  const id = loadIdentity(join(n.dir, "state")).public.id;
  const now = Math.floor(Date.now() / 1000);
  const cert = issueCertificate({ networkId: r.id, nodeId: id, name: n.spec.name, ipv4, ipv4Prefix: 24, tags, subnets: [], notBefore: now - 60, notAfter: now + 3600 }, r);
  Networks.install(join(n.dir, "state"), id, encodeBundle(r, cert));
}
