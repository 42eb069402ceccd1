/**
 * `minductor tune`: measures the candidate block sizes (compile-time: one library per pair), templates, partition
 * sizes and thread counts for one call and returns the fastest, with the heuristic's choice measured alongside.
 * Storing the result is the caller's decision (see src/tune/tuningStore.ts).
 */
import { compile } from "../index.js";
import type { AttentionGraph, TemplateName } from "../ir/graph.js";
import { type Kernel, type RunOptions, defaultThreads } from "../kernel.js";
import type { KernelInputs } from "../runtime/validateInputs.js";
import type { Choice } from "../select/features.js";
import { callFeatures } from "../select/features.js";
import { DECODE_MAX_Q_LEN } from "../select/selectTemplate.js";
import { type TunedChoice, shapeBucket } from "../select/tunedChoice.js";
import { withBlockSize } from "../tune/tunedVariants.js";
import { type BenchCall, benchInputs } from "./benchInputs.js";
import { BenchError } from "./benchError.js";
import { timeInterleaved } from "./timeInterleaved.js";
import { timingStats } from "./timingStats.js";
import { type TuneCandidates, defaultCandidates, partitionCandidates } from "./tuneCandidates.js";

export interface TuneOptions {
  call: BenchCall;
  /** Kernel cache dir for the variant libraries (default: the usual one). */
  cacheDir?: string;
  /** Replaces parts of the default search space. */
  candidates?: Partial<TuneCandidates>;
  /** Timed runs per configuration in the first pass; the finalists get twice as many. */
  runs?: number;
  seed?: number;
  onProgress?: (line: string) => void;
}

/** One measured configuration. */
export interface Trial {
  template: TemplateName;
  qBlock: number;
  kvBlock: number;
  /** Flash decoding only. */
  partitionSize: number | null;
  numThreads: number;
  medianMs: number | null;
  error?: string;
}

export interface TuneResult {
  bucket: string;
  /** The fastest configuration of the final round; the heuristic's own unless another beat it by MIN_GAIN. */
  best: TunedChoice;
  /** What the heuristic chooses for this call. */
  heuristic: Choice;
  trials: Trial[];
}

/** The least speedup over the heuristic's choice that counts as a win rather than noise. */
export const MIN_GAIN = 0.03;

interface Config {
  kernel: Kernel;
  trial: Omit<Trial, "medianMs" | "error">;
}

