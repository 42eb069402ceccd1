/** The shape of `bench/results/<date>.json`: the machine, every suite's rows, the targets and the raw cases. */
import { mkdir, rename, writeFile } from "node:fs/promises";
import { join } from "node:path";
import type { CaseResult } from "./benchCase.js";
import type { MachineProbe } from "./probeCache.js";
import type { Roofline } from "./roofline.js";
import type { TimingStats } from "./timingStats.js";

export const BENCH_FORMAT_VERSION = 1;

export type SuiteName = "prefill" | "decode" | "sweep" | "serving" | "overhead" | "tune";

export interface MachineSummary {
  probe: MachineProbe;
  cores: number;
  /** The OpenMP team of every kernel call (OMP_NUM_THREADS, else every core). */
  threads: number;
  node: string;
  compiler: string;
  cpuFeatures: string;
  /** 1-minute load average when the run started: well above 0 means other processes competed for the cores. */
  loadAverage: number;
}

export interface PrefillRow {
  id: string;
  dtype: string;
  causal: boolean;
  batch: number;
  hq: number;
  hkv: number;
  headDim: number;
  qLen: number;
  kvLen: number;
  template: string;
  stats: TimingStats;
  /** Over the positions of the active blocks. */
  gflops: number;
  peakPct: number;
  /** Computed positions / dense positions. */
  computedFraction: number;
  otherTemplate: string;
  /** Time of the forced other template / time of the chosen one: above 1 the choice is right. */
  vsOther: number | null;
  /** Time of the naive baseline / time of the chosen template. */
  vsNaive: number | null;
  naiveError?: string;
  otherError?: string;
  /** The least time the machine allows for the call (see roofline.ts), and how close the chosen template comes. */
  roofline: Roofline;
}

export interface DecodeRow {
  id: string;
  dtype: string;
  group: number;
  batch: number;
  hkv: number;
  headDim: number;
  qLen: number;
  kvLen: number;
  template: string;
  partitionSize: number | null;
  stats: TimingStats;
  /** Unique K/V bytes (each kv head once) per second. */
  gbs: number;
  /** The read bandwidth measured beside the case (src/bench/readPass.ts), else null: the probe's was used. */
  readGBs: number | null;
  /** 100 x gbs / the read bandwidth (the case's, else the probe's). */
  bandwidthPct: number;
  /** Time of forced flash attention / time of the chosen template. */
  vsFlashAttention: number | null;
  roofline: Roofline;
}

/** A decode call on views of another storage order against the contiguous call (the same compiled kernel). */
export interface LayoutRow {
  id: string;
  group: number;
  paged: boolean;
  /** What the strided variant's tensors are views of. */
  layout: string;
  template: string;
  contiguous: TimingStats;
  strided: TimingStats;
  stridedOverContiguous: number;
}

/** One key/value dtype of an 8-bit KV case; the bf16 row of the same case is the baseline. */
export interface QuantizedRow {
  id: string;
  kind: "decode" | "prefill";
  group: number;
  kvLen: number;
  /** "bfloat16" for the baseline, else the 8-bit format. */
  kvDtype: string;
  template: string;
  stats: TimingStats;
  /** Unique K/V bytes (each kv head once), with an int8 cache's scales. */
  kvBytes: number;
  gbs: number;
  /** The read bandwidth measured beside the case (src/bench/readPass.ts), else null: the probe's was used. */
  readGBs: number | null;
  /** 100 x gbs / the read bandwidth (the case's, else the probe's). */
  bandwidthPct: number;
  /** bf16 time / this time (medians, same process, interleaved). */
  speedupVsBf16: number;
  /** With this variant's bytes. */
  roofline: Roofline;
}

/** One ragged call against the same sequences split into one call per template. */
export interface RaggedRow {
  id: string;
  /** qLen x kvLen of each sequence. */
  sequences: string;
  mixedTemplate: string;
  splitTemplates: [string, string];
  mixed: TimingStats;
  split: TimingStats;
  splitOverMixed: number;
}

export interface ServingRows {
  layouts: LayoutRow[];
  quantized: QuantizedRow[];
  ragged: RaggedRow[];
}

export interface SweepPoint {
  group: number;
  batch: number;
  qLen: number;
  kvLen: number;
  decodingMs: number | null;
  attentionMs: number | null;
  /** What the `auto` policy picks here. */
  autoTemplate: string;
}

