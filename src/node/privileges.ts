// Dropping root after start: `trellis up` opens its TUN and binds its ports as root, then runs as a plain user.
//
// What the node does after start needs no privilege: the TUN fd stays open (reads, writes, and closing
// it removes the interface), the sockets stay bound, werift binds new UDP ports above 1024, and every
// file it writes lives in its state directory, which is handed to the user first. Changing the TUN
// ([tun], [node] ipv4) or the API/relay ports already needs a restart. So the drop is total: uid, gid
// and groups change, every capability goes (leaving uid 0 clears them; nothing is kept with
// PR_SET_KEEPCAPS), and PR_SET_NO_NEW_PRIVS stops a setuid binary from giving any back. Bun's
// process.setuid calls glibc's, which changes every thread of the process (the TUN workers too).
//
// Under systemd the unit starts the node as its own user with CAP_NET_ADMIN and CAP_NET_BIND_SERVICE
// ambient instead (install/trellis.service): then the process is not uid 0 and nothing here runs.
import { dlopen, FFIType } from "bun:ffi";
import { chownSync, lstatSync, readdirSync, readFileSync } from "node:fs";
import { join } from "node:path";

export class PrivilegeError extends Error {
  constructor(readonly code: "no-such-user" | "drop-failed", message: string) {
    super(message);
    this.name = "PrivilegeError";
  }
}

export interface Account {
  name: string;
  uid: number;
  gid: number;
}

/** Look a user up in /etc/passwd by name or number. */
export function findUser(user: string, passwd = "/etc/passwd"): Account | undefined {
  let text = "";
  try {
    text = readFileSync(passwd, "utf8");
  } catch {
    return undefined;
  }
  for (const line of text.split("\n")) {
    const f = line.split(":");
    if (f.length < 4) continue;
    if (f[0] === user || (/^\d+$/.test(user) && f[2] === user)) return { name: f[0], uid: Number(f[2]), gid: Number(f[3]) };
  }
  return undefined;
}

/** Uid, gid and capability sets of one task, from /proc/<pid>/status (or /proc/<pid>/task/<tid>/status). */
export function credentials(statusFile = "/proc/self/status"): { uids: number[]; gids: number[]; capEff: bigint; capPrm: bigint; capAmb: bigint; noNewPrivs: boolean } {
  const text = readFileSync(statusFile, "utf8");
  const field = (k: string) => new RegExp(`^${k}:\\s*(.*)$`, "m").exec(text)?.[1]?.trim() ?? "";
  const nums = (k: string) => field(k).split(/\s+/).map(Number);
  const caps = (k: string) => BigInt(`0x${field(k) || "0"}`);
  return { uids: nums("Uid"), gids: nums("Gid"), capEff: caps("CapEff"), capPrm: caps("CapPrm"), capAmb: caps("CapAmb"), noNewPrivs: field("NoNewPrivs") === "1" };
}

function chownTree(path: string, uid: number, gid: number): void {
  const st = lstatSync(path);
  if (st.isSymbolicLink()) return;
  if (st.uid !== uid || st.gid !== gid) chownSync(path, uid, gid);
  if (st.isDirectory()) for (const e of readdirSync(path)) chownTree(join(path, e), uid, gid);
}

const PR_SET_NO_NEW_PRIVS = 38;
const PR_SET_KEEPCAPS = 8;
const PR_CAP_AMBIENT = 47;
const PR_CAP_AMBIENT_RAISE = 2;
const LINUX_CAPABILITY_VERSION_3 = 0x20080522;
/** Capabilities a node may keep through the drop, only when its config needs them ([routes]: routes, sysctls, nftables; the LAN check's ping). */
export const CAPS = { net_admin: 12, net_raw: 13 } as const;
export type KeptCap = keyof typeof CAPS;

/**
 * Keep `caps` on this thread across setuid (PR_SET_KEEPCAPS before, capset and ambient after), so that
 * the `ip`/`nft`/`sysctl` it runs inherit them. Other threads keep nothing.
 */
