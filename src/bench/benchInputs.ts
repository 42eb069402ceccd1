/**
 * Inputs for timing: q/k/v filled with a fast seeded generator straight into their storage. `generateInputs`
 * draws normals through float64 arrays, which costs seconds and gigabytes at decode shapes (B = 8, kv 16384);
 * timing only needs finite values of a sane magnitude. Buffers, the page table and the lengths follow the same
 * rules as `generateInputs`, so masks that read buffers see realistic contents.
 */
import { generateInputs } from "../io/generateInputs.js";
import type { AttentionGraph, TensorDType } from "../ir/graph.js";
import type { KernelInputs } from "../runtime/validateInputs.js";
import { type Tensor, tensor } from "../runtime/tensor.js";

export interface BenchCall {
  batch: number;
  qLen: number;
  /** Unpaged: the key/value length. Paged: every sequence's length (the bench measures full sequences). */
  kvLen: number;
}

export function benchInputs(graph: AttentionGraph, call: BenchCall, seed: number): KernelInputs {
  const next = xorshift(seed);
  const [, hq, , qkDim] = graph.query.shape;
  const hkv = graph.key.shape[1];
  const vDim = graph.value.shape[3];
  const dtype = graph.query.dtype;
  const query = fill(dtype, [call.batch, hq, call.qLen, qkDim], next);
  // Buffers only: a one-row graph keeps generateInputs from drawing any sizeable q/k/v.
  const rows = graph.kvCache?.pageSize ?? 1;
  const tiny: AttentionGraph = {
    ...graph,
    query: { ...graph.query, shape: [1, hq, 1, qkDim] },
    key: { ...graph.key, shape: [1, hkv, rows, qkDim] },
    value: { ...graph.value, shape: [1, hkv, rows, vDim] },
  };
  const { buffers } = generateInputs(tiny, seed, { batch: 1, qLen: 1, kvLen: 1 });
  if (!graph.kvCache) {
    return {
      query,
      key: fill(dtype, [call.batch, hkv, call.kvLen, qkDim], next),
      value: fill(dtype, [call.batch, hkv, call.kvLen, vDim], next),
      buffers,
    };
  }
  const pageSize = graph.kvCache.pageSize;
  const pagesPerSeq = Math.ceil(call.kvLen / pageSize);
  const numPages = call.batch * pagesPerSeq;
  // Sequential pages: the bench measures the kernel, not the scatter of a fragmented pool.
  const pageTable = tensor("int32", [call.batch, pagesPerSeq], Int32Array.from({ length: numPages }, (_, i) => i));
  const seqLens = tensor("int32", [call.batch], new Int32Array(call.batch).fill(call.kvLen));
  return {
    query,
    key: fill(dtype, [numPages, hkv, pageSize, qkDim], next),
    value: fill(dtype, [numPages, hkv, pageSize, vDim], next),
    buffers,
    pageTable,
    seqLens,
  };
}

/** Uniform values in about [-1, 1), written as the dtype's bits directly (16-bit floats: random sign, exponent, mantissa). */
function fill(dtype: TensorDType, shape: number[], next: () => number): Tensor {
  const n = shape.reduce((a, b) => a * b, 1);
  if (dtype === "float32") {
    const data = new Float32Array(n);
    for (let i = 0; i < n; i++) data[i] = (next() / 2 ** 31) - 1;
    return tensor("float32", shape, data);
  }
  const data = new Uint16Array(n);
  // Exponents 2^-3 .. 2^0: magnitudes in [0.125, 2), never subnormal, inf or NaN.
  const [expBias, mantissaBits] = dtype === "bfloat16" ? [127, 7] : [15, 10];
  for (let i = 0; i < n; i++) {
    const r = next();
    const sign = r & 1;
    const exponent = expBias - 3 + ((r >>> 1) & 3);
    const mantissa = (r >>> 3) & ((1 << mantissaBits) - 1);
    data[i] = (sign << 15) | (exponent << mantissaBits) | mantissa;
  }
  return tensor(dtype, shape, data);
}

/** xorshift32: unsigned 32-bit values, fast enough for hundreds of millions of elements. */
function xorshift(seed: number): () => number {
  let state = (seed ^ 0x9e3779b9) >>> 0 || 1;
  return () => {
    state ^= state << 13;
    state >>>= 0;
    state ^= state >>> 17;
    state ^= state << 5;
    state >>>= 0;
    return state;
  };
}
