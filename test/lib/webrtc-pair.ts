// Two real werift links on loopback, open to each other (offer, answer, accept): for tests of src/tether.
import type { NodeId } from "../../src/identity/identity.ts";
import { WebrtcLink } from "../../src/tether/webrtc.ts";

export async function openWebrtcPair(): Promise<[WebrtcLink, WebrtcLink]> {
  const log = () => {};
  const a = new WebrtcLink("a" as NodeId, [], log, ["127.0.0.1"]);
  const b = new WebrtcLink("b" as NodeId, [], log, ["127.0.0.1"]);
  const opened = Promise.all([a, b].map((l) => new Promise<void>((r) => l.onOpen(r))));
  await a.accept(await b.answer(await a.offer()));
  await opened;
  return [a, b];
}
