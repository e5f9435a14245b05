// The Linux TUN device: /dev/net/tun through bun:ffi, addresses set with `ip`, reads in one Worker and
// writes in another (a TUN write runs the kernel's receive path in the writing thread), or both in one
// (ONE_WORKER). Packets to write go into a shared ring (./ring.ts); the writer is woken once per turn of
// the event loop. A lone packet after a quiet spell skips the ring: the node's thread writes it at once,
// saving the writer's wake-up.
//
// The host gets nothing but the overlay prefixes on this interface (the kernel's connected routes for
// its own addresses): no other routes, rules or fwmarks. Closing the fd removes the interface.
import { spawnSync } from "node:child_process";
import { readFileSync, writeFileSync } from "node:fs";
import { availableParallelism } from "node:os";
import { tunLib, VNET_HDR_LEN } from "./ffi.ts";
import { BatchSlots } from "./batch.ts";
import { Codel } from "./codel.ts";
import { ringBuffer, RingWriter, sharedNow } from "./ring.ts";
import { TunError, type TunDevice, type TunOptions, type TunStats } from "./device.ts";
import { DUPLEX_WORDS, W, wakeLib, type DuplexStart } from "./wakefd.ts";

const BATCH = 64;
/** Slots per read with TSO: room for two 64 KB segments cut at full size, and one cut at an MSS of 512. */
const TSO_BATCH = 256;
/**
 * Batches the reader may have posted and the node not yet handled: enough that a busy moment queues
 * here, where CoDel sees how long it waited, rather than in the kernel's queue, where nothing does.
 */
const READER_INFLIGHT = 8;
/**
 * Room for packets waiting for the writer thread (about 1,400 full-size packets, ~12 ms at 1.4 Gbit/s;
 * TRELLIS_RING_BYTES to try another). CoDel alone does not keep this queue short under four TCP
 * streams (it drops thousands a second and ping still waits 15-20 ms); a bound in bytes does, as
 * wireguard-go's fixed-size queues do. A/B in namespaces, alternating, medians of 3 (loaded machine):
 * ping under TCP x4 / TCP x4 Mbit/s / ping under TCP x1 / TCP x1: 4 MB 17.6 ms 1458, 9.2 ms 1443;
 * 2 MB 12.3 ms 1380, 7.9 ms 1372; 1 MB 8.2 ms 1233, 6.3 ms 1269 (too many tail drops in bursts).
 */
const RING_BYTES = Number(process.env.TRELLIS_RING_BYTES) || 2 << 20;
/**
 * A packet to write that comes at least this long (ms) after the one before, with the ring empty, is
 * written by the node's thread itself rather than by the writer worker (writeOne); TRELLIS_TUN_DIRECT=0
 * turns that off.
 */
const QUIET_MS = Number(process.env.TRELLIS_TUN_QUIET_MS ?? 1);
const DIRECT = process.env.TRELLIS_TUN_DIRECT !== "0";
/**
 * The reader worker's module. Run from source, it sits beside this file. In a binary built by
 * scripts/build.ts (entrypoints src/cli/main.ts and src/tun/reader-worker.ts), Bun embeds modules
 * under their common root, src/, so the worker is "./tun/reader-worker.ts" there.
 */
const READER_WORKER = import.meta.url.includes("$bunfs") ? "./tun/reader-worker.ts" : new URL("./reader-worker.ts", import.meta.url).href;
const WRITER_WORKER = import.meta.url.includes("$bunfs") ? "./tun/writer-worker.ts" : new URL("./writer-worker.ts", import.meta.url).href;
const DUPLEX_WORKER = import.meta.url.includes("$bunfs") ? "./tun/duplex-worker.ts" : new URL("./duplex-worker.ts", import.meta.url).href;
/**
 * One worker reading and writing (./duplex-worker.ts) instead of two: ~2.5 MB less on an idle edge (65
 * against 67.6 MB, bench/memory-edge.ts). The default where there is one core (two threads there share
 * it anyway); TRELLIS_TUN_WORKERS=1 or 2 chooses.
 */
const ONE_WORKER = process.env.TRELLIS_TUN_WORKERS ? process.env.TRELLIS_TUN_WORKERS === "1" : availableParallelism() <= 1;
const TUN_F_USO4 = 0x20;
const ERRNO: Record<number, string> = { 1: "EPERM", 2: "ENOENT", 13: "EACCES", 16: "EBUSY", 19: "ENODEV", 22: "EINVAL" };

