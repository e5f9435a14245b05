// Privilege drop helpers: user lookup and reading a task's credentials (the drop itself runs in e2e, test/hostile).
import { describe, expect, test } from "bun:test";
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { credentials, dropPrivileges, findUser, PrivilegeError } from "./privileges.ts";

describe("privileges", () => {
  test("findUser reads /etc/passwd-style files by name or uid", () => {
    const dir = mkdtempSync(join(tmpdir(), "trellis-passwd-"));
    try {
      const f = join(dir, "passwd");
      writeFileSync(f, "root:x:0:0:root:/root:/bin/sh\ntrellis:x:321:321:trellis:/var/lib/trellis:/bin/false\nbroken line\n");
      expect(findUser("trellis", f)).toEqual({ name: "trellis", uid: 321, gid: 321 });
      expect(findUser("321", f)).toEqual({ name: "trellis", uid: 321, gid: 321 });
      expect(findUser("nobody-here", f)).toBeUndefined();
      expect(findUser("trellis", join(dir, "missing"))).toBeUndefined();
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });

  test("credentials parses uids, gids and capability sets", () => {
    const c = credentials();
    expect(c.uids.length).toBe(4);
    expect(typeof c.capEff).toBe("bigint");
  });

  test("dropping to uid 0 is refused", () => {
    expect(() => dropPrivileges({ name: "root", uid: 0, gid: 0 }, "/nonexistent")).toThrow(PrivilegeError);
  });
});
