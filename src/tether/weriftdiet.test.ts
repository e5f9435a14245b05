// werift's Event with its methods shared (./weriftdiet.ts) behaves as werift's own, and an open link
// has its Events slimmed and still carries messages both ways.
import { openWebrtcPair } from "../../test/lib/webrtc-pair.ts";
import { expect, test } from "bun:test";
import { Event, EventDisposer } from "werift";
import { slimEvent, slimEvents } from "./weriftdiet.ts";
import { WebrtcLink } from "./webrtc.ts";

type E = Event<any[]> & { length: number; ended: boolean; onended?: () => void };

/** One script of uses; the trace of what its subscribers saw and what the calls returned. */
async function script(ev: E, slim: boolean): Promise<unknown[]> {
  const seen: unknown[] = [];
  if (slim) slimEvent(ev);
  ev.execute("nobody listens");
  const a = ev.subscribe((x) => seen.push(["a", x]), () => seen.push("a complete"), (e) => seen.push(["a error", e]));
  ev.once((x) => seen.push(["once", x]));
  ev.queuingSubscribe(async (x) => {
    await Bun.sleep(1);
    seen.push(["queued", x]);
  });
  ev.execute(1);
  ev.execute(2);
  await Bun.sleep(20);
  seen.push(["length", ev.length]);
  a.unSubscribe();
  seen.push(["length after unSubscribe", ev.length]);
  const b = ev.subscribe((x) => seen.push(["b", x]));
  const disposer = new EventDisposer();
  b.disposer(disposer);
  const promised = ev.asPromise(1000);
  const watched = ev.watch((x) => x === 4, 1000);
  ev.execute(3);
  ev.execute(4);
  seen.push(["asPromise", await promised], ["watch", await watched]);
  await expect(ev.asPromise(10)).rejects.toBe("Event asPromise timeout");
  disposer.dispose();
  seen.push(["length after dispose", ev.length]);
  ev.subscribe(() => {}, undefined, (e) => seen.push(["c error", e]));
  ev.error("boom");
  seen.push(["length after error", ev.length]);
  ev.subscribe(() => {}, () => seen.push("d complete"));
  ev.onended = () => seen.push("ended");
  ev.complete();
  ev.execute(5);
  seen.push(["ended", ev.ended, ev.length]);
  expect(() => ev.queuingSubscribe(async () => {})).toThrow("event completed");
  return seen;
}

test("a slimmed Event does what werift's own does", async () => {
  const plain = await script(new Event() as E, false);
  const slim = await script(new Event() as E, true);
  expect(slim).toEqual(plain);
  expect(plain).toContainEqual(["queued", 2]);
});

test("a slimmed Event shares its methods and keeps an onerror set on it", () => {
  const a = new Event() as E, b = new Event() as E;
  const onerror = () => {};
  b.onerror = onerror;
  slimEvent(a);
  slimEvent(b);
  expect(a.execute).toBe(b.execute);
  expect(a.subscribe).toBe(b.subscribe);
  expect(b.onerror).toBe(onerror);
  expect(slimEvent(a)).toBe(false); // once
});

test("an open link's werift Events are slimmed, and the link still carries control messages both ways", async () => {
  const [a, b] = await openWebrtcPair();
  const pc = (l: WebrtcLink) => (l as unknown as { pc: object }).pc;
  // Slimmed at open already: a second walk finds nothing left to do.
  expect(slimEvents([pc(a)])).toBe(0);
  const fresh = new Event() as E;
  expect((pc(a) as { connectionStateChange: E }).connectionStateChange.execute).toBe((slimEvent(fresh), fresh.execute));
  // No SRTP on a link without media; both ends' DTLS present the one key, parsed once.
  type Dtls = { srtp?: unknown; srtcp?: unknown; dtls?: { cipher: { localPrivateKey: object } } };
  const dtls = (l: WebrtcLink) => (pc(l) as { dtlsTransports: Dtls[] }).dtlsTransports[0];
  expect(dtls(a).srtp ?? dtls(a).srtcp).toBeUndefined();
  expect(dtls(a).dtls!.cipher.localPrivateKey).toBe(dtls(b).dtls!.cipher.localPrivateKey);
  const got: string[] = [];
  a.onControl((m) => got.push(`a:${Buffer.from(m)}`));
  b.onControl((m) => got.push(`b:${Buffer.from(m)}`));
  a.sendControl(Buffer.from("to b"));
  b.sendControl(Buffer.from("to a"));
  for (let i = 0; i < 50 && got.length < 2; i++) await Bun.sleep(20);
  expect(got.sort()).toEqual(["a:to a", "b:to b"]);
  const closed = new Promise<string>((r) => b.onClose(r));
  a.close("test");
  expect(await closed).toBeString(); // the far end hears of it through the slimmed events
  b.close("test");
});
