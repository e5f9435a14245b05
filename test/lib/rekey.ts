// Preloaded into a `trellis up` process by e2e tests (TestNode spec `preload`): every
// TRELLIS_TEST_REKEY_MS (default 8 s) the node starts a rekey with every peer it holds a session with,
// as an initiator does after REKEY_AFTER_TIME (2 minutes), so a test sees several rekeys (each a full
// handshake, the old keys in use until it completes) within its run. Nothing else changes.
import { Sessions } from "../../src/session/sessions.ts";
import type { NodeId } from "../../src/identity/identity.ts";

const every = Number(process.env.TRELLIS_TEST_REKEY_MS ?? 8000);
type Inside = { peers: Map<NodeId, unknown>; initiate(p: unknown): void; isEstablished(id: NodeId): boolean };
const seen = new Set<Inside>();
const send = Sessions.prototype.send;
Sessions.prototype.send = function (this: Sessions, to: NodeId, payload: Uint8Array): void {
  seen.add(this as unknown as Inside);
  return send.call(this, to, payload);
};
setInterval(() => {
  for (const s of seen) for (const [id, p] of s.peers) if (s.isEstablished(id)) s.initiate(p);
}, every).unref();
console.error(`rekey: this node rekeys every session every ${every} ms`);
