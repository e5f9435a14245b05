import { describe, expect, test } from "bun:test";
import { readFileSync } from "node:fs";
import { droppable, trimExecutable } from "./trim.ts";

const EXE = "/usr/local/bin/trellis";
const mapping = (range: string, perm: string, path: string, anon: number) =>
  `${range} ${perm} 00000000 fd:01 1234                       ${path}\nSize:               1024 kB\nRss:                 512 kB\nAnonymous:          ${anon} kB\nVmFlags: rd ex mr mw me\n`;

describe("droppable", () => {
  test("only the executable's read-only mappings with no copied page", () => {
    const smaps = [
      mapping("00400000-00500000", "r--p", EXE, 0),
      mapping("00500000-02000000", "r-xp", EXE, 0),
      mapping("02000000-02100000", "r--p", EXE, 12), // relocations made read-only: private copies
      mapping("02100000-02200000", "rw-p", EXE, 0), // writable: never
      mapping("7f0000000000-7f0000100000", "r-xp", "/usr/lib/x86_64-linux-gnu/libc.so.6", 0),
      mapping("7f0000200000-7f0000300000", "rw-p", "", 900),
    ].join("");
    expect(droppable(smaps, EXE)).toEqual([
      { start: 0x400000, end: 0x500000 },
      { start: 0x500000, end: 0x2000000 },
    ]);
  });

  test("a path with spaces and a deleted executable are matched whole", () => {
    const exe = "/opt/my dir/trellis (deleted)";
    expect(droppable(mapping("1000-2000", "r-xp", exe, 0), exe)).toEqual([{ start: 0x1000, end: 0x2000 }]);
    expect(droppable(mapping("1000-2000", "r-xp", "/opt/my dir/trellis", 0), exe)).toEqual([]);
  });
});

test("trimming this process's executable drops its file pages and it runs on", () => {
  const fileKb = () => Number(/RssFile:\s+(\d+)/.exec(readFileSync("/proc/self/status", "utf8"))![1]);
  const before = fileKb();
  expect(trimExecutable()).toBeGreaterThan(0);
  const after = fileKb();
  expect(after).toBeLessThan(before);
  // Code and read-only data come back from the file as they are touched.
  expect(JSON.parse(JSON.stringify({ a: [1, 2, 3] }))).toEqual({ a: [1, 2, 3] });
  expect(new TextDecoder().decode(new TextEncoder().encode("still here"))).toBe("still here");
});
