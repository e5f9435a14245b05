// A node that runs its own seed signals through it in-process: a seed URL that turns out to be this node
// (its registration names us as the relay) is dropped, so every signal goes once and no socket to
// ourselves can go over the seed's message rate (a relay answering a crowd did, and each re-registration
// re-signed an attempt to every peer it wanted).
import { expect, test } from "bun:test";
import { encodePublicIdentity, generateIdentity } from "../identity/identity.ts";
import { startSeed } from "../seed/server.ts";
import { untilValue } from "../../test/lib/wait.ts";
import { SignalClient } from "./client.ts";
import type { SignalEnvelope } from "./messages.ts";

test("a node's connection to the seed it runs itself is dropped: signals go once, in-process", async () => {
  const relay = generateIdentity(), member = generateIdentity();
  const seed = await startSeed({ listen: "127.0.0.1:0", relay: relay.public.id, relayPub: encodePublicIdentity(relay.public), local: { id: relay.public.id, receive: () => {} } });
  const url = `http://127.0.0.1:${seed.port}`;
  const got: unknown[] = [];
  const m = new SignalClient(member, [url], (msg) => void got.push(msg), () => {}, { tether: false });
  const logs: string[] = [];
  const r = new SignalClient(relay, [url], () => {}, (_l, msg) => void logs.push(msg), { tether: false });
  try {
    m.start();
    r.start();
    r.attachLocal((to, env) => seed.deliver(to, env), (id) => seed.registered(id));
    await untilValue(() => m.registered, 10_000);
    // Registered with the seed by socket too (the old way), or that socket dropped.
    await untilValue(() => logs.some((l) => l.includes("is this node")) || r.registeredUrls().length > 0, 10_000);
    for (let i = 0; i < 5; i++) expect(r.send(member.public.id, { n: i } as unknown as SignalEnvelope)).toBe(true);
    await untilValue(() => got.length >= 5, 10_000);
    await Bun.sleep(300);
    expect(got.length).toBe(5); // not twice each
    expect(r.registered).toBe(true); // in-process
    expect(r.registeredUrls()).toEqual([]);
    expect(seed.registered(relay.public.id)).toBe(false);
    expect(logs.filter((l) => l.includes("lost seed"))).toEqual([]);
  } finally {
    m.stop();
    r.stop();
    await seed.stop();
  }
});
