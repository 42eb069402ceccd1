/**
 * Inputs for timing: q/k/v filled with a fast seeded generator straight into their storage. `generateInputs`
 * draws normals through float64 arrays, which costs seconds and gigabytes at decode shapes (B = 8, kv 16384);
 * timing only needs finite values of a sane magnitude. Buffers, the page table and the lengths follow the same
 * rules as `generateInputs`, so masks that read buffers see realistic contents.
 */
import { generateInputs } from "../io/generateInputs.js";
import type { AttentionGraph, KvDType } from "../ir/graph.js";
import type { KernelInputs } from "../runtime/validateInputs.js";
import { type Tensor, allocate, tensor } from "../runtime/tensor.js";
import { permute } from "../runtime/view.js";

export interface BenchCall {
  batch: number;
  qLen: number;
  /** Unpaged: the key/value length. Paged: every sequence's length (the bench measures full sequences). */
  kvLen: number;
}

/** "bhsd": contiguous [B, H, L, D]; "bshd": views of [B, L, H, D] storage (a paged pool: token-major). */
export type BenchLayout = "bhsd" | "bshd";

/**
 * A tensor of logical shape [A, H, L, D] filled with random values; "bshd" stores it as [A, L, H, D] and returns
 * the permuted view, so the kernel reads the layout an inference engine holds.
 */
function fill4(dtype: KvDType, shape: number[], layout: BenchLayout, next: () => number): Tensor {
  if (layout === "bhsd") return fill(dtype, shape, next);
  const [a, h, l, d] = shape;
  return permute(fill(dtype, [a, l, h, d], next), [0, 2, 1, 3]);
}

/** The scales of an int8 cache, one per (token, kv head) shaped like the cache without its last dim; none for fp8. */
function scalesFor(cache: Tensor, next: () => number): Tensor | undefined {
  if (cache.dtype !== "int8") return undefined;
  const shape = cache.shape.slice(0, 3);
  const data = new Float32Array(shape[0] * shape[1] * shape[2]);
  // About max|x| / 127 for values of magnitude ~1: [0.005, 0.02).
  for (let i = 0; i < data.length; i++) data[i] = 0.005 + 0.015 * (next() / 2 ** 32);
  return tensor("float32", shape, data);
}

export function benchInputs(graph: AttentionGraph, call: BenchCall, seed: number, layout: BenchLayout = "bhsd"): KernelInputs {
  const next = xorshift(seed);
  const [, hq, , qkDim] = graph.query.shape;
  const hkv = graph.key.shape[1];
  const vDim = graph.value.shape[3];
  const kvDtype = graph.key.dtype;
  const query = fill4(graph.query.dtype, [call.batch, hq, call.qLen, qkDim], layout, next);
  const buffers = benchBuffers(graph, seed);
  const withScales = (inputs: KernelInputs): KernelInputs => {
    const keyScale = scalesFor(inputs.key, next);
    const valueScale = scalesFor(inputs.value, next);
    return { ...inputs, ...(keyScale && valueScale ? { keyScale, valueScale } : {}) };
  };
  if (!graph.kvCache) {
    return withScales({
      query,
      key: fill4(kvDtype, [call.batch, hkv, call.kvLen, qkDim], layout, next),
      value: fill4(kvDtype, [call.batch, hkv, call.kvLen, vDim], layout, next),
      buffers,
    });
  }
  const pageSize = graph.kvCache.pageSize;
  const pagesPerSeq = Math.ceil(call.kvLen / pageSize);
  const numPages = call.batch * pagesPerSeq;
  // Sequential pages: the bench measures the kernel, not the scatter of a fragmented pool.
  const pageTable = tensor("int32", [call.batch, pagesPerSeq], Int32Array.from({ length: numPages }, (_, i) => i));
  const seqLens = tensor("int32", [call.batch], new Int32Array(call.batch).fill(call.kvLen));
  return withScales({
    query,
    key: fill4(kvDtype, [numPages, hkv, pageSize, qkDim], layout, next),
    value: fill4(kvDtype, [numPages, hkv, pageSize, vDim], layout, next),
    buffers,
    pageTable,
    seqLens,
  });
}

/** Buffers only: a one-row graph keeps generateInputs from drawing any sizeable q/k/v. */
function benchBuffers(graph: AttentionGraph, seed: number): KernelInputs["buffers"] {
  const [, hq, , qkDim] = graph.query.shape;
  const hkv = graph.key.shape[1];
  const vDim = graph.value.shape[3];
  const rows = graph.kvCache?.pageSize ?? 1;
  const tiny: AttentionGraph = {
    ...graph,
    query: { ...graph.query, shape: [1, hq, 1, qkDim] },
    key: { ...graph.key, shape: [1, hkv, rows, qkDim] },
    value: { ...graph.value, shape: [1, hkv, rows, vDim] },
  };
  return generateInputs(tiny, seed, { batch: 1, qLen: 1, kvLen: 1 }).buffers;
}

