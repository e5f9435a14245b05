// How many ML-DSA signature checks a piece of code makes: for tests of what an attacker's input costs.
import { spyOn } from "bun:test";
import { ml_dsa65 } from "@noble/post-quantum/ml-dsa.js";

export function verifies(f: () => void): number {
  const spy = spyOn(ml_dsa65, "verify");
  try {
    f();
    return spy.mock.calls.length;
  } finally {
    spy.mockRestore();
  }
}
