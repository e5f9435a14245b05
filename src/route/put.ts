// Putting frames on a link: each on the channel frame.ts channelFor says, and a run of frames that
// share a head (frame.ts Framing: a relay's re-framed forward frames, a sender's on a relay path) as
// one batch where they ride the fast channel and the link takes batches (the link copies each frame
// once, src/tether/linkauth.ts); otherwise each made whole and put alone.
import type { NodeId } from "../identity/identity.ts";
import { channelFor, channelForFramed, framed, type Framing } from "./frame.ts";
import type { LinkHealth } from "./linkhealth.ts";
import type { RouterLink } from "./ports.ts";

/** Put frame `b` on `link` (to `peer`); false when not sent. */
export function putFrame(link: RouterLink | undefined, peer: NodeId, b: Uint8Array, health: LinkHealth): boolean {
  if (!link || link.state !== "open") return false;
  switch (channelFor(b)) {
    case "fast":
      health.used(peer);
      return link.sendPacket(b);
    case "probe":
      // Probes measure the packet path; when that queue is full, reliable beats silence.
      if (link.sendProbe(b)) return true;
      link.sendControl(b);
      return true;
    case "control":
      link.sendControl(b);
      return true;
  }
}

/** Put frames (each framing.head ‖ frame[framing.skip..]) on `link` (to `peer`), in order. */
export function putFrames(link: RouterLink | undefined, peer: NodeId, frames: Uint8Array[], framing: Framing, health: LinkHealth): void {
  if (!link || link.state !== "open") return;
  if (!link.sendPackets || !frames.every((f) => channelForFramed(framing, f) === "fast")) {
    for (const f of frames) putFrame(link, peer, framed(f, framing), health);
    return;
  }
  health.used(peer);
  link.sendPackets(frames, framing);
}
