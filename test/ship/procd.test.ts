// The OpenWrt init script against stubbed procd: what it asks procd for, with and without ujail (issue 14, privileges).
//
// /etc/rc.common and procd are not here, so the script is sourced by sh with each procd_* function
// stubbed to log its arguments, chown stubbed, and a fake `trellis` under a scratch root
// ($IPKG_INSTROOT, as OpenWrt's own scripts use it). What procd does with those parameters is
// procd's (service/instance.c: `capabilities`, `user` and the jail go to /sbin/ujail -C/-U/-G/-c;
// without a jail `capabilities` is ignored and `user` is a plain setuid with no capabilities).
import { afterAll, describe, expect, test } from "bun:test";
import { chmodSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";

const INIT = join(import.meta.dir, "../../install/trellis.init");
const dirs: string[] = [];
afterAll(() => {
  for (const d of dirs) rmSync(d, { recursive: true, force: true });
});

/** A scratch root with the fake binary; `ujail` puts an executable /sbin/ujail there, `user` a trellis entry in /etc/passwd. */
function router(o: { ujail: boolean; user: boolean; config?: string }) {
  const root = mkdtempSync(join(tmpdir(), "trellis-procd-"));
  dirs.push(root);
  for (const d of ["usr/local/bin", "etc/trellis", "sbin"]) mkdirSync(join(root, d), { recursive: true });
  writeFileSync(join(root, "usr/local/bin/trellis"), `#!/bin/sh\necho "trellis $*" >> "${root}/calls"\n`);
  chmodSync(join(root, "usr/local/bin/trellis"), 0o755);
  if (o.ujail) {
    writeFileSync(join(root, "sbin/ujail"), "#!/bin/sh\n");
    chmodSync(join(root, "sbin/ujail"), 0o755);
  }
  writeFileSync(join(root, "etc/passwd"), `root:x:0:0:root:/root:/bin/ash\n${o.user ? "trellis:x:320:320:trellis:/var/lib/trellis:/bin/false\n" : ""}`);
  if (o.config !== undefined) writeFileSync(join(root, "etc/trellis/trellis.toml"), o.config);
  return root;
}

/** Source the init script with procd stubbed and run one of its functions; returns each procd call as a line. */
function run(root: string, fn = "start_service"): { procd: string[]; calls: string[]; caps?: Record<string, string[]> } {
  const stubs = ["procd_open_instance", "procd_close_instance", "procd_set_param", "procd_add_jail", "procd_add_jail_mount", "procd_add_jail_mount_rw", "procd_send_signal"]
    .map((f) => `${f}() { echo "${f} $*" >> "$IPKG_INSTROOT/procd"; }`)
    .join("\n");
  const script = `${stubs}\nchown() { echo "chown $*" >> "$IPKG_INSTROOT/calls"; }\n. "${INIT}"\n${fn}\n`;
  const r = Bun.spawnSync(["sh", "-c", script], { env: { PATH: process.env.PATH ?? "/usr/bin:/bin", IPKG_INSTROOT: root } });
  if (r.exitCode !== 0) throw new Error(`init script: ${r.stderr.toString()}`);
  const lines = (f: string) => {
    try {
      return readFileSync(join(root, f), "utf8").trim().split("\n");
    } catch {
      return [];
    }
  };
  let caps: Record<string, string[]> | undefined;
  try {
    caps = JSON.parse(readFileSync(join(root, "var/run/trellis/capabilities.json"), "utf8"));
  } catch {}
  return { procd: lines("procd"), calls: lines("calls"), caps };
}

const SETS = ["bounding", "effective", "permitted", "inheritable", "ambient"];

describe("OpenWrt init script (procd)", () => {
  test("with ujail and the user: the node runs jailed as trellis with only its capabilities, never as root", () => {
    const root = router({ ujail: true, user: true, config: '[routes]\n# check = "192.168.1.1"\n' });
    const { procd, calls, caps } = run(root);
    expect(procd).toContain("procd_set_param command /usr/local/bin/trellis up --config /etc/trellis/trellis.toml");
    expect(procd).toContain("procd_add_jail trellis requirejail");
    expect(procd).toContain("procd_set_param user trellis");
    expect(procd).toContain("procd_set_param group trellis");
    expect(procd).toContain("procd_set_param capabilities /var/run/trellis/capabilities.json");
    expect(procd).toContain("procd_set_param no_new_privs 1");
    // Every set procd's ujail reads (jail/capabilities.c) names exactly the two; a commented check adds nothing.
    expect(Object.keys(caps!).sort()).toEqual([...SETS].sort());
    for (const s of SETS) expect(caps![s]).toEqual(["CAP_NET_ADMIN", "CAP_NET_BIND_SERVICE"]);
    // The identity is made (as root, before the node starts) and the state handed to the user.
    expect(calls).toEqual([`trellis init --state ${root}/var/lib/trellis`, `chown -R trellis ${root}/var/lib/trellis`]);
  });

  test("[routes] check pings the LAN: CAP_NET_RAW too", () => {
    const { caps } = run(router({ ujail: true, user: true, config: '[routes]\nadvertise = ["192.168.1.0/24"]\ncheck = "192.168.1.1"\n' }));
    for (const s of SETS) expect(caps![s]).toEqual(["CAP_NET_ADMIN", "CAP_NET_BIND_SERVICE", "CAP_NET_RAW"]);
  });

  test("without ujail: started as root with no_new_privs, no user or capabilities asked (procd would setuid with none and the TUN could not open); the node drops itself", () => {
    const { procd, caps } = run(router({ ujail: false, user: true }));
    expect(procd).toContain("procd_set_param no_new_privs 1");
    expect(procd.some((l) => /procd_add_jail|param user|param group|param capabilities/.test(l))).toBe(false);
    expect(caps).toBeUndefined();
  });

  test("ujail but no user trellis: no jail either (nobody to become); the node says it runs as root", () => {
    const { procd, calls } = run(router({ ujail: true, user: false }));
    expect(procd.some((l) => /procd_add_jail|param user|param capabilities/.test(l))).toBe(false);
    expect(calls.some((l) => l.startsWith("chown"))).toBe(false);
  });

  test("reload hands the state to the user and sends SIGHUP through procd (ujail forwards it)", () => {
    const root = router({ ujail: true, user: true });
    const { procd, calls } = run(root, "reload_service");
    expect(calls).toEqual([`chown -R trellis ${root}/var/lib/trellis`]);
    expect(procd).toEqual(["procd_send_signal trellis * HUP"]);
  });
});
