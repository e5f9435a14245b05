// Preloaded into a `trellis up` process by test/hostile/records.test.ts (TestNode spec `preload`): a
// hostile relay. It runs as a normal admitted relay; once the file RECORDS_GO exists it sends, on the
// control channel of every open link (issue 14, 2 and 6):
//   its own relay record, validly signed, with a hint that is not a URL ("x") and an expiry ~100
//     years away (before the fix, every node holding it threw "Invalid URL" at each new link);
//   RECORDS_FAKE relay records of identities it made up, each validly signed by its own key, passed
//     on as relay gossip (before the fix, 64 of them filled an edge's relay slots);
//   one made-up relay's record with the bad hint too, as gossip.
// Then it writes how many it sent to RECORDS_OUT (JSON).
import { existsSync, writeFileSync } from "node:fs";
import { WebrtcLink } from "../../src/tether/webrtc.ts";
import { generateIdentity, loadIdentity } from "../../src/identity/identity.ts";
import { encodeHop, HOP_RECORD } from "../../src/route/frame.ts";
import { encodeRecord, identityRecordCrypto, RECORD_LIFETIME_MS } from "../../src/route/record.ts";

const env = (k: string) => {
  const v = process.env[k];
  if (!v) throw new Error(`rogue-records: ${k} not set`);
  return v;
};
const go = env("RECORDS_GO"), out = env("RECORDS_OUT");
const fakes = Number(process.env.RECORDS_FAKE ?? 100);

// Prepared now, while the process is still root and before the node starts: the keys cost ~2 ms each.
const self = loadIdentity(env("RECORDS_STATE"));
const made = Array.from({ length: fakes + 1 }, () => generateIdentity());

const links = new Set<WebrtcLink>();
const sendControl = WebrtcLink.prototype.sendControl;
WebrtcLink.prototype.sendControl = function (this: WebrtcLink, b: Uint8Array): void {
  links.add(this);
  return sendControl.call(this, b);
};

function attack(): void {
  const now = Date.now();
  const counts = { links: 0, bad_own_record: 0, fake_relay_records: 0, fake_bad_hint_record: 0 };
  // Issued a little after anything our own node has sent, so it is the newest of our records.
  const own = encodeRecord({ id: self.public.id, relay: true, relays: [], hints: ["x"], issued: now + 1000, expires: now + 100 * 365 * 86400_000 }, identityRecordCrypto(self));
  const gossip = made.slice(0, fakes).map((f) => encodeRecord({ id: f.public.id, relay: true, relays: [], hints: [], issued: now, expires: now + RECORD_LIFETIME_MS }, identityRecordCrypto(f)));
  const badHint = encodeRecord({ id: made[fakes].public.id, relay: true, relays: [], hints: ["x"], issued: now, expires: now + RECORD_LIFETIME_MS }, identityRecordCrypto(made[fakes]));
  for (const link of links) {
    if (link.state !== "open") continue;
    counts.links++;
    link.sendControl(encodeHop(HOP_RECORD, own));
    counts.bad_own_record++;
    for (const r of gossip) link.sendControl(encodeHop(HOP_RECORD, r)), counts.fake_relay_records++;
    link.sendControl(encodeHop(HOP_RECORD, badHint));
    counts.fake_bad_hint_record++;
  }
  writeFileSync(out, JSON.stringify({ counts, fakeIds: made.map((f) => f.public.id) }));
  console.error(`rogue-records: sent ${JSON.stringify(counts)}`);
}

const waiting = setInterval(() => {
  if (!existsSync(go) || ![...links].some((l) => l.state === "open")) return;
  clearInterval(waiting);
  try {
    attack();
  } catch (e) {
    writeFileSync(out, JSON.stringify({ error: (e as Error).stack }));
  }
}, 100);
console.error(`rogue-records: this relay plants records once ${go} exists`);
