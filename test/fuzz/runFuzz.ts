import { availableParallelism } from "node:os";
import fc from "fast-check";
import { compile, type CompileOptions } from "../../src/index.js";
import { parseSpec, type Spec } from "../../src/ir/spec.js";
import { arbitraryKernelCase, effectiveCalls, type KernelCase } from "./kernelCase.js";
import { checkKernelCase, describeCall } from "./runCase.js";
import { type SweepPart, sweep, sweepPart } from "../helpers/sweeps.js";
import { FAST_BUILD_CXXFLAGS } from "../helpers/fastBuilds.js";

export interface FuzzOptions {
  seed: number;
  /** Kernel cases to generate (each compiles one kernel and makes 1-3 calls of it). */
  runs: number;
  /** Replays one case (and shrinks from it) instead of searching: the path a failure report prints. */
  path?: string;
  compile?: CompileOptions;
  /** Compiles upcoming cases in the background, one worker per core, while cases are checked (default true). */
  compileAhead?: boolean;
  /** Progress, one line per case. */
  log?: (line: string) => void;
}

export interface FuzzReport {
  ok: boolean;
  /** Kernel cases checked (compiles), calls made and kernel runs compared, shrinking included. */
  cases: number;
  calls: number;
  runs: number;
  /** On failure: the seed, the replay commands, the shrunk spec and calls, and what differed. */
  message?: string;
}

/**
 * Compile time dominates a fuzz run: it builds as the suite's fast builds do (-O0 without forced inlining,
 * test/helpers/fastBuilds.ts: the same source and intrinsics as the default -O3). `npm run fuzz -- --cxxflags="..."`
 * fuzzes other flags, -O3 included.
 */
export const FUZZ_CXXFLAGS = FAST_BUILD_CXXFLAGS;

/** The search `npm test` runs (test/fuzz/kernels.test.ts): this seed, this many kernel cases. */
export const DEFAULT_FUZZ_SEED = 20261124;
export const DEFAULT_FUZZ_RUNS = 12;

/**
 * The suite's searches, a sweep (test/helpers/sweeps.ts): `npm test` runs the default one, `npm run test:sweeps`
 * as many cases again from the next seed.
 */
export function suiteSearches(part: SweepPart = sweepPart()): Array<{ seed: number; runs: number }> {
  const searches = [
    { seed: DEFAULT_FUZZ_SEED, runs: DEFAULT_FUZZ_RUNS },
    { seed: DEFAULT_FUZZ_SEED + 1, runs: DEFAULT_FUZZ_RUNS },
  ];
  return sweep(searches, (_, i) => i === 0, part);
}

/**
 * The specs a search compiles, in order, before any shrinking: fc.sample with the seed yields the cases fc.check
 * generates (the compile-ahead queue below relies on the same), so the suite's prebuild can build them early.
 */
export function plannedSpecs(seed: number, runs: number): Spec[] {
  return fc.sample(arbitraryKernelCase(), { seed, numRuns: runs }).map((kc) => kc.spec);
}

/**
 * Generates kernel cases with fast-check and checks each against the float64 reference. A failing case is
 * shrunk (every shrink step compiles again) and reported with everything needed to replay it.
 */