/** A ragged call on a paged graph and the two calls it splits into (decode sequences, then the longer ones). */
export interface RaggedBenchInputs {
  mixed: KernelInputs;
  /** The sequences of one query row, as one dense q_len 1 call; the others as one ragged call. */
  decode: KernelInputs;
  prefill: KernelInputs;
}

/**
 * Continuous batching: `sequences` (decode ones, qLen 1, first) share one token-major packed query [totalQ, Hq, D]
 * and one pool, each sequence on its own run of pages. The split calls read views of the same query and pool.
 */
export function raggedBenchInputs(graph: AttentionGraph, sequences: readonly { qLen: number; kvLen: number }[], seed: number): RaggedBenchInputs {
  if (!graph.kvCache) throw new Error("a ragged bench case needs a paged spec");
  const decodeCount = sequences.findIndex((s) => s.qLen !== 1);
  if (decodeCount <= 0 || sequences.slice(decodeCount).some((s) => s.qLen === 1)) {
    throw new Error("a ragged bench case lists its decode sequences (qLen 1) first, then at least one longer one");
  }
  const next = xorshift(seed);
  const [, hq, , qkDim] = graph.query.shape;
  const hkv = graph.key.shape[1];
  const vDim = graph.value.shape[3];
  const pageSize = graph.kvCache.pageSize;
  const pages = sequences.map((s) => Math.ceil(s.kvLen / pageSize));
  const maxPages = Math.max(...pages);
  const numPages = pages.reduce((a, b) => a + b, 0);
  const starts = [0];
  for (const s of sequences) starts.push(starts[starts.length - 1] + s.qLen);
  const totalQ = starts[starts.length - 1];
  const query = fill(graph.query.dtype, [totalQ, hq, qkDim], next);
  const key = fill(graph.key.dtype, [numPages, hkv, pageSize, qkDim], next);
  const value = fill(graph.value.dtype, [numPages, hkv, pageSize, vDim], next);
  const table = new Int32Array(sequences.length * maxPages);
  let page = 0;
  sequences.forEach((_, b) => {
    for (let p = 0; p < pages[b]; p++) table[b * maxPages + p] = page++;
  });
  const buffers = benchBuffers(graph, seed);
  const keyScale = scalesFor(key, next);
  const valueScale = scalesFor(value, next);
  const pool = { key, value, buffers, ...(keyScale && valueScale ? { keyScale, valueScale } : {}) };
  const paging = (from: number, to: number) => ({
    pageTable: tensor("int32", [to - from, maxPages], table.slice(from * maxPages, to * maxPages)),
    seqLens: tensor("int32", [to - from], Int32Array.from(sequences.slice(from, to), (s) => s.kvLen)),
  });
  const qStart = (from: number, to: number) => tensor("int32", [to - from + 1], Int32Array.from(starts.slice(from, to + 1), (x) => x - starts[from]));
  const rowElements = hq * qkDim;
  return {
    mixed: { ...pool, query, qStartLoc: qStart(0, sequences.length), ...paging(0, sequences.length) },
    decode: {
      ...pool,
      // [B, Hq, 1, D] over the first B packed rows.
      query: { ...query, shape: [decodeCount, hq, 1, qkDim], strides: [rowElements, qkDim, rowElements, 1], offset: 0 },
      ...paging(0, decodeCount),
    },
    prefill: {
      ...pool,
      query: { ...query, shape: [totalQ - decodeCount, hq, qkDim], strides: [rowElements, qkDim, 1], offset: decodeCount * rowElements },
      qStartLoc: qStart(decodeCount, sequences.length),
      ...paging(decodeCount, sequences.length),
    },
  };
}

/**
 * Values of magnitude about 1, written as the dtype's bits directly: floats with a random sign, exponent (2^-3 ..
 * 2^0, never subnormal, inf or NaN) and mantissa; int8 codes uniform over [-128, 127] (their scales bring them to
 * about 1).
 */
function fill(dtype: KvDType, shape: number[], next: () => number): Tensor {
  const n = shape.reduce((a, b) => a * b, 1);
  if (dtype === "int8") {
    const data = allocate("int8", n);
    for (let i = 0; i < n; i++) data[i] = next() & 0xff;
    return tensor("int8", shape, data);
  }
  if (dtype === "float8_e4m3fn" || dtype === "float8_e5m2") {
    const data = allocate(dtype, n);
    const [expBias, mantissaBits] = dtype === "float8_e4m3fn" ? [7, 3] : [15, 2];
    for (let i = 0; i < n; i++) {
      const r = next();
      data[i] = ((r & 1) << 7) | ((expBias - 3 + ((r >>> 1) & 3)) << mantissaBits) | ((r >>> 3) & ((1 << mantissaBits) - 1));
    }
    return tensor(dtype, shape, data);
  }
  if (dtype === "float32") {
    const data = allocate("float32", n);
    for (let i = 0; i < n; i++) data[i] = (next() / 2 ** 31) - 1;
    return tensor("float32", shape, data);
  }
  const data = allocate(dtype, n);
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