function ip(args: string[]): void {
  const r = spawnSync("ip", args, { encoding: "utf8" });
  if (r.error) throw new TunError("configure", `cannot run 'ip' (iproute2): ${r.error.message}`);
  if (r.status !== 0) throw new TunError("configure", `ip ${args.join(" ")}: ${(r.stderr || "").trim()}`);
}

export async function openTun(opts: TunOptions): Promise<TunDevice> {
  const lib = tunLib();
  const nameOut = new Uint8Array(16);
  const vnet = lib.gro;
  const fd = lib.tun_open(Buffer.from(opts.name + "\0"), nameOut, vnet ? 1 : 0);
  if (fd < 0) {
    const e = -fd;
    const code = e === 1 || e === 13 ? "permission" : e === 2 || e === 19 ? "no-device" : e === 16 ? "busy" : "io";
    const why =
      code === "permission" ? "needs root or CAP_NET_ADMIN" :
      code === "no-device" ? "/dev/net/tun is missing (load the tun module: modprobe tun)" :
      code === "busy" ? "the interface is in use (another trellis running?)" : `error ${ERRNO[e] ?? e}`;
    throw new TunError(code, `cannot open TUN device ${JSON.stringify(opts.name)}: ${why}`);
  }
  const name = Buffer.from(nameOut).toString("latin1").replace(/\0.*$/s, "");
  try {
    ip(["link", "set", "dev", name, "mtu", String(opts.mtu)]);
    // The overlay address is unique by construction: skip duplicate address detection so it is usable at once.
    try {
      writeFileSync(`/proc/sys/net/ipv6/conf/${name}/accept_dad`, "0");
    } catch {}
    ip(["-6", "addr", "add", `${opts.ipv6}/${opts.prefix6}`, "dev", name, "nodad"]);
    if (opts.ipv4) ip(["addr", "add", `${opts.ipv4}/${opts.prefix4 ?? 10}`, "dev", name]);
    for (const a of opts.moreIpv4 ?? []) ip(["addr", "add", `${a.address}/${a.prefix}`, "dev", name]);
    ip(["link", "set", "dev", name, "up"]);
  } catch (e) {
    lib.tun_close(fd);
    throw e;
  }
  // Large segments on reads (TSO, and USO where the kernel has it), unless TRELLIS_TUN_TSO=0.
  let offload = vnet && lib.tun_offload && process.env.TRELLIS_TUN_TSO !== "0" ? lib.tun_offload(fd, 1) : 0;
  const tun = new LinuxTun(fd, name, opts.mtu, vnet);
  // Both workers build their helper now, before the caller drops privileges; a reader that could only
  // get the libc fallback cannot cut large segments (nor finish partial checksums): offloads go off.
  const reader = await tun.ready();
  if (offload > 0 && !reader.tso) {
    lib.tun_offload!(fd, -1);
    offload = 0;
  }
  tun.reads = offload > 0 ? { tso: true, uso: (offload & TUN_F_USO4) !== 0 } : { tso: false, uso: false };
  tun.begin();
  return tun;
}

class LinuxTun implements TunDevice {
  private rx = 0;
  private tx = 0;
  /** What the kernel hands over on reads: large TCP segments (TSO), large UDP ones (USO). Set by openTun. */
  reads = { tso: false, uso: false };
  private readonly worker: Worker;
  private reading = false;
  /** The reader's words: [0] stop, [1] batches in flight, [2] the reader waits (./reader-worker.ts); with one worker, ./wakefd.ts W. */
  private readonly stop = new SharedArrayBuffer(DUPLEX_WORDS * 4);
  private readonly readerWords = new Int32Array(this.stop);
  private closed = false;
  private readonly lib = tunLib();
  private readonly writer: Worker;
  private readonly ring: RingWriter;
  /** The writer's words: [0] stop, [1] packets the device refused, [2] packets CoDel dropped. */
  private readonly writerControl = new Int32Array(new SharedArrayBuffer(12));
  private ringDropped = 0;
  private directRefused = 0;
  /** When the last packet was handed to writeOne (ms, shared clock): read once per turn, by its first packet. */
  private lastWrite = -Infinity;
  /** CoDel on the wait between a read and its handling (packets it dropped: rxShed). */
  private readonly readCodel = new Codel();
  private rxShed = 0;
  private waking = false;
  /** One worker for both jobs: the eventfd that wakes it (-1: two workers). */
  private readonly efd: number = -1;

