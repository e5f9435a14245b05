// Link managers over real werift links on loopback, signalled through one real seed: the tether tests'
// set-up (start() in beforeAll, stop() in afterAll).
import type { Identity, NodeId } from "../../src/identity/identity.ts";
import { startSeed, type Seed } from "../../src/seed/server.ts";
import { LinkManager } from "../../src/tether/links.ts";
import type { Link } from "../../src/tether/webrtc.ts";

export interface TestManager {
  m: LinkManager;
  /** Every link it announced, in order. */
  links: Link[];
  /** What it logged. */
  logs: string[];
}

export class LoopbackLinks {
  /** The seed's URL (its port the kernel's pick), once started. */
  seedUrl = "";
  private seed?: Seed;
  private readonly managers: LinkManager[] = [];

  async start(): Promise<void> {
    this.seed = await startSeed({ listen: "127.0.0.1:0" });
    this.seedUrl = `http://127.0.0.1:${this.seed.port}`;
  }

  /** A link manager for `me` on this seed, accepting only `allow`; `moreSeeds` as a node's records' hints. */
  manager(me: Identity, allow: NodeId[], moreSeeds?: () => string[]): TestManager {
    const logs: string[] = [];
    const m = new LinkManager({
      identity: me,
      seeds: [this.seedUrl],
      accept: (r, _certs) => (allow.includes(r.id) ? true : `${r.id} not allowed`),
      hostAddresses: ["127.0.0.1"],
      moreSeeds,
      log: (_level, msg) => logs.push(msg),
    });
    const links: Link[] = [];
    m.onLink((l) => links.push(l));
    this.managers.push(m);
    return { m, links, logs };
  }

  /** Whether node `id` is registered with the seed (signals to it are delivered, not dropped as undeliverable). */
  registered(id: NodeId): boolean {
    return this.seed?.registered(id) ?? false;
  }

  /** How many signals the seed has passed on. */
  get forwarded(): number {
    return this.seed?.stats.forwarded ?? 0;
  }

  /** Stop every manager made here, then the seed. */
  async stop(): Promise<void> {
    for (const m of this.managers.splice(0)) await m.stop();
    await this.seed?.stop();
  }
}
