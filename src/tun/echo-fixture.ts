// Test fixture: open a TUN with the given addresses and answer ICMP / ICMPv6 echo requests sent into it.
// Usage: bun echo-fixture.ts NAME IPV6 IPV4   (prints "ready" when the device is up)
import { openTun } from "./linux.ts";

function checksum(b: Uint8Array, init = 0): number {
  let s = init;
  for (let i = 0; i + 1 < b.length; i += 2) s += (b[i] << 8) | b[i + 1];
  if (b.length & 1) s += b[b.length - 1] << 8;
  while (s >> 16) s = (s & 0xffff) + (s >> 16);
  return ~s & 0xffff;
}

function reply(p: Uint8Array): Uint8Array | null {
  const r = Uint8Array.from(p);
  if (p[0] >> 4 === 4 && p[9] === 1) {
    const ihl = (p[0] & 15) * 4;
    if (r[ihl] !== 8) return null;
    r.set(p.subarray(16, 20), 12);
    r.set(p.subarray(12, 16), 16);
    r[ihl] = 0;
    r[ihl + 2] = r[ihl + 3] = 0;
    const c = checksum(r.subarray(ihl));
    r[ihl + 2] = c >> 8;
    r[ihl + 3] = c & 0xff;
    return r;
  }
  if (p[0] >> 4 === 6 && p[6] === 58 && p[40] === 128) {
    r.set(p.subarray(24, 40), 8);
    r.set(p.subarray(8, 24), 24);
    r[40] = 129;
    r[42] = r[43] = 0;
    const len = r.length - 40;
    const pseudo = new Uint8Array(40);
    pseudo.set(r.subarray(8, 40), 0);
    pseudo[32] = len >> 24; pseudo[33] = (len >> 16) & 0xff; pseudo[34] = (len >> 8) & 0xff; pseudo[35] = len & 0xff;
    pseudo[39] = 58;
    const body = new Uint8Array(40 + len);
    body.set(pseudo);
    body.set(r.subarray(40), 40);
    const c = checksum(body);
    r[42] = c >> 8;
    r[43] = c & 0xff;
    return r;
  }
  return null;
}

const [name, ipv6, ipv4] = process.argv.slice(2);
const tun = await openTun({ name, mtu: 1400, ipv6, prefix6: 48, ipv4, prefix4: 24 });
tun.onPackets((batch) => {
  for (const p of batch) {
    const r = reply(p);
    if (r) tun.writeOne(r);
  }
});
console.log("ready");
process.on("SIGTERM", async () => {
  await tun.close();
  process.exit(0);
});
