// The anti-replay window of RFC 6479: a ring of 64-bit words, 8128 counters wide (as WireGuard).
//
// check() says whether a counter could be new; update() records it. Call update() only after the
// packet's tag verified, so forged packets never move the window.
const WORD_BITS = 32; // JS bit operations are 32-bit: the ring holds 32-bit words
const RING_WORDS = 256; // 8192 bits
const REDUNDANT_BITS = WORD_BITS; // one word is always partly stale
export const WINDOW_SIZE = RING_WORDS * WORD_BITS - REDUNDANT_BITS; // 8160 ≥ WireGuard's 8128

export class ReplayWindow {
  private ring = new Uint32Array(RING_WORDS);
  private last = -1;

  /** Whether `counter` is not too old and not seen before. */
  check(counter: number): boolean {
    if (counter > this.last) return true;
    if (this.last - counter >= WINDOW_SIZE) return false;
    const word = Math.floor(counter / WORD_BITS) % RING_WORDS;
    return (this.ring[word] & (1 << counter % WORD_BITS)) === 0;
  }

  /** Record `counter` as seen; false if it was a replay or too old. */
  update(counter: number): boolean {
    if (!this.check(counter)) return false;
    if (counter > this.last) {
      const cur = Math.floor(counter / WORD_BITS);
      const prev = this.last < 0 ? -1 : Math.floor(this.last / WORD_BITS);
      const diff = Math.min(cur - prev, RING_WORDS);
      for (let i = 1; i <= diff; i++) this.ring[(prev + i) % RING_WORDS] = 0;
      this.last = counter;
    }
    const word = Math.floor(counter / WORD_BITS) % RING_WORDS;
    this.ring[word] |= 1 << counter % WORD_BITS;
    return true;
  }
}
