// A clock read once per task, for the data path: its layers ask the time several times per packet (the
// router's flow marks and path choice, the link's freshness and MTU), about 50 ns of CPU each, and within
// one synchronous task (a TUN batch, a UDP read) the answers would differ by microseconds. The first
// read of a task is kept until the task ends (a microtask forgets it). Milliseconds on the shared clock
// (performance.timeOrigin + performance.now(), as Date.now() but monotonic within the process).
// Not for anything that must see time move inside one task (a busy wait), nor for handshake timestamps.
let cached: number | undefined;
const forget = () => {
  cached = undefined;
};

export function taskNow(): number {
  if (cached === undefined) {
    cached = performance.timeOrigin + performance.now();
    queueMicrotask(forget);
  }
  return cached;
}