export async function tuneKernel(graph: AttentionGraph, options: TuneOptions): Promise<TuneResult> {
  const { call } = options;
  const say = options.onProgress ?? (() => {});
  const threads = defaultThreads();
  const space = { ...defaultCandidates(graph, call, threads), ...options.candidates };
  const runs = options.runs ?? 5;
  if (space.blockSizes.length === 0 || space.threads.length === 0) throw new BenchError("tune needs at least one block size and one thread count");

  const kernels: Kernel[] = [];
  for (const [q, kv] of space.blockSizes) {
    say(`compiling blocks ${q} x ${kv}`);
    try {
      kernels.push(await compile(withBlockSize(graph, q, kv), { cacheDir: options.cacheDir, tuning: false }));
    } catch (e) {
      say(`  skipped: ${e instanceof Error ? e.message.split("\n")[0] : String(e)}`);
    }
  }
  if (kernels.length === 0) throw new BenchError("no candidate block size compiled");
  const inputs = benchInputs(graph, call, options.seed ?? 0);
  const main = kernels.find((k) => k.graph.blockSize.join() === graph.blockSize.join()) ?? (await compile(graph, { cacheDir: options.cacheDir, tuning: false }));
  const heuristic = main.choiceFor(inputs);
  const heuristicConfig: Config = {
    kernel: main,
    trial: {
      template: heuristic.template,
      qBlock: heuristic.qBlock,
      kvBlock: heuristic.kvBlock,
      partitionSize: heuristic.template === "flash_decoding" ? heuristic.partitionSize : null,
      numThreads: threads,
    },
  };

  // First pass: every block size, template and partition at the full thread count.
  const first: Config[] = [];
  for (const kernel of kernels) {
    const [qBlock, kvBlock] = kernel.graph.blockSize;
    first.push({ kernel, trial: { template: "flash_attention", qBlock, kvBlock, partitionSize: null, numThreads: threads } });
    if (call.qLen > DECODE_MAX_Q_LEN) continue;
    for (const p of partitionCandidates(graph, call, kvBlock, threads, space.partitionSizes)) {
      first.push({ kernel, trial: { template: "flash_decoding", qBlock, kvBlock, partitionSize: p, numThreads: threads } });
    }
  }
  say(`measuring ${first.length} configuration(s), ${runs} run(s) each`);
  const trials: Trial[] = [];
  const firstResults = measureEach(first, inputs, { warmup: 1, minRuns: runs, maxRuns: runs, budgetMs: 1 });
  trials.push(...firstResults);

  // Second pass: fewer threads for the two best, then the finalists and the heuristic interleaved.
  const ranked = first.map((c, i) => ({ c, ms: firstResults[i].medianMs })).filter((r) => r.ms !== null).sort((a, b) => a.ms! - b.ms!);
  if (ranked.length === 0) throw new BenchError(`every configuration failed; first error: ${firstResults[0]?.error}`);
  const threadConfigs: Config[] = ranked.slice(0, 2).flatMap(({ c }) =>
    space.threads.filter((t) => t !== c.trial.numThreads).map((t) => ({ kernel: c.kernel, trial: { ...c.trial, numThreads: t } })),
  );
  const threadResults = measureEach(threadConfigs, inputs, { warmup: 1, minRuns: runs, maxRuns: runs, budgetMs: 1 });
  trials.push(...threadResults);
  const all = [...first, ...threadConfigs].map((c, i) => ({ c, ms: [...firstResults, ...threadResults][i].medianMs }));
  const finalists = all.filter((r) => r.ms !== null).sort((a, b) => a.ms! - b.ms!).slice(0, 3).map((r) => r.c)
    .filter((c) => !sameConfig(c, heuristicConfig));
  const finalRound = [heuristicConfig, ...finalists];
  say(`final round: the heuristic's choice and ${finalists.length} finalist(s), ${2 * runs} run(s) each, interleaved`);
  const samples = timeInterleaved(finalRound.map((c) => runner(c, inputs)), { warmup: 1, minRuns: 2 * runs, maxRuns: 2 * runs, budgetMs: 1 });
  const medians = samples.map((s) => ("error" in s ? Infinity : median(s.times)));
  if (!Number.isFinite(medians[0])) throw new BenchError(`the heuristic's own choice failed: ${(samples[0] as { error: string }).error}`);
  const fastest = medians.indexOf(Math.min(...medians));
  // A win inside the noise would swap in another library for nothing, so the heuristic keeps ties.
  const winner = medians[fastest] <= (1 - MIN_GAIN) * medians[0] ? fastest : 0;
  const w = finalRound[winner].trial;
  const f = callFeatures(graph, { ...call, threads });
  return {
    bucket: shapeBucket(f),
    heuristic,
    trials,
    best: {
      template: w.template,
      qBlock: w.qBlock,
      kvBlock: w.kvBlock,
      // Flash attention ignores it, but every run still checks it is a multiple of the kv block.
      partitionSize: w.partitionSize ?? Math.ceil(heuristic.partitionSize / w.kvBlock) * w.kvBlock,
      numThreads: w.numThreads,
      tunedMs: medians[winner],
      heuristicMs: medians[0],
      measuredAt: new Date().toISOString(),
      shape: { ...call },
    },
  };
}

function sameConfig(a: Config, b: Config): boolean {
  return JSON.stringify(a.trial) === JSON.stringify(b.trial);
}

function runner(c: Config, inputs: KernelInputs): () => void {
  const options: RunOptions = {
    template: c.trial.template,
    numThreads: c.trial.numThreads,
    ...(c.trial.partitionSize === null ? {} : { partitionSize: c.trial.partitionSize }),
  };
  return () => void c.kernel.run(inputs, options);
}

function measureEach(configs: Config[], inputs: KernelInputs, timing: Parameters<typeof timeInterleaved>[1]): Trial[] {
  const out: Trial[] = [];
  for (const c of configs) {
    const [s] = timeInterleaved([runner(c, inputs)], timing);
    out.push("error" in s ? { ...c.trial, medianMs: null, error: s.error } : { ...c.trial, medianMs: median(s.times) });
  }
  return out;
}

const median = (times: number[]): number => timingStats(times).medianMs;
