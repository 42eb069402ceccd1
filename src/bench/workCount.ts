import { type AttentionGraph, elementBytes, kvBytesPerToken } from "../ir/graph.js";
import type { BlockMask } from "../runtime/blockMask.js";
import type { BenchCall } from "./benchInputs.js";

/** What one call must do, the numerators of the efficiency figures. */
export interface CallWork {
  /** (q, kv) positions inside the active blocks of the block mask (clipped to the lengths): what the kernel computes. */
  computedPositions: number;
  /** B * Hq * q_len * kv_len. */
  densePositions: number;
  /** QK^T and PV over the computed positions: 2 * (D + Dv) FLOPs each (an FMA counts as 2). */
  flops: number;
  /** Unique K and V bytes (each kv head once, an int8 cache's scales included): what a bandwidth-bound decode must stream. */
  kvBytes: number;
  /** Q, K, V and the output once each: the least traffic of any implementation, for the roofline's intensity. */
  minBytes: number;
}

/** The work of a call on `graph`, counting positions over the blocks `mask` lists (partial and full). */
export function callWork(graph: AttentionGraph, call: BenchCall, mask: BlockMask): CallWork {
  const [, hq, , qkDim] = graph.query.shape;
  const hkv = graph.key.shape[1];
  const vDim = graph.value.shape[3];
  const bytes = elementBytes(graph.query.dtype);
  const { qBlockSize, kvBlockSize } = mask;
  const span = (block: number, size: number, length: number) => Math.max(0, Math.min(size, length - block * size));
  // A broadcast mask row stands for every batch entry / head it is broadcast over.
  const repeat = (call.batch / mask.batch) * (hq / mask.heads);
  let computed = 0;
  for (let row = 0; row < mask.batch * mask.heads * mask.qBlocks; row++) {
    const rows = span(row % mask.qBlocks, qBlockSize, call.qLen);
    if (rows === 0) continue;
    let columns = 0;
    const lists: [Int32Array, Int32Array][] = [[mask.kvNumBlocks, mask.kvIndices]];
    if (mask.fullKvNumBlocks && mask.fullKvIndices) lists.push([mask.fullKvNumBlocks, mask.fullKvIndices]);
    for (const [counts, indices] of lists) {
      for (let j = 0; j < counts[row]; j++) columns += span(indices[row * mask.kvBlocks + j], kvBlockSize, call.kvLen);
    }
    computed += rows * columns * repeat;
  }
  const qBytes = call.batch * hq * call.qLen * qkDim * bytes;
  const kvBytes = call.batch * hkv * call.kvLen * kvBytesPerToken(graph.key.dtype, qkDim, vDim);
  const outBytes = call.batch * hq * call.qLen * vDim * bytes;
  return {
    computedPositions: computed,
    densePositions: call.batch * hq * call.qLen * call.kvLen,
    flops: 2 * (qkDim + vDim) * computed,
    kvBytes,
    minBytes: qBytes + kvBytes + outBytes,
  };
}
