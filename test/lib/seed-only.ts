// A bare seed (signalling and STUN, no node) for tests that need something to measure against:
// `bun test/lib/seed-only.ts HOST` listens on HOST:<port from the kernel> and prints "seed PORT".
import { startSeed } from "../../src/seed/server.ts";

const seed = await startSeed({ listen: `${process.argv[2] ?? "127.0.0.1"}:0` });
console.log(`seed ${seed.port}`);
process.on("SIGTERM", () => void seed.stop().then(() => process.exit(0)));
