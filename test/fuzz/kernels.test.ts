import { describe, expect, it } from "vitest";
import { pruneCache } from "../../src/compile/cacheMaintenance.js";
import { defaultCacheDir } from "../../src/compile/index.js";
import { DEFAULT_FUZZ_RUNS, DEFAULT_FUZZ_SEED, FUZZ_CXXFLAGS, runFuzz, suiteSearches } from "./runFuzz.js";

/*
 * Random kernels against the float64 reference. `npm test` runs a small fixed-seed search and `npm run test:sweeps`
 * another (suiteSearches); `npm run fuzz` (scripts/fuzz.mjs) runs this same file with MINDUCTOR_FUZZ_* set for a
 * longer or replayed one.
 */
const env = process.env;
const longRun = env.MINDUCTOR_FUZZ_RUNS !== undefined || env.MINDUCTOR_FUZZ_PATH !== undefined || env.MINDUCTOR_FUZZ_SEED !== undefined;
const searches = longRun
  ? [{ seed: Number(env.MINDUCTOR_FUZZ_SEED ?? DEFAULT_FUZZ_SEED), runs: Number(env.MINDUCTOR_FUZZ_RUNS ?? DEFAULT_FUZZ_RUNS) }]
  : suiteSearches();
const path = env.MINDUCTOR_FUZZ_PATH || undefined;
const cxxflags = env.MINDUCTOR_FUZZ_CXXFLAGS?.trim() ? env.MINDUCTOR_FUZZ_CXXFLAGS.trim().split(/\s+/) : FUZZ_CXXFLAGS;
/** A long run leaves at most this much of its kernels in its cache (scripts/fuzz.mjs gives it its own). */
const FUZZ_CACHE_BYTES = 256 * 1024 ** 2;

describe("fuzzing kernels against the reference", () => {
  it.each(searches)(
    `${path ? `the case at path ${path} of seed $seed` : "$runs random kernel(s), seed $seed"}: every template matches the float64 reference`,
    async ({ seed, runs }) => {
      const log = longRun ? (line: string) => console.log(line) : undefined;
      if (longRun) console.log(`fuzz: seed ${seed}, ${path ? `replaying path ${path}` : `${runs} case(s)`}, cxxflags ${cxxflags.join(" ")}`);
      const report = await runFuzz({ seed, runs, path, compile: { cxxflags }, log });
      if (longRun) {
        const pruned = await pruneCache(FUZZ_CACHE_BYTES);
        console.log(
          `fuzz: ${report.cases} case(s), ${report.calls} call(s), ${report.runs} kernel run(s) compared; ` +
            `${report.ok ? "no difference" : "FAILED"}; pruned ${pruned.removed.length} kernel(s) from ${defaultCacheDir()}`,
        );
      }
      if (!report.ok) throw new Error(report.message);
      // A replayed path checks its case (fast-check may run one more); a search checks every case it generates.
      if (path) expect(report.cases).toBeGreaterThan(0);
      else expect(report.cases).toBe(runs);
      expect(report.runs).toBeGreaterThanOrEqual(2 * report.calls);
    },
    longRun ? 24 * 3600_000 : 170_000,
  );
});
