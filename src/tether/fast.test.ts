// The fast channel against an on-path spoofer (issue 14, 7): forged frames, replayed frames and replayed
// probe answers, over a fake ICE connection (two in-memory UDP transports).
import { describe, expect, test } from "bun:test";
import { FastChannel, fastClock, FRAME_AUTH_BYTES, type IceConnection } from "./fast.ts";
import { TYPE_FORWARD } from "../route/frame.ts";
import { TYPE_DATA } from "../session/wire.ts";

interface Transport {
  socket: { send(b: Uint8Array, port: number, host: string): void; setRecvBufferSize(n: number): void; setSendBufferSize(n: number): void };
  onData: (data: Buffer, addr: [string, number]) => void;
}
const A_ADDR: [string, number] = ["10.0.0.1", 4000], B_ADDR: [string, number] = ["10.0.0.2", 5000];

/** Two fast channels wired back to back; `wire` sees every datagram (an on-path observer). */
function pair() {
  const wire: { from: "a" | "b"; data: Buffer }[] = [];
  const got = { a: [] as Uint8Array[], b: [] as Uint8Array[] };
  let ta: Transport, tb: Transport;
  const transport = (me: "a" | "b", deliverTo: () => Transport, from: [string, number]): Transport => ({
    socket: {
      send: (b) => {
        const data = Buffer.from(b);
        wire.push({ from: me, data });
        deliverTo().onData(data, from);
      },
      setRecvBufferSize() {}, setSendBufferSize() {},
    },
    onData: () => {},
  });
  ta = transport("a", () => tb, A_ADDR);
  tb = transport("b", () => ta, B_ADDR);
  const conn = (t: Transport, remote: [string, number]): IceConnection =>
    ({ nominated: { protocol: { transport: t }, remoteAddr: remote }, canSendApplicationData: () => true, protocols: [{ transport: t }], checkList: [{ state: 3, remoteAddr: remote }] }) as unknown as IceConnection;
  const a = new FastChannel(conn(ta as Transport, B_ADDR), (x) => got.a.push(x), () => {}, "a");
  const b = new FastChannel(conn(tb as Transport, A_ADDR), (x) => got.b.push(x), () => {}, "b");
  a.keyed(b.token);
  b.keyed(a.token);
  return { a, b, ta, tb, wire, got };
}

const frame = (n: number) => Uint8Array.from([TYPE_FORWARD, 3, 0, ...new Uint8Array(32).fill(n), 1, 2, 3]);

describe("fast channel authentication", () => {
  test("forward frames carry a per-link tag; forged, tampered and replayed ones are refused", async () => {
    const { a, b, tb, wire, got } = pair();
    await Bun.sleep(200); // a probe each way answered: up
    expect(a.state).toBe("up");
    a.mtu = 1472; // as if an MTU round had answered (the first one went out before b listened)
    expect(a.send(frame(1))).toBe(true);
    const sent = wire.filter((w) => w.from === "a" && w.data[0] === TYPE_FORWARD);
    expect(sent.length).toBe(1);
    expect(sent[0].data.length).toBe(frame(1).length + FRAME_AUTH_BYTES);
    expect(got.b).toEqual([frame(1)]);
    // An on-path spoofer sends from a's address: a bare frame (the old format), a tampered one, a replay.
    const rejected = b.stats.rxRejected;
    tb.onData(Buffer.from(frame(9)), A_ADDR);
    const tampered = Buffer.from(sent[0].data);
    tampered[5] ^= 1; // another destination
    tb.onData(tampered, A_ADDR);
    tb.onData(Buffer.from(sent[0].data), A_ADDR);
    expect(got.b.length).toBe(1);
    expect(b.stats.rxRejected).toBe(rejected + 3);
    a.close();
    b.close();
  });

  test("a framed batch (a relay's re-framed frames) goes tagged in order; one over the MTU goes whole to the caller", async () => {
    const { a, b, wire, got } = pair();
    await Bun.sleep(200);
    expect(a.state).toBe("up");
    a.mtu = 200;
    const head = Uint8Array.from([TYPE_FORWARD, 2, 1, ...new Uint8Array(48).fill(7)]);
    const body = (n: number, len = 40) => Uint8Array.from([...new Uint8Array(35).fill(0xee), TYPE_DATA, ...new Uint8Array(len).fill(n)]);
    const big = body(3, 200);
    const refused: Uint8Array[] = [];
    expect(a.sendBatch([body(1), body(2), big, body(4)], (x) => refused.push(x), { head, skip: 35 })).toBe(3);
    const whole = (x: Uint8Array) => Uint8Array.from([...head, ...x.subarray(35)]);
    expect(got.b).toEqual([whole(body(1)), whole(body(2)), whole(body(4))]);
    expect(refused).toEqual([whole(big)]);
    expect(a.stats.txRefused.mtu).toBe(1);
    expect(wire.filter((w) => w.from === "a" && w.data[0] === TYPE_FORWARD).every((w) => w.data.length === 51 + 41 + FRAME_AUTH_BYTES)).toBe(true);
    a.close();
    b.close();
  });

  test("a replayed probe answer does not keep a channel up, nor count twice", async () => {
    const { a, b, ta, wire } = pair();
    await Bun.sleep(200);
    expect(a.state).toBe("up");
    const answers = wire.filter((w) => w.from === "b" && w.data[0] === 0xca && w.data[1] === 2);
    expect(answers.length).toBeGreaterThan(0);
    const stale = a.stats.rxStaleAnswers;
    for (const ans of answers) ta.onData(Buffer.from(ans.data), B_ADDR); // each already counted once
    expect(a.stats.rxStaleAnswers).toBe(stale + answers.length);
    a.close();
    b.close();
  });

  test("only what authenticated says the channel's peer lives: not bare data, nor replayed or forged probes", async () => {
    const { a, b, tb, wire, got } = pair();
    let alive = 0;
    b.alive = () => alive++;
    await Bun.sleep(200);
    expect(a.state).toBe("up");
    a.mtu = 1472;
    // Synchronous from here: no probe timer runs in between.
    const probes = wire.filter((w) => w.from === "a" && w.data[0] === 0xca && w.data[1] === 1);
    expect(probes.length).toBeGreaterThan(0);
    const before = alive;
    expect(before).toBeGreaterThan(0); // a fresh probe from a
    for (const p of probes) tb.onData(Buffer.from(p.data), A_ADDR); // replayed: answered, but no life
    const forgedProbe = Buffer.from(probes.at(-1)!.data);
    forgedProbe.writeUInt32BE(0x7fffffff, 2); // a newer seq, but the MAC no longer fits
    tb.onData(forgedProbe, A_ADDR);
    tb.onData(Buffer.from([TYPE_DATA, 1, 2, 3]), A_ADDR); // bare session data from the pair's address
    expect(got.b.at(-1)).toEqual(Uint8Array.of(TYPE_DATA, 1, 2, 3)); // handed on, for the session to judge
    expect(alive).toBe(before);
    expect(a.send(frame(2))).toBe(true); // a tagged frame: life
    expect(alive).toBe(before + 1);
    a.close();
    b.close();
  });
});

