import type { AttentionGraph, KernelOptions, TemplateName } from "../ir/graph.js";

/** What the template choice may depend on: the call's shapes, the graph's constants and the machine's threads. */
export interface CallFeatures {
  readonly batch: number;
  readonly hq: number;
  readonly hkv: number;
  readonly qLen: number;
  /** Longest logical kv length of the call (max of seqLens when paged). */
  readonly kvLen: number;
  /** Paged: tokens in the page pool (numPages * pageSize), the `k_seq_len` PyTorch's rule sees; else kvLen. */
  readonly kvTokens: number;
  readonly headDim: number;
  readonly valueDim: number;
  readonly dtype: AttentionGraph["query"]["dtype"];
  /** The key's and value's dtype: the query's, or an 8-bit format. */
  readonly kvDtype: AttentionGraph["key"]["dtype"];
  /** Query rows of the whole call: batch * qLen, or a ragged call's totalQ (qLen is then its shortest sequence). */
  readonly queryRows: number;
  readonly qBlock: number;
  readonly kvBlock: number;
  readonly threads: number;
  readonly paged: boolean;
  readonly kernelOptions: KernelOptions;
}

/** One clause of a decision: what was tested, on which values, and whether it held. */
export interface Clause {
  readonly name: string;
  readonly value: string;
  readonly holds: boolean;
}

export interface Choice {
  readonly template: TemplateName;
  readonly policy: "auto" | "pytorch" | "forced" | "tuned";
  readonly qBlock: number;
  readonly kvBlock: number;
  /** kv positions per flash-decoding partition (a multiple of kvBlock); also reported for flash attention. */
  readonly partitionSize: number;
  /** OpenMP threads to run with; absent: the call's own (OMP_NUM_THREADS, else every core). Set by tuning. */
  readonly numThreads?: number;
  readonly clauses: readonly Clause[];
  readonly reasons: readonly string[];
}

/** Features of a call on `graph` with the given runtime lengths. */
export function callFeatures(
  graph: AttentionGraph,
  call: { batch: number; qLen: number; kvLen: number; kvTokens?: number; threads: number; queryRows?: number },
): CallFeatures {
  return {
    batch: call.batch,
    hq: graph.query.shape[1],
    hkv: graph.key.shape[1],
    qLen: call.qLen,
    kvLen: call.kvLen,
    kvTokens: call.kvTokens ?? call.kvLen,
    headDim: graph.query.shape[3],
    valueDim: graph.value.shape[3],
    dtype: graph.query.dtype,
    kvDtype: graph.key.dtype,
    queryRows: call.queryRows ?? call.batch * call.qLen,
    qBlock: graph.blockSize[0],
    kvBlock: graph.blockSize[1],
    threads: call.threads,
    paged: graph.kvCache !== undefined,
    kernelOptions: graph.kernelOptions,
  };
}
