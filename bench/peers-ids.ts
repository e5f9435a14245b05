// Identities of bench/peers-load.ts's emulated peers: fixed seeds, so the driver (which writes the relay's
// allow-list) and each worker make the same ones without passing keys around.
import { generateIdentity } from "../src/identity/identity.ts";

export function benchIdentity(i: number): ReturnType<typeof generateIdentity> {
  const seeds = new Uint8Array(128).fill(0x5a);
  new DataView(seeds.buffer).setUint32(0, i + 1);
  return generateIdentity(seeds);
}
