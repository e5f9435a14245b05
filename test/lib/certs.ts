// Test certificates made in-test with openssl: a private CA and a seed certificate it signs, or a
// self-signed one; and the pin form a person pastes (openssl's own fingerprint output).
import { mkdirSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { sh } from "./netns.ts";

export interface TestCerts {
  dir: string;
  caCert: string;
  cert: string;
  key: string;
  /** The seed certificate's SHA-256 fingerprint as `openssl x509 -fingerprint -sha256` prints it (AB:CD:...). */
  fingerprint: string;
}

/**
 * In `dir`: a CA (ca.pem) and a seed certificate for `names` (DNS names or IPs) signed by it, or with
 * `selfSigned` a self-signed seed certificate (ca.pem is then that certificate itself).
 */
export function makeCerts(dir: string, names: string[], selfSigned = false, tag = "seed"): TestCerts {
  mkdirSync(dir, { recursive: true });
  const san = names.map((n) => (/^[\d.]+$|:/.test(n) ? `IP:${n}` : `DNS:${n}`)).join(",");
  const [cert, key, caCert, caKey] = [join(dir, `${tag}.pem`), join(dir, `${tag}.key`), join(dir, `${tag}-ca.pem`), join(dir, `${tag}-ca.key`)];
  const ec = ["-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes"];
  if (selfSigned) {
    sh(["openssl", "req", "-x509", ...ec, "-keyout", key, "-out", cert, "-days", "2", "-subj", `/CN=${names[0]}`, "-addext", `subjectAltName=${san}`]);
    sh(["cp", cert, caCert]);
  } else {
    sh(["openssl", "req", "-x509", ...ec, "-keyout", caKey, "-out", caCert, "-days", "2", "-subj", "/CN=trellis test CA"]);
    const csr = join(dir, `${tag}.csr`);
    sh(["openssl", "req", ...ec, "-keyout", key, "-out", csr, "-subj", `/CN=${names[0]}`, "-addext", `subjectAltName=${san}`]);
    const ext = join(dir, `${tag}.ext`);
    writeFileSync(ext, `subjectAltName=${san}\nbasicConstraints=CA:FALSE\nkeyUsage=digitalSignature\nextendedKeyUsage=serverAuth\n`);
    sh(["openssl", "x509", "-req", "-in", csr, "-CA", caCert, "-CAkey", caKey, "-CAcreateserial", "-out", cert, "-days", "2", "-extfile", ext]);
  }
  const fingerprint = sh(["openssl", "x509", "-noout", "-fingerprint", "-sha256", "-in", cert]).trim().split("=")[1];
  return { dir, caCert, cert, key, fingerprint };
}