export async function runFuzz(options: FuzzOptions): Promise<FuzzReport> {
  const compileOptions: CompileOptions = { cxxflags: FUZZ_CXXFLAGS, ...options.compile };
  const arbitrary = arbitraryKernelCase();
  const report: FuzzReport = { ok: true, cases: 0, calls: 0, runs: 0 };
  const ahead = options.path === undefined ? compileAheadQueue(arbitrary, options, compileOptions) : undefined;
  let failing = false;
  const property = fc.asyncProperty(arbitrary, async (kc) => {
    const started = performance.now();
    const label = `${failing ? "shrinking" : "case"} ${++report.cases}: ${describeCase(kc)}`;
    try {
      const stats = await checkKernelCase(kc, compileOptions);
      report.calls += stats.calls;
      report.runs += stats.runs;
      options.log?.(`${label}: ok (${stats.runs} runs, kernel ${stats.fromCache}, ${((performance.now() - started) / 1000).toFixed(1)} s)`);
    } catch (error) {
      // Shrinking compiles a kernel per step: compiling the cases that would have come next is wasted.
      if (!failing) void ahead?.stop();
      failing = true;
      options.log?.(`${label}: FAILED ${(error as Error).message.split("\n")[0]}`);
      throw error;
    }
  });
  const details = await fc.check(property, {
    seed: options.seed,
    numRuns: options.runs,
    ...(options.path === undefined ? {} : { path: options.path }),
  });
  await ahead?.stop();
  if (details.failed) {
    report.ok = false;
    report.message = formatFailure(details, options);
  }
  return report;
}

/** One line for a progress log: what the kernel is. */
export function describeCase(kc: KernelCase): string {
  const s = kc.spec;
  const [, hq, , d] = s.query.shape;
  const paged = s.kvCache ? `paged ${s.kvCache.pageSize}` : "unpaged";
  return `${s.query.dtype} Hq ${hq} Hkv ${s.key.shape[1]} D ${d}/${s.value.shape[3]} blocks ${s.blockSize?.join("x")} ${paged}, ${kc.calls.length} call(s)`;
}

function formatFailure(details: fc.RunDetails<[KernelCase]>, options: FuzzOptions): string {
  const [kc] = details.counterexample!;
  const error = details.errorInstance;
  const graph = safeGraph(kc);
  const calls = effectiveCalls(kc.calls).map((call, i) => {
    const shape = graph ? describeCall(graph, call) : JSON.stringify({ batch: call.batch, qLen: call.qLen, kvLen: call.kvLen });
    return `  call ${i} ${shape}\n    ${JSON.stringify(call)}`;
  });
  return [
    "a fuzzed kernel disagrees with the float64 reference",
    `  seed ${details.seed}, path ${details.counterexamplePath}, found among ${details.numRuns} case(s), shrunk ${details.numShrinks} time(s)`,
    `  replay this case:   npm run fuzz -- --seed ${details.seed} --path ${details.counterexamplePath}`,
    `  replay the search:  npm run fuzz -- --seed ${details.seed} --runs ${options.runs}`,
    "shrunk spec:",
    JSON.stringify(kc.spec, null, 2),
    "shrunk calls (shapes, then the whole call with its seed and buffer values):",
    ...calls,
    "what differed:",
    `  ${error instanceof Error ? error.message : String(error)}`,
  ].join("\n");
}

function safeGraph(kc: KernelCase) {
  try {
    return parseSpec(kc.spec);
  } catch {
    return undefined;
  }
}

/**
 * fast-check checks cases one after another, and compile time dominates. fc.sample with the same seed yields the
 * same cases, so background workers compile them ahead, one per core; the check of a case then joins the build
 * in flight or finds it done (the compile stage shares builds in a process and locks keys across them).
 */
function compileAheadQueue(arbitrary: fc.Arbitrary<KernelCase>, options: FuzzOptions, compileOptions: CompileOptions) {
  const workers = options.compileAhead === false ? 0 : Math.max(1, Math.min(availableParallelism(), 4));
  const upcoming = workers > 0 ? fc.sample(arbitrary, { seed: options.seed, numRuns: options.runs }) : [];
  let next = 0;
  let stopped = false;
  const inFlight = new Set<Promise<unknown>>();
  const work = async () => {
    while (!stopped && next < upcoming.length) {
      const build = compile(upcoming[next++].spec, compileOptions).catch(() => undefined);
      inFlight.add(build);
      await build;
      inFlight.delete(build);
    }
  };
  for (let w = 0; w < workers; w++) void work();
  /** Starts no further compile and waits for those under way, so no g++ outlives the run. */
  const stop = async () => {
    stopped = true;
    await Promise.all(inFlight);
  };
  return { stop };
}
