// `trellis ping`: reach a node through the overlay and print the path taken and the RTT.
import { apiBase, apiGet, apiHeaders, ApiError } from "./api-client.ts";
import { parse, UsageError } from "./args.ts";

export const help = `Usage: trellis ping NODE [--count N] [--interval S] [--config FILE] [--api HOST:PORT]

Send overlay pings to NODE (name, overlay address, or the node id or unique id
prefix of a peer the node knows: 'trellis status' lists them) through the running
node, end to end inside the session, and print the path each took and its
round-trip time. A member of our networks not met yet is looked up by its name or
overlay IPv4 address; a node id the node does not know is refused. Exits 0 if any
reply came back, 1 if none did.

  --count N       pings to send (default 4)
  --interval S    seconds between pings (default 1)
  --timeout S     seconds to wait for each reply (default 3)
`;

interface PingReply {
  id: string;
  name: string | null;
  ipv6: string;
  path: string | null;
  rtt_ms: number | null;
}

export async function run(argv: string[]): Promise<number> {
  const { values, positionals } = parse(
    argv,
    { config: { type: "string", short: "c" }, api: { type: "string" }, count: { type: "string", short: "n" }, interval: { type: "string", short: "i" }, timeout: { type: "string", short: "W" } },
    1,
  );
  if (values.help) return (process.stdout.write(help), 0);
  const target = positionals[0];
  if (!target) throw new UsageError("ping needs a NODE (node id, name or overlay address)");
  const count = num(values.count ?? "4", "--count", 1, 1e6);
  const interval = num(values.interval ?? "1", "--interval", 0, 3600);
  const timeout = num(values.timeout ?? "3", "--timeout", 0.001, 30);
  const base = apiBase(values);
  const headers = apiHeaders(values);
  let got = 0;
  const rtts: number[] = [];
  for (let i = 0; i < count; i++) {
    if (i > 0) await Bun.sleep(interval * 1000);
    try {
      const r = await apiGet<PingReply>(base, `/v1/ping?node=${encodeURIComponent(target)}&timeout_ms=${Math.round(timeout * 1000)}`, headers);
      const who = r.name ? `${r.name} (${r.id.slice(0, 12)})` : r.id;
      if (r.rtt_ms === null) console.log(`no reply from ${who} in ${timeout}s`);
      else {
        got++;
        rtts.push(r.rtt_ms);
        console.log(`reply from ${who} ${r.ipv6}: seq=${i + 1} path=${r.path ?? "-"} time=${r.rtt_ms.toFixed(2)} ms`);
      }
    } catch (e) {
      // No such node, no right to ask, or no node running to ask: saying it again for every count helps nobody.
      if (e instanceof ApiError && (e.status === 404 || e.status === 401 || e.status === undefined)) throw e;
      console.log(`error: ${(e as Error).message}`);
    }
  }
  const loss = Math.round(((count - got) / count) * 100);
  const stats = rtts.length ? `, rtt min/avg/max ${Math.min(...rtts).toFixed(2)}/${(rtts.reduce((a, b) => a + b, 0) / rtts.length).toFixed(2)}/${Math.max(...rtts).toFixed(2)} ms` : "";
  console.log(`--- ${target}: ${count} sent, ${got} received, ${loss}% loss${stats}`);
  return got > 0 ? 0 : 1;
}

function num(s: string, flag: string, min: number, max: number): number {
  const v = Number(s);
  if (!Number.isFinite(v) || v < min || v > max) throw new UsageError(`${flag} must be a number from ${min} to ${max}, got ${JSON.stringify(s)}`);
  return v;
}
