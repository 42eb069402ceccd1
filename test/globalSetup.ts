/**
 * Cold-cache prebuild: most of a cold `npm test` is g++, and the files run two at a time, each waiting on its own
 * builds. While they run, this builds the kernels of the heaviest files
 * (test/helpers/suiteKernels.ts) into the shared cache, two at a time. A file that reaches a kernel first builds it
 * itself; one that reaches a kernel being built here waits on its lock (src/compile/lock.ts) and loads it. Warm,
 * every kernel is a cache hit and this costs about a second.
 *
 * Only for a run of the whole suite: a run given file filters (`vitest run test/ir`) builds nothing here.
 * MINDUCTOR_TEST_PREBUILD=0 turns it off, =1 forces it.
 */
import type { TestProject } from "vitest/node";
import { buildKernelFiles } from "../src/kernelLibrary.js";
import { suiteKernels } from "./helpers/suiteKernels.js";

/** Builds at once; the test files' own builds run beside these. */
const WORKERS = 2;

export default function setup(project: TestProject): (() => Promise<void>) | undefined {
  const forced = process.env.MINDUCTOR_TEST_PREBUILD?.trim();
  if (forced === "0" || (forced !== "1" && hasFileFilters(process.argv))) return undefined;
  const cacheDir = project.config.env.MINDUCTOR_CACHE_DIR;
  // The test files get the config's env, this process does not: its engines build whole, as theirs do.
  process.env.MINDUCTOR_SPLIT_BUILDS ??= project.config.env.MINDUCTOR_SPLIT_BUILDS;
  const queue = suiteKernels();
  let stopped = false;
  const worker = async () => {
    for (let job = queue.shift(); job && !stopped; job = queue.shift()) {
      // A failure here is reported by the test that compiles the same kernel.
      await buildKernelFiles(job.graph, { ...job.options, ...(cacheDir ? { cacheDir } : {}) }).catch(() => undefined);
    }
  };
  const workers = Promise.all(Array.from({ length: WORKERS }, worker));
  // No g++ outlives the run: the teardown starts no further build and waits for those under way.
  return async () => {
    stopped = true;
    await workers;
  };
}

/** `vitest run a b` (positional file filters) rather than `vitest run` / `vitest`. */
function hasFileFilters(argv: readonly string[]): boolean {
  const args = argv.slice(2).filter((a) => a !== "run" && a !== "watch");
  return args.some((a) => !a.startsWith("-"));
}