  /** `vnet`: the device was opened with virtio-net headers (reads carry one to strip; writes coalesce TCP). */
  constructor(
    private readonly fd: number,
    readonly name: string,
    readonly mtu: number,
    private readonly vnet: boolean,
  ) {
    const ring = ringBuffer(RING_BYTES);
    this.ring = new RingWriter(ring);
    this.ringBuffer = ring;
    if (ONE_WORKER) this.efd = wakeLib().open();
    if (this.efd >= 0) {
      this.worker = this.writer = new Worker(DUPLEX_WORKER);
      this.worker.onerror = (e) => process.stderr.write(`tun ${this.name}: worker failed: ${e.message}\n`);
      this.worker.postMessage({ prepare: true });
      return;
    }
    this.writer = new Worker(WRITER_WORKER);
    this.writer.onerror = (e) => process.stderr.write(`tun ${this.name}: writer worker failed: ${e.message}\n`);
    this.writer.postMessage({ fd, ring, control: this.writerControl.buffer, vnet });
    this.worker = new Worker(READER_WORKER);
    this.worker.onerror = (e) => process.stderr.write(`tun ${this.name}: reader worker failed: ${e.message}\n`);
    this.worker.postMessage({ prepare: true });
  }

  private readonly ringBuffer: SharedArrayBuffer;

  /** With one worker, the slots it reads into: made by begin(), since it cannot take a message once it runs. */
  private slots?: BatchSlots;

  /** With one worker: its start, once openTun knows how the device reads (the writer's is posted at once). */
  begin(): void {
    if (this.efd < 0) return;
    this.slots = this.makeSlots();
    const start: DuplexStart = { fd: this.fd, efd: this.efd, words: this.stop, ring: this.ringBuffer, control: this.writerControl.buffer, vnet: this.vnet, slots: this.slots.init, tso: this.reads.tso };
    this.worker.postMessage(start);
  }

  /** One slot per batch in flight, each with room for the largest packet the MTU allows, plus slack for a device that sends more. */
  private makeSlots(): BatchSlots {
    return BatchSlots.make(READER_INFLIGHT, this.reads.tso ? TSO_BATCH : BATCH, Math.max(this.mtu, 1500) + 64);
  }

  /** The writer sleeps: wake it (once per batch of pushes). */
  private wakeWriter(): void {
    if (this.efd < 0) this.ring.wake();
    else if (Atomics.load(this.readerWords, W.SLEEPING) === 1) wakeLib().wake(this.efd);
  }

  /** Both workers have their helper (at most a few seconds); what the reader can do. */
  ready(): Promise<{ tso: boolean }> {
    const answer = (w: Worker) =>
      new Promise<{ tso: boolean }>((resolve) => {
        const t = setTimeout(() => resolve({ tso: false }), 5000);
        const on = (e: MessageEvent) => {
          if (e.data?.ready === undefined) return;
          clearTimeout(t);
          w.removeEventListener("message", on);
          resolve({ tso: e.data.tso === true });
        };
        w.addEventListener("message", on);
      });
    return Promise.all(this.efd >= 0 ? [answer(this.worker)] : [answer(this.worker), answer(this.writer)]).then(([r]) => r);
  }

  get offload(): string[] {
    return [...(this.vnet ? ["tun gro"] : []), ...(this.reads.tso ? ["tun tso"] : []), ...(this.reads.uso ? ["tun uso"] : [])];
  }

  get stats(): TunStats {
    const refused = Atomics.load(this.writerControl, 1), shed = Atomics.load(this.writerControl, 2);
    let kernelDropped: number | undefined;
    try {
      kernelDropped = Number(readFileSync(`/sys/class/net/${this.name}/statistics/tx_dropped`, "latin1"));
    } catch {}
    return {
      rxPackets: this.rx, rxDropped: this.rxShed, txPackets: this.tx - refused - shed, txDropped: this.ringDropped + this.directRefused + refused + shed,
      txDrops: { ringFull: this.ringDropped, codel: shed, refused: refused + this.directRefused }, kernelDropped,
    };
  }

