// Waiting in tests: poll a condition every 20 ms until it holds or the time is up.

/** Whether `f` came true within `ms` (its last look counts). */
export async function until(f: () => unknown, ms: number): Promise<boolean> {
  const end = performance.now() + ms;
  while (performance.now() < end) {
    if (f()) return true;
    await Bun.sleep(20);
  }
  return Boolean(f());
}

/** The first truthy value of `f` within `ms`; throws when there is none. */
export async function untilValue<T>(f: () => T, ms = 15_000): Promise<NonNullable<T>> {
  const end = performance.now() + ms;
  while (performance.now() < end) {
    const v = f();
    if (v) return v as NonNullable<T>;
    await Bun.sleep(20);
  }
  throw new Error("condition not met in time");
}
