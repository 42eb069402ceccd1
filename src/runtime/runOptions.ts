/** Per-call options of a kernel run, with the graph's kernelOptions as defaults. */
import type { AttentionGraph } from "../ir/graph.js";
import { InputError } from "./errors.js";

export type RunTemplate = "flash_attention" | "flash_decoding" | "naive";

export interface RunOptions {
  /** Which entry point to call; default the graph's kernelOptions.template, else flash_attention. */
  template?: RunTemplate;
  /** Kv positions per flash-decoding partition; a positive multiple of the kv block size. */
  partitionSize?: number;
  /** OpenMP threads; 0 (the default) lets OpenMP choose. */
  numThreads?: number;
}

export type ResolvedRunOptions = Required<RunOptions>;

const TEMPLATES: readonly RunTemplate[] = ["flash_attention", "flash_decoding", "naive"];

/** PyTorch's default PARTITION_SIZE, rounded up to a multiple of the kv block size. */
const DEFAULT_PARTITION_POSITIONS = 128;

const INT32_MAX = 2 ** 31 - 1;

/** Fills in the defaults and checks every option; throws an InputError naming the option at fault. */
export function resolveRunOptions(graph: AttentionGraph, options: RunOptions = {}): ResolvedRunOptions {
  const kvBlockSize = graph.blockSize[1];
  const template = options.template ?? graph.kernelOptions.template ?? "flash_attention";
  if (!TEMPLATES.includes(template)) {
    throw new InputError("template", `template '${String(template)}' is not one of ${TEMPLATES.join(", ")}`);
  }
  const partitionSize =
    options.partitionSize ??
    graph.kernelOptions.PARTITION_SIZE ??
    kvBlockSize * Math.ceil(DEFAULT_PARTITION_POSITIONS / kvBlockSize);
  if (!Number.isSafeInteger(partitionSize) || partitionSize <= 0 || partitionSize % kvBlockSize !== 0) {
    throw new InputError(
      "partitionSize",
      `partitionSize = ${partitionSize} must be a positive multiple of the kv block size ${kvBlockSize}`,
    );
  }
  const numThreads = options.numThreads ?? 0;
  if (!Number.isInteger(numThreads) || numThreads < 0 || numThreads > INT32_MAX) {
    throw new InputError("numThreads", `numThreads = ${numThreads} must be a non-negative integer (0: OpenMP's default)`);
  }
  return { template, partitionSize, numThreads };
}