  onPackets(handler: (packets: Uint8Array[]) => void): void {
    if (this.reading) throw new TunError("io", `${this.name}: onPackets called twice`);
    this.reading = true;
    const w = this.worker;
    // One slot per batch in flight; the packets handed to `handler` are views of a slot, its again for
    // the next read once handler returns (a packet kept longer is copied: ../datapath/hold.ts).
    const slots = this.slots ?? this.makeSlots();
    const skip = this.vnet ? VNET_HDR_LEN : 0;
    w.onmessage = (e: MessageEvent) => {
      if (typeof e.data === "number") {
        const slot = e.data;
        let packets = slots.packets(slot, skip);
        this.rx += packets.length;
        const now = sharedNow(), waited = now - slots.readTime(slot);
        // A drop is due at most every few ms (CoDel's schedule), so one look at the head says it all.
        if (this.readCodel.shouldDrop(waited, now)) {
          packets = packets.slice(1);
          this.rxShed++;
        }
        try {
          handler(packets);
        } finally {
          Atomics.sub(this.readerWords, 1, 1);
          if (Atomics.load(this.readerWords, 2) === 1) {
            if (this.efd < 0) Atomics.notify(this.readerWords, 1);
            else if (Atomics.load(this.readerWords, W.SLEEPING) === 1) wakeLib().wake(this.efd);
          }
        }
      } else if (e.data?.error) {
        process.stderr.write(`tun ${this.name}: read failed (errno ${e.data.error})\n`);
      }
    };
    if (this.efd >= 0) {
      Atomics.store(this.readerWords, W.READING, 1);
      wakeLib().wake(this.efd);
      return;
    }
    w.postMessage({ fd: this.fd, slots: slots.init, stop: this.stop, tso: this.reads.tso });
  }

  writeOne(packet: Uint8Array): void {
    if (this.closed) return;
    // A lone packet after a quiet spell (an idle ping, a handshake): written here at once, which saves
    // the writer thread's wake-up (half the time an idle packet spends in this node). Order holds: the
    // ring is empty, so every packet pushed before has been written. A flow keeps to the ring, whose
    // writer coalesces TCP runs (GRO) and leaves this thread free.
    // Within a turn that pushed already (a wake is due) the clock is not read again: not quiet, and the
    // turn's packets share its first one's time (CoDel measures their wait in the ring, not in the turn).
    if (!this.waking) {
      const now = sharedNow(), quiet = now - this.lastWrite >= QUIET_MS;
      this.lastWrite = now;
      if (quiet && DIRECT && this.ring.empty()) {
        const r = this.vnet ? this.lib.tun_write_vnet!(this.fd, packet, packet.length) : this.lib.tun_write(this.fd, packet, packet.length);
        if (r < 0) this.directRefused++;
        else this.tx++;
        return;
      }
    }
    if (!this.ring.push(packet, this.lastWrite)) {
      this.ringDropped++;
      return;
    }
    this.tx++;
    if (!this.waking) {
      this.waking = true;
      setImmediate(() => {
        this.waking = false;
        this.wakeWriter();
      });
    }
  }

  write(packets: Uint8Array[]): void {
    for (const p of packets) this.writeOne(p);
  }

  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    const w = this.worker;
    if (this.efd >= 0) {
      Atomics.store(this.readerWords, W.STOP, 1);
      const stopped = new Promise<void>((resolve) => {
        const t = setTimeout(resolve, 1000);
        w.addEventListener("message", (e: MessageEvent) => e.data?.stopped && (clearTimeout(t), resolve()));
      });
      wakeLib().wake(this.efd);
      await stopped;
      w.terminate();
      wakeLib().close(this.efd);
      this.lib.tun_close(this.fd);
      return;
    }
    if (this.reading) {
      Atomics.store(this.readerWords, 0, 1);
      await new Promise<void>((resolve) => {
        const t = setTimeout(resolve, 1000);
        w.addEventListener("message", (e: MessageEvent) => {
          if (e.data?.stopped) {
            clearTimeout(t);
            resolve();
          }
        });
      });
    }
    w.terminate();
    Atomics.store(this.writerControl, 0, 1);
    this.ring.wake();
    await new Promise<void>((resolve) => {
      const t = setTimeout(resolve, 1000);
      this.writer.onmessage = (e: MessageEvent) => {
        if (e.data?.stopped) {
          clearTimeout(t);
          resolve();
        }
      };
    });
    this.writer.terminate();
    this.lib.tun_close(this.fd);
  }
}
