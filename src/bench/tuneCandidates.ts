import type { AttentionGraph } from "../ir/graph.js";
import { DECODE_MAX_Q_LEN, autoPartitionSize } from "../select/selectTemplate.js";
import { callFeatures } from "../select/features.js";
import type { BenchCall } from "./benchInputs.js";

/** What `minductor tune` tries; every block size is one more compile of the graph. */
export interface TuneCandidates {
  blockSizes: [number, number][];
  /** Flash-decoding partition sizes; each is rounded to a multiple of a variant's kv block. Empty: derived per variant. */
  partitionSizes: number[];
  /** Thread counts tried on the best few configurations. */
  threads: number[];
}

const roundUp = (n: number, m: number): number => Math.ceil(n / m) * m;

function unique<T>(items: readonly T[], key: (t: T) => string = String): T[] {
  const seen = new Map<string, T>();
  for (const item of items) if (!seen.has(key(item))) seen.set(key(item), item);
  return [...seen.values()];
}

/**
 * The default search space for a call. Prefill varies both block sizes around the graph's; decode-shaped calls
 * (q_len <= DECODE_MAX_Q_LEN) vary only the kv block, since their q block holds a handful of rows whatever its
 * size. Threads: all of them, half, and one (small calls can lose more to the fork-join than they gain).
 */
export function defaultCandidates(graph: AttentionGraph, call: BenchCall, threads: number): TuneCandidates {
  const [q, kv] = graph.blockSize;
  const decode = call.qLen <= DECODE_MAX_Q_LEN;
  const blockSizes: [number, number][] = decode
    ? [[q, kv], [q, 64], [q, 128], [q, 256]]
    : [[q, kv], [64, 64], [128, 128], [256, 128], [128, 256]];
  return {
    blockSizes: unique(blockSizes, (b) => b.join("x")),
    partitionSizes: [],
    threads: unique([threads, Math.max(1, Math.floor(threads / 2)), 1]),
  };
}

/**
 * Partition sizes to try with kv block `kvBlock`: the heuristic's, and the sizes that split the kv length into 1, 2,
 * 4, ... 32 partitions per (b, kv head), each a multiple of the kv block.
 */
export function partitionCandidates(graph: AttentionGraph, call: BenchCall, kvBlock: number, threads: number, explicit: readonly number[]): number[] {
  if (explicit.length > 0) return unique(explicit.map((p) => roundUp(p, kvBlock)));
  const f = callFeatures({ ...graph, blockSize: [graph.blockSize[0], kvBlock] }, { ...call, threads });
  const splits = [1, 2, 4, 8, 16, 32].map((n) => roundUp(Math.ceil(call.kvLen / n), kvBlock));
  return unique([autoPartitionSize(f), ...splits]).filter((p) => p >= kvBlock).sort((a, b) => a - b);
}
