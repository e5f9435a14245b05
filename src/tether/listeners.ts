// What the links built here share (./wslink.ts, ./fallback.ts, ./memory.ts): state, counters, the packet,
// control and close listeners, delivery to them, and closing once.

type FrameListener = (b: Uint8Array) => void;
type BatchListener = (bs: Uint8Array[]) => void;

export abstract class LinkListeners {
  state: "connecting" | "open" | "closed" = "open";
  readonly stats = { txPackets: 0, rxPackets: 0, txDropped: 0 };
  protected readonly packetCbs: FrameListener[] = [];
  protected readonly batchCbs: BatchListener[] = [];
  protected readonly controlCbs: FrameListener[] = [];
  protected readonly closeCbs: ((reason: string) => void)[] = [];

  onPacket(cb: FrameListener): void {
    this.packetCbs.push(cb);
  }

  /** Packets that arrived together (see Link.onPackets): to these alone while any is set. */
  onPackets(cb: BatchListener): void {
    this.batchCbs.push(cb);
  }

  onControl(cb: FrameListener): void {
    this.controlCbs.push(cb);
  }

  onOpen(cb: () => void): void {
    if (this.state === "open") cb();
  }

  onClose(cb: (reason: string) => void): void {
    this.closeCbs.push(cb);
  }

  /** Close once: what the link holds goes first (closing()), then the close listeners hear of it. */
  close(reason = "closed"): void {
    if (this.state === "closed") return;
    this.state = "closed";
    this.closing(reason);
    for (const cb of this.closeCbs) cb(reason);
  }

  /** What a link lets go of as it closes, before its close listeners are told (nothing by default). */
  protected closing(_reason: string): void {}

  /** Hand a frame that arrived to its listeners (packets are counted); nothing once closed. */
  protected deliver(b: Uint8Array, control: boolean): void {
    if (this.state === "closed") return;
    if (!control) this.stats.rxPackets++;
    for (const cb of control ? this.controlCbs : this.packetCbs) cb(b);
  }

  /** Hand packets that arrived together to the batch listeners, or one by one to the packet listeners. */
  protected deliverMany(bs: Uint8Array[]): void {
    if (this.state === "closed") return;
    this.stats.rxPackets += bs.length;
    if (this.batchCbs.length > 0) for (const cb of this.batchCbs) cb(bs);
    else for (const b of bs) for (const cb of this.packetCbs) cb(b);
  }

  /** Count one send: sent, or dropped. */
  protected counted(sent: boolean): boolean {
    if (!sent) {
      this.stats.txDropped++;
      return false;
    }
    this.stats.txPackets++;
    return true;
  }
}
