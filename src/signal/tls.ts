// How a node checks an https:// seed: the system's CAs plus [network] ca, or a pinned certificate.
//
// A seed URL may pin the seed's certificate for self-signed set-ups, in the form `openssl x509
// -fingerprint -sha256` prints, pasted after '#sha256=':
//   https://203.0.113.7:443#sha256=36:04:B7:9F:...:F3:61   (colons and case optional)
// A pinned seed is checked by that fingerprint alone (no CA, no host name): its certificate is fetched
// once, compared with the pin, then used as the only trust anchor of the real connection, which
// checks the pin again. http:// seeds carry no TLS at all (labs).
import { existsSync, readFileSync } from "node:fs";
import tls from "node:tls";

const SYSTEM_BUNDLES = ["/etc/ssl/certs/ca-certificates.crt", "/etc/pki/tls/certs/ca-bundle.crt", "/etc/ssl/cert.pem"];
const FETCH_CERT_TIMEOUT_MS = 5_000;

export type SeedTlsErrorCode = "bad-pin" | "pin-mismatch" | "unreachable" | "ca-file";
export class SeedTlsError extends Error {
  constructor(readonly code: SeedTlsErrorCode, message: string) {
    super(message);
    this.name = "SeedTlsError";
  }
}

/** A seed URL split into where to connect and what pin (lowercase hex SHA-256 of the DER), if any. */
export function seedEndpoint(url: string): { base: string; pin?: string } {
  const i = url.indexOf("#");
  if (i < 0) return { base: url.replace(/\/$/, "") };
  const frag = url.slice(i + 1);
  const m = /^sha256=([0-9a-fA-F:]+)$/.exec(frag);
  const hex = m ? m[1].replace(/:/g, "").toLowerCase() : "";
  if (!/^[0-9a-f]{64}$/.test(hex)) throw new SeedTlsError("bad-pin", `seed ${url}: a pin is '#sha256=' and 64 hex digits (colons allowed), as 'openssl x509 -fingerprint -sha256' prints`);
  return { base: url.slice(0, i).replace(/\/$/, ""), pin: hex };
}

/** The canonical pasteable form of a pin: '#sha256=' and lowercase hex. */
export function pinFragment(hex: string): string {
  return `#sha256=${hex}`;
}

let systemCas: string[] | undefined;
function systemAuthorities(): string[] {
  if (systemCas) return systemCas;
  const file = SYSTEM_BUNDLES.find((f) => existsSync(f));
  systemCas = [...tls.rootCertificates, ...(file ? [readFileSync(file, "utf8")] : [])];
  return systemCas;
}

/** TLS options (Bun's `tls` for fetch and WebSocket) for one seed; undefined for http:// seeds without extras. */
export async function seedTlsOptions(url: string, caFile?: string | null): Promise<Record<string, unknown> | undefined> {
  const { base, pin } = seedEndpoint(url);
  if (!base.startsWith("https://")) return undefined;
  const host = new URL(base);
  if (pin) {
    const pem = await fetchPeerCertificate(host.hostname.replace(/^\[|\]$/g, ""), Number(host.port || 443));
    const got = pemFingerprint(pem);
    if (got !== pin) throw new SeedTlsError("pin-mismatch", `seed ${base}: certificate sha256=${got} does not match the pin sha256=${pin}`);
    return {
      ca: pem,
      checkServerIdentity: (_h: string, cert: { fingerprint256?: string }) =>
        String(cert?.fingerprint256 ?? "").replace(/:/g, "").toLowerCase() === pin ? undefined : new Error(`certificate does not match the pin sha256=${pin}`),
    };
  }
  if (!caFile) return undefined;
  let extra: string;
  try {
    extra = readFileSync(caFile, "utf8");
  } catch (e) {
    throw new SeedTlsError("ca-file", `[network] ca = ${JSON.stringify(caFile)}: ${(e as Error).message}`);
  }
  return { ca: [...systemAuthorities(), extra] };
}

/** SHA-256 of a PEM certificate's DER, lowercase hex. */
export function pemFingerprint(pem: string): string {
  const b64 = pem.replace(/-----[^-]+-----/g, "").replace(/\s+/g, "");
  return new Bun.CryptoHasher("sha256").update(Buffer.from(b64, "base64")).digest("hex");
}

/** The certificate a TLS server presents (unverified: the caller checks it against a pin). */
function fetchPeerCertificate(host: string, port: number): Promise<string> {
  return new Promise((resolve, reject) => {
    const s = tls.connect({ host, port, rejectUnauthorized: false, servername: /^[\d.]+$|:/.test(host) ? undefined : host });
    const t = setTimeout(() => {
      s.destroy();
      reject(new SeedTlsError("unreachable", `seed https://${host}:${port}: no TLS handshake within ${FETCH_CERT_TIMEOUT_MS / 1000} s`));
    }, FETCH_CERT_TIMEOUT_MS);
    s.once("secureConnect", () => {
      clearTimeout(t);
      const raw = s.getPeerCertificate(true)?.raw;
      s.end();
      if (!raw) return reject(new SeedTlsError("unreachable", `seed https://${host}:${port}: presented no certificate`));
      resolve(`-----BEGIN CERTIFICATE-----\n${raw.toString("base64").match(/.{1,64}/g)!.join("\n")}\n-----END CERTIFICATE-----\n`);
    });
    s.once("error", (e) => {
      clearTimeout(t);
      reject(new SeedTlsError("unreachable", `seed https://${host}:${port}: ${e.message}`));
    });
  });
}

/** fetch() to a seed, checked as its URL says; `path` starts with '/'. */
export async function seedFetch(url: string, path: string, init: RequestInit = {}, caFile?: string | null): Promise<Response> {
  const { base } = seedEndpoint(url);
  const t = await seedTlsOptions(url, caFile);
  return fetch(base + path, { ...init, ...(t ? { tls: t } : {}) } as RequestInit);
}
