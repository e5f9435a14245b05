// The TUN writer: a Worker that takes packets from a shared ring (./ring.ts) and writes them to the
// device. A write to a TUN runs the kernel's receive path (TCP included) in the writing thread, so
// writing here leaves the node's event loop free and puts a second core to work.
import { ptr, type Pointer } from "bun:ffi";
import { tunLib } from "./ffi.ts";
import { RingReader } from "./ring.ts";

declare var self: Worker;

export interface WriterStart {
  fd: number;
  ring: SharedArrayBuffer;
  /** Int32 words: [0] = 1 asks the writer to stop; [1] counts packets the device refused. */
  control: SharedArrayBuffer;
}

const BATCH = 64;

self.onmessage = (e: MessageEvent<WriterStart>) => {
  const { fd } = e.data;
  const lib = tunLib();
  const ring = new RingReader(e.data.ring);
  const control = new Int32Array(e.data.control);
  const base = (ptr(new Uint8Array(e.data.ring)) as number) + RingReader.dataOffset;
  const write = (off: number, len: number) => {
    if (lib.tun_write(fd, (base + off) as Pointer as unknown as Uint8Array, len) < 0) Atomics.add(control, 1, 1);
  };
  while (Atomics.load(control, 0) === 0) ring.drain(write, BATCH, 200);
  self.postMessage({ stopped: true });
};
