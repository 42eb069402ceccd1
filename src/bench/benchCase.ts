/**
 * One bench case: what a child process (`node dist/bench/runCase.js <request JSON>`) measures and what it prints
 * back. Every case runs in a fresh process, so no case inherits another's page cache state, allocator arenas,
 * OpenMP pool or JIT warmth.
 */
import { z } from "zod";
import type { CallWork } from "./workCount.js";
import type { TimingStats } from "./timingStats.js";

const call = z.object({ batch: z.number().int().positive(), qLen: z.number().int().positive(), kvLen: z.number().int().positive() });

const variant = z.object({
  /** Names the variant in tables and plots: "auto", "flash_attention", "naive", "tuned"... */
  label: z.string(),
  template: z.enum(["flash_attention", "flash_decoding", "naive"]).optional(),
  partitionSize: z.number().int().positive().optional(),
  numThreads: z.number().int().positive().optional(),
  /** Another compile-time block size: the graph is compiled again with it. */
  blockSize: z.tuple([z.number().int().positive(), z.number().int().positive()]).optional(),
  /** An 8-bit key/value cache instead of the spec's dtype: the graph is compiled again with it (query unchanged). */
  kvDtype: z.enum(["int8", "float8_e4m3fn", "float8_e5m2"]).optional(),
  /**
   * How q, k and v are stored: "bhsd" (default) contiguous [B, H, L, D]; "bshd" as permuted views of [B, L, H, D]
   * storage, the layout of a fused projection's output, and for a paged pool token-major [numPages, pageSize,
   * Hkv, D]. Strides are runtime arguments, so both run the same compiled kernel.
   */
  layout: z.enum(["bhsd", "bshd"]).optional(),
});

/** A ragged call's sequences: query rows and kv length of each. */
const sequence = z.object({ qLen: z.number().int().positive(), kvLen: z.number().int().positive() });

const timing = z.object({
  /** Untimed calls per variant before measuring (the first also faults in the output pages). */
  warmup: z.number().int().nonnegative(),
  minRuns: z.number().int().positive(),
  maxRuns: z.number().int().positive(),
  /** Wall time to aim for across all variants; runs per variant are fitted into it within [minRuns, maxRuns]. */
  budgetMs: z.number().positive(),
});

export const caseRequestSchema = z.discriminatedUnion("kind", [
  /** Variants of one call, timed in interleaved rounds so a slow drift of the machine hits all of them alike. */
  /** With `readPass`, a read pass over 256 MiB (src/bench/readPass.ts) runs in the same rounds: the case's bandwidth. */
  z.object({
    kind: z.literal("kernel"),
    id: z.string(),
    spec: z.record(z.string(), z.unknown()),
    call,
    variants: z.array(variant).min(1),
    timing,
    seed: z.number().int(),
    readPass: z.boolean().optional(),
  }),
  /** `generate(graph)`: the first call of a fresh process (templates loaded) and the steady state. */
  z.object({ kind: z.literal("codegen"), id: z.string(), spec: z.record(z.string(), z.unknown()), runs: z.number().int().positive() }),
  /**
   * The first `compile()` of a fresh process: cold when `cacheDir` is empty, a cache hit when it holds the kernel, a
   * new mod when it holds only the engine. `build` "selfContained" times instead what every new mod cost before the
   * split: `generate(graph)` built as one library with the mods inlined (`compileSource`), and loaded.
   */
  z.object({
    kind: z.literal("compile"),
    id: z.string(),
    spec: z.record(z.string(), z.unknown()),
    cacheDir: z.string().optional(),
    build: z.enum(["split", "selfContained"]).optional(),
  }),
  /**
   * One call timed on the split kernel (the engine calling the mod library through its table of function pointers)
   * and on the self-contained library of the same graph (mods inlined), interleaved, with the same block mask and
   * the template the selector picks.
   */
  z.object({ kind: z.literal("splitKernel"), id: z.string(), spec: z.record(z.string(), z.unknown()), call, timing, seed: z.number().int() }),
  /**
   * Continuous batching on a paged spec: the sequences in one ragged call (queries packed token-major with
   * qStartLoc, one page table) against the same work split by template, one call for the decode sequences (q_len 1)
   * and one for the prefill chunks, the two calls timed as one step; interleaved.
   */
  z.object({ kind: z.literal("ragged"), id: z.string(), spec: z.record(z.string(), z.unknown()), sequences: z.array(sequence).min(2), timing, seed: z.number().int() }),
  /** `run()` on a tiny call, many times: the per-call cost of the TS side and the FFI. */
  z.object({ kind: z.literal("call"), id: z.string(), spec: z.record(z.string(), z.unknown()), call, warmup: z.number().int().nonnegative(), runs: z.number().int().positive() }),
]);

export type CaseRequest = z.infer<typeof caseRequestSchema>;
export type KernelCaseRequest = Extract<CaseRequest, { kind: "kernel" }>;
export type VariantRequest = KernelCaseRequest["variants"][number];
export type TimingSettings = KernelCaseRequest["timing"];

/** What one variant actually ran, as the kernel resolved it. */
export interface VariantResult {
  label: string;
  template: "flash_attention" | "flash_decoding" | "naive";
  /** The selector's policy for this call ("auto", "tuned", ...); "forced" when the request forced a template. */
  policy: string;
  qBlock: number;
  kvBlock: number;
  partitionSize: number | null;
  /** 0: OpenMP's default. */
  numThreads: number;
  /** The untimed first call (output pages faulted in, caches cold). */
  firstMs: number | null;
  stats: TimingStats | null;
  /** Set instead of `stats` when this variant failed; the case's other variants still count. */
  error?: string;
  /** The unique K/V bytes this variant streams (each kv head once, scales included): it differs by kvDtype. */
  kvBytes: number;
}

export type CaseResult =
  | {
      kind: "kernel";
      id: string;
      compileMs: number;
      fromCache: string;
      work: CallWork;
      variants: VariantResult[];
      /** With `readPass`: the read bandwidth of the pass's median, 1e9 bytes/s, and its timings. */
      read?: { gbs: number; stats: TimingStats };
    }
  | { kind: "codegen"; id: string; firstMs: number; stats: TimingStats }
  | {
      kind: "compile";
      id: string;
      build: "split" | "selfContained";
      ms: number;
      fromCache: string;
      /** Split builds: where each library came from ("memory", "disk" or "compiled"). */
      engineFromCache?: string;
      modsFromCache?: string;
      compilerProbeMs: number;
    }
  | {
      kind: "splitKernel";
      id: string;
      template: string;
      partitionSize: number | null;
      /** Both timed in the same rounds, alternating which one goes first. */
      split: { firstMs: number | null; stats: TimingStats };
      selfContained: { firstMs: number | null; stats: TimingStats };
    }
  | {
      kind: "ragged";
      id: string;
      /** What the selector ran for the ragged call and for each call of the split. */
      mixedTemplate: string;
      splitTemplates: [string, string];
      mixed: { firstMs: number | null; stats: TimingStats };
      split: { firstMs: number | null; stats: TimingStats };
    }
  | { kind: "call"; id: string; template: string; stats: TimingStats };

export type ResultOf<K extends CaseRequest["kind"]> = Extract<CaseResult, { kind: K }>;