describe("fast channel probe rate", () => {
  /** fastClock on a manual clock for `body`: run(ms) fires the timers due within ms. */
  function manual(body: (run: (ms: number) => void, timers: unknown[]) => void): void {
    const saved = { ...fastClock };
    let now = 0;
    const timers: { at: number; f: () => void }[] = [];
    fastClock.now = () => now;
    fastClock.after = (f, ms) => (timers.push({ at: now + ms, f }), timers.at(-1));
    fastClock.cancel = (t) => void (timers.includes(t as never) && timers.splice(timers.indexOf(t as never), 1));
    const run = (ms: number) => {
      for (const end = now + ms; ; ) {
        timers.sort((x, y) => x.at - y.at);
        if (!timers.length || timers[0].at > end) return void (now = end);
        const t = timers.shift()!;
        now = t.at;
        t.f();
      }
    };
    try {
      body(run, timers);
    } finally {
      Object.assign(fastClock, saved);
    }
  }
  const probesFrom = (wire: { from: string; data: Buffer }[], who: string) => wire.filter((w) => w.from === who && w.data[0] === 0xca && w.data[1] === 1).length;

  test("idle and up, a channel sends no probes and holds no timer; the first frame sent probes at once, at the active rate", () => {
    manual((run, timers) => {
      const { a, b, wire } = pair();
      run(1000);
      expect(a.state).toBe("up"); // and idle since: no frame sent yet
      run(6000);
      const [pa, pb] = [probesFrom(wire, "a"), probesFrom(wire, "b")];
      run(120_000);
      expect([probesFrom(wire, "a"), probesFrom(wire, "b")]).toEqual([pa, pb]);
      expect(timers.length).toBe(0);
      expect(a.send(Uint8Array.of(TYPE_DATA, 1))).toBe(true); // still up: sent, and a wakes
      run(1);
      expect(probesFrom(wire, "a")).toBeGreaterThan(pa);
      run(1500);
      expect(probesFrom(wire, "a") - pa).toBeGreaterThanOrEqual(1500 / 150 - 1);
      expect(probesFrom(wire, "b")).toBe(pb); // b answers; it probes only when it sends
      // The peer goes: found down within a second of traffic; down, it keeps probing to come up again.
      b.close();
      for (let t = 0; t < 1000 && a.state === "up"; t += 50) {
        a.send(Uint8Array.of(TYPE_DATA, 2));
        run(50);
      }
      expect(a.state).toBe("down");
      run(6000);
      const down = probesFrom(wire, "a");
      run(1500);
      expect(probesFrom(wire, "a") - down).toBeGreaterThanOrEqual(1500 / 150 - 1);
      a.close();
    });
  });

  test("an idle link's own probe (probeIdle): one datagram each way, its round trip to the caller once; life at both ends; the channel stays idle", () => {
    manual((run, timers) => {
      const { a, b, ta, wire } = pair();
      run(7000); // up, sized and idle
      expect(a.probeIdle(() => {})).toBe(true);
      run(1);
      let aLife = 0, bLife = 0;
      a.alive = () => aLife++;
      b.alive = () => bLife++;
      const rtts: number[] = [];
      const before = wire.length;
      expect(a.probeIdle((rtt) => rtts.push(rtt))).toBe(true);
      run(1);
      const sent = wire.slice(before);
      expect(sent.map((w) => `${w.from}${w.data[0].toString(16)}/${w.data[1]}`)).toEqual(["aca/1", "bca/2"]); // a probe, its answer
      expect(rtts.length).toBe(1);
      expect(bLife).toBe(1); // a fresh probe: the peer hears us
      expect(aLife).toBe(1); // the answer
      expect(timers.length).toBe(0); // no active probing started
      // The answer replayed: counted as stale, nobody told again.
      ta.onData(Buffer.from(sent[1].data), B_ADDR);
      expect(rtts.length).toBe(1);
      expect(aLife).toBe(1);
      // Not while active (the channel probes on its own then) nor down.
      a.send(Uint8Array.of(TYPE_DATA, 1));
      expect(a.probeIdle(() => {})).toBe(false);
      a.close();
      expect(a.probeIdle(() => {})).toBe(false);
      b.close();
    });
  });
});

