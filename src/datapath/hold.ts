// The hold queue: packets from the TUN that wait for a peer's keys or a path, or for the owner of an
// overlay address to be looked up. Bounded: the oldest go first, and only so many addresses wait.
import type { NodeId } from "../identity/identity.ts";

/** Packets held per peer (or per address) at most; older ones are dropped. */
export const HOLD_PER_PEER = 64;
/** Unknown overlay addresses held for at most. */
export const HOLD_ADDRESSES = 256;

export class Hold {
  // State, owned by Inside (the node's event loop):
  /** By peer: waiting for its keys (a record) or for any path to it. */
  private readonly byPeer = new Map<NodeId, Uint8Array[]>();
  /** By the hex of an overlay address's 10 node-id bytes: waiting to learn whose it is. */
  private readonly byAddress = new Map<string, Uint8Array[]>();
  dropped = 0;

  /** Hold a packet for `to`. */
  forPeer(to: NodeId, packet: Uint8Array): void {
    let q = this.byPeer.get(to);
    if (!q) this.byPeer.set(to, (q = []));
    this.push(q, packet);
  }

  /** Hold a packet for the owner of `address` (hex node-id bits); false when too many addresses wait. */
  forAddress(address: string, packet: Uint8Array): boolean {
    let q = this.byAddress.get(address);
    if (!q) {
      if (this.byAddress.size >= HOLD_ADDRESSES) return false;
      this.byAddress.set(address, (q = []));
    }
    this.push(q, packet);
    return true;
  }

  private push(q: Uint8Array[], packet: Uint8Array): void {
    if (q.length >= HOLD_PER_PEER) {
      q.shift();
      this.dropped++;
    }
    q.push(packet);
  }

  /** Whether packets wait for `to`. */
  holds(to: NodeId): boolean {
    return this.byPeer.has(to);
  }

  holdsAddress(address: string): boolean {
    return this.byAddress.has(address);
  }

  /** Take (remove and return) what waits for the owner of `address`. */
  takeAddress(address: string): Uint8Array[] | undefined {
    const q = this.byAddress.get(address);
    this.byAddress.delete(address);
    return q;
  }

  /** Take what waits for every peer that `ready` says can be sent to now. */
  *takeReady(ready: (to: NodeId) => boolean): Generator<[NodeId, Uint8Array[]]> {
    for (const [to, q] of this.byPeer) {
      if (!ready(to)) continue;
      this.byPeer.delete(to);
      yield [to, q];
    }
  }
}
