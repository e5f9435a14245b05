// werift imports @peculiar/x509 only to make its own DTLS certificate; links bring theirs
// (./dtlscert.ts), and loading the library costs a node ~6.5 MB of memory for nothing. This module
// stands in for it: the names werift touches when it loads, and nothing that makes a certificate.
// The binary is built with it in its place (scripts/build.ts); a node run from source puts it there
// before werift loads (src/cli/main.ts).
import type { BunPlugin } from "bun";

const unused = (what: string) => () => {
  throw new Error(`@peculiar/x509 ${what}: not in this build (links bring their own certificate, src/tether/dtlscert.ts)`);
};
export const cryptoProvider = { set(): void {} };
export const X509CertificateGenerator = { createSelfSigned: unused("X509CertificateGenerator.createSelfSigned") };
export const PemConverter = { encode: unused("PemConverter.encode") };

/** The module name this file replaces. */
export const X509_MODULE = "@peculiar/x509";

/** For Bun.build: every import of @peculiar/x509 resolves to this file. */
export const x509StubPlugin: BunPlugin = {
  name: "trellis: @peculiar/x509 stub",
  setup(build) {
    build.onResolve({ filter: /^@peculiar\/x509$/ }, () => ({ path: import.meta.path }));
  },
};

let registered = false;
/** At run time, before werift is first imported: imports of @peculiar/x509 get this module. */
export function stubX509(): void {
  if (registered) return;
  registered = true;
  Bun.plugin({
    name: x509StubPlugin.name,
    setup(build) {
      build.module(X509_MODULE, () => ({ loader: "object", exports: { cryptoProvider, X509CertificateGenerator, PemConverter } }));
    },
  });
}