function libc() {
  for (const name of ["libc.so.6", "libc.so"]) {
    try {
      return dlopen(name, {
        prctl: { args: [FFIType.i32, FFIType.u64, FFIType.u64, FFIType.u64, FFIType.u64], returns: FFIType.i32 },
        capset: { args: [FFIType.ptr, FFIType.ptr], returns: FFIType.i32 },
      });
    } catch {}
  }
  return undefined;
}

function keepCapsBefore(): void {
  const lib = libc();
  lib?.symbols.prctl(PR_SET_KEEPCAPS, 1n, 0n, 0n, 0n);
  lib?.close();
}

function raiseKept(caps: KeptCap[]): void {
  const lib = libc();
  if (!lib) throw new PrivilegeError("drop-failed", "cannot keep capabilities: no libc");
  const mask = caps.reduce((m, c) => m | (1 << CAPS[c]), 0);
  const header = new Uint32Array([LINUX_CAPABILITY_VERSION_3, 0]);
  // Two __user_cap_data_struct {effective, permitted, inheritable}: capabilities 0-31, then 32-63.
  const data = new Uint32Array([mask, mask, mask, 0, 0, 0]);
  const ok = lib.symbols.capset(header, data) === 0 && caps.every((c) => lib.symbols.prctl(PR_CAP_AMBIENT, BigInt(PR_CAP_AMBIENT_RAISE), BigInt(CAPS[c]), 0n, 0n) === 0);
  lib.symbols.prctl(PR_SET_KEEPCAPS, 0n, 0n, 0n, 0n);
  lib.close();
  if (!ok) throw new PrivilegeError("drop-failed", `cannot keep ${caps.map((c) => `CAP_${c.toUpperCase()}`).join(", ")} after the drop`);
}

function noNewPrivs(): boolean {
  for (const name of ["libc.so.6", "libc.so"]) {
    try {
      const lib = dlopen(name, { prctl: { args: [FFIType.i32, FFIType.u64, FFIType.u64, FFIType.u64, FFIType.u64], returns: FFIType.i32 } });
      const r = lib.symbols.prctl(PR_SET_NO_NEW_PRIVS, 1n, 0n, 0n, 0n);
      lib.close();
      return r === 0;
    } catch {}
  }
  return false;
}

/**
 * Become `account` for good: hand it the state directory, set groups, gid and uid, and check that no
 * thread kept uid 0 or a capability beyond `keep` (what [routes] needs, on the main thread only).
 * Throws PrivilegeError when anything stayed.
 */
export function dropPrivileges(account: Account, stateDir: string, keep: KeptCap[] = []): void {
  if (account.uid === 0) throw new PrivilegeError("drop-failed", `user ${account.name} is uid 0: nothing to drop to`);
  chownTree(stateDir, account.uid, account.gid);
  if (keep.length) keepCapsBefore();
  try {
    process.setgroups?.([account.gid]);
    process.setgid!(account.gid);
    process.setuid!(account.uid);
  } catch (e) {
    throw new PrivilegeError("drop-failed", `cannot become ${account.name} (${account.uid}:${account.gid}): ${(e as Error).message}`);
  }
  if (keep.length) raiseKept(keep);
  noNewPrivs();
  const kept = BigInt(keep.reduce((m, c) => m | (1 << CAPS[c]), 0));
  // Every thread, not just this one: a worker left as root would be a way back.
  let tasks: string[] = [];
  try {
    tasks = readdirSync("/proc/self/task");
  } catch {}
  for (const t of tasks.length ? tasks : ["self"]) {
    let c;
    try {
      c = credentials(t === "self" ? "/proc/self/status" : `/proc/self/task/${t}/status`);
    } catch {
      continue; // the thread ended meanwhile
    }
    if (c.uids.some((u) => u === 0) || c.gids.some((g) => g === 0) || (c.capEff & ~kept) !== 0n || (c.capPrm & ~kept) !== 0n || (c.capAmb & ~kept) !== 0n)
      throw new PrivilegeError("drop-failed", `thread ${t} kept privileges after the drop to ${account.name}: uid ${c.uids.join(" ")}, CapEff ${c.capEff.toString(16)}`);
  }
}
