import type { Environment } from "nunjucks";
import { freeVars } from "../ir/expr.js";
import type { AttentionGraph, BufferDType } from "../ir/graph.js";
import { KernelRenderError } from "./kernelRenderError.js";
import { renderKernel } from "./renderKernel.js";
import { renderMods } from "./renderMods.js";
import { templateEnvironment } from "./templateEnv.js";

/** Every value harness.cpp.njk reads besides the kernel source: numbers, booleans and fixed C tokens. */
export interface HarnessConstants {
  readonly default_batch: number;
  readonly default_q_len: number;
  /** Unpaged: the spec's kv length. Paged: the longest sequence generateInputs would make. */
  readonly default_kv_len: number;
  readonly default_partition_size: number;
  readonly paged: boolean;
  readonly spec_num_pages: number;
  readonly mask_per_batch: boolean;
  readonly mask_per_head: boolean;
  readonly return_lse: boolean;
  readonly buffers: ReadonlyArray<{ kind: string; rank: number; dims: [number, number] }>;
}

const BUFFER_KIND: Readonly<Record<BufferDType, string>> = {
  float32: "MH_FLOAT32",
  int32: "MH_INT32",
  int64: "MH_INT64",
  bool: "MH_BOOL",
};

/** PyTorch's default PARTITION_SIZE, rounded up to the kv block size (the runtime's default too). */
const DEFAULT_PARTITION_POSITIONS = 128;

/** What the harness needs to know about a graph to draw its inputs the way src/io/generateInputs.ts does. */
export function harnessConstants(graph: AttentionGraph): HarnessConstants {
  const [batch, , qLen] = graph.query.shape;
  const kvBlock = graph.blockSize[1];
  const pageSize = graph.kvCache?.pageSize;
  const kvLen = pageSize ? Math.max(1, Math.floor(graph.key.shape[0] / batch)) * pageSize : graph.key.shape[2];
  const maskVars = freeVars(graph.maskMod);
  return {
    default_batch: batch,
    default_q_len: qLen,
    default_kv_len: kvLen,
    default_partition_size: graph.kernelOptions.PARTITION_SIZE ?? kvBlock * Math.ceil(DEFAULT_PARTITION_POSITIONS / kvBlock),
    paged: pageSize !== undefined,
    spec_num_pages: pageSize ? graph.key.shape[0] : 0,
    mask_per_batch: maskVars.has("b"),
    mask_per_head: maskVars.has("h"),
    return_lse: graph.returnLse,
    buffers: graph.buffers.map((b, i) => {
      if (b.shape.length < 1 || b.shape.length > 2) {
        throw new KernelRenderError(`buffers[${i}].shape`, `a buffer has 1 or 2 dims, got ${b.shape.length}`);
      }
      return { kind: BUFFER_KIND[b.dtype], rank: b.shape.length, dims: [b.shape[0], b.shape[1] ?? 1] };
    }),
  };
}

/**
 * One self-contained C++ file: the graph's kernel (as `generate` makes it) followed by a `main()` that draws seeded
 * inputs, builds the block mask, runs one entry point and prints checksums. It needs nothing but
 * `g++ -fopenmp -std=gnu++17`, which is what lets sanitizers and debuggers see the kernel without Node.
 * Deterministic: same graph, same bytes.
 */
export function renderHarness(graph: AttentionGraph, env: Environment = templateEnvironment()): string {
  const { cpp } = renderKernel(graph, renderMods(graph), env);
  return env.render("harness.cpp.njk", { ...harnessConstants(graph), kernel_cpp: cpp });
}
