/**
 * Sweeps: tests that repeat one check over every example spec, every 8-bit format or many random cases, where most
 * of the cost is the g++ build behind each item. `npm test` runs a sample of each sweep, chosen so that every spec,
 * format and feature still appears in it; `npm run test:sweeps` runs the rest of every sweep; CI runs both, so
 * every item is checked on every change.
 *
 * MINDUCTOR_TEST_SWEEPS: `sample` (the default: `npm test`), `rest` (`npm run test:sweeps`), or `all`.
 */
export type SweepPart = "sample" | "rest" | "all";

export function sweepPart(env: Record<string, string | undefined> = process.env): SweepPart {
  const value = env.MINDUCTOR_TEST_SWEEPS?.trim() || "sample";
  if (value === "sample" || value === "rest" || value === "all") return value;
  throw new Error(`MINDUCTOR_TEST_SWEEPS: expected sample, rest or all, got '${value}'`);
}

/** The items of a sweep this run checks: those `inSample` picks, the others, or all of them. */
export function sweep<T>(items: readonly T[], inSample: (item: T, index: number) => boolean, part: SweepPart = sweepPart()): T[] {
  if (part === "all") return [...items];
  return items.filter((item, i) => inSample(item, i) === (part === "sample"));
}