export interface OverheadFigures {
  codegen: { spec: string; firstMs: number; medianMs: number }[];
  /**
   * The first build of a configuration (a fresh cache dir: engine, mod library and precompiled prelude), `ms`,
   * against the self-contained build of the same spec (`generate(graph)` as one library, what every new mod cost
   * before the split), `selfContainedMs`: medians over `rounds` fresh processes each, alternating, compiler probe
   * included in both. `preludeReadyMs`: the same split build in a fresh cache dir that already holds the precompiled
   * prelude (any configuration built before with the same compiler and flags leaves it), median over `rounds` more
   * processes; absent in results written before it was measured.
   */
  coldCompile: { spec: string; ms: number; compilerProbeMs: number; selfContainedMs: number; rounds: number; preludeReadyMs?: number }[];
  /**
   * First `compile()` of fresh processes, each with a score_mod no cache has seen, on a cache dir holding the
   * configuration's engine: median over the processes. `engineHits` and `modsCompiled` count the processes that
   * found the engine cached and compiled their mod library (all of them, or the figure measured something else).
   */
  newMod: {
    spec: string;
    medianMs: number;
    minMs: number;
    maxMs: number;
    compilerProbeMs: number;
    processes: number;
    engineHits: number;
    modsCompiled: number;
  }[];
  /** First `compile()` of fresh processes on a warm cache: median over the processes. */
  cacheHit: { spec: string; medianMs: number; minMs: number; maxMs: number; compilerProbeMs: number; processes: number }[];
  /**
   * One call on the split kernel (engine calling the mods through the table) and on the self-contained library
   * (mods inlined), interleaved in one process; `ratio` = split median / self-contained median.
   */
  splitKernel: { spec: string; shape: string; template: string; split: TimingStats; selfContained: TimingStats; ratio: number }[];
  /** run() of a decode call too small to measure the kernel (kv 16), outputs given: the fixed cost of a call. */
  call: { spec: string; shape: string; template: string; stats: TimingStats } | null;
  /** run() of a decode step reading 1 MB of K/V, outputs given; absent in results from before it was measured. */
  oneMbStep?: { spec: string; shape: string; template: string; stats: TimingStats; kvBytes: number; gbs: number; bandwidthPct: number } | null;
}

export interface TuneRow {
  id: string;
  call: { batch: number; qLen: number; kvLen: number };
  heuristic: string;
  tuned: string;
  /** Measured again in a fresh process after tuning, interleaved. */
  heuristicMs: number | null;
  tunedMs: number | null;
  speedup: number | null;
  trials: number;
}

export interface TargetCheck {
  name: string;
  target: string;
  measured: string;
  /** null: not measured in this run. */
  met: boolean | null;
}

export interface BenchResults {
  formatVersion: typeof BENCH_FORMAT_VERSION;
  startedAt: string;
  finishedAt: string;
  quick: boolean;
  suites: SuiteName[];
  machine: MachineSummary;
  prefill: PrefillRow[];
  decode: DecodeRow[];
  sweep: SweepPoint[];
  /** Layouts, 8-bit KV and ragged batches; null when the suite did not run (and in results from before it). */
  serving: ServingRows | null;
  overhead: OverheadFigures | null;
  tune: TuneRow[];
  targets: TargetCheck[];
  cases: CaseResult[];
}

/** A run's results before any suite has added its rows. */
export function emptyResults(machine: MachineSummary, quick: boolean, suites: readonly SuiteName[] = []): BenchResults {
  const startedAt = new Date().toISOString();
  return {
    formatVersion: BENCH_FORMAT_VERSION,
    startedAt,
    finishedAt: startedAt,
    quick,
    suites: [...suites],
    machine,
    prefill: [],
    decode: [],
    sweep: [],
    serving: null,
    overhead: null,
    tune: [],
    targets: [],
    cases: [],
  };
}

/** File name of a run: its ISO start time with `:` and `.` replaced, which sorts like the time and is portable. */
export function resultsFileName(startedAt: string): string {
  return `${startedAt.replace(/[:.]/g, "-")}.json`;
}

/** Writes the results under `dir` (created if needed) by temp file and rename; returns the path. */
export async function writeResults(dir: string, results: BenchResults): Promise<string> {
  await mkdir(dir, { recursive: true });
  const path = join(dir, resultsFileName(results.startedAt));
  const temp = `${path}.tmp`;
  await writeFile(temp, `${JSON.stringify(results, null, 2)}\n`);
  await rename(temp, path);
  return path;
}
