import { isQuantized } from "../ir/graph.js";
import { quantizeKv } from "../runtime/quantize.js";
import type { AttentionGraph } from "../ir/graph.js";
import { fromFloat64, type Tensor, tensor } from "../runtime/tensor.js";
import { isPacked, layoutOf, storedAs } from "./fileLayout.js";
import { rng } from "./random.js";

export interface GeneratedInputs {
  /** Logical [B, Hq, Lq, D] (a view over [B, Lq, Hq, D] data when the query's layout is "bshd"); ragged: [totalQ, Hq, D]. */
  query: Tensor;
  /** Logical [B, Hkv, Lkv, D] (batch 1 when the spec broadcasts it), a pool, or packed [totalKv, Hkv, D]; views like query. */
  key: Tensor;
  value: Tensor;
  buffers: Record<string, Tensor>;
  pageTable?: Tensor;
  seqLens?: Tensor;
  /** Ragged query: int32 [B + 1], sequence b's rows are qStartLoc[b] .. qStartLoc[b + 1] - 1. */
  qStartLoc?: Tensor;
  /** Ragged query with an unpaged key/value: int32 [B + 1] over the packed key/value rows. */
  kvStartLoc?: Tensor;
  /** A quantized key/value's scales (int8: one per token and kv head; fp8: one per kv head). */
  keyScale?: Tensor;
  valueScale?: Tensor;
}

export interface ShapeOverrides {
  batch?: number;
  /** Query rows (ragged: the longest sequence's; see raggedQueryRows). */
  qLen?: number;
  /** Unpaged: the key/value length (packed: the longest sequence's). Paged: the longest sequence (others are shorter). */
  kvLen?: number;
}

/**
 * Query rows of sequence b of a generated ragged batch: the first sequence has qLen rows (the longest), the last one
 * (when B > 1) a single row, so a call mixes a decode step with prefill chunks; those between have
 * qLen - (5 b mod qLen) rows.
 */
export function raggedQueryRows(batch: number, qLen: number, b: number): number {
  if (batch > 1 && b === batch - 1) return 1;
  return qLen - ((b * 5) % qLen);
}

/**
 * Key/value positions of sequence b of a generated ragged or paged batch: kvLen - (37 b mod ceil(kvLen / 4)), so the
 * first sequence is the longest and the others end at varied points inside a page.
 */
export function raggedKvLength(kvLen: number, b: number): number {
  return kvLen - ((b * 37) % Math.max(1, Math.ceil(kvLen / 4)));
}

/**
 * Seeded random inputs for a graph, at the spec's default shapes unless overridden: q/k/v ~ N(0, 1) rounded to
 * their dtype; float buffers ~ N(0, 0.5); integer buffers sorted values in [0, 4) (so a `doc` buffer describes
 * four contiguous documents); bool buffers fair coins. A paged cache gets a shuffled page table and ragged lengths
 * (raggedKvLength). A key/value of batch 1 under a larger query batch stays batch 1 (it broadcasts).
 *
 * Layouts never change the values: a "bshd" tensor holds the same logical values as a "bhsd" one of the same seed,
 * stored [B, L, H, D] (a pool [numPages, pageSize, Hkv, D]) and returned as a view of that storage. A ragged graph
 * draws the dense tensors the same way and packs sequence b's first raggedQueryRows query rows (and, unpaged, its first
 * raggedKvLength key/value positions) token-major, so everything drawn after them (page table, buffers) is the same
 * as for the dense graph.
 */
export function generateInputs(graph: AttentionGraph, seed: number, shapes: ShapeOverrides = {}): GeneratedInputs {
  const r = rng(seed);
  const normal = (shape: number[], dtype: Tensor["dtype"], std = 1): Tensor => {
    const n = shape.reduce((a, b) => a * b, 1);
    const values = new Float64Array(n);
    for (let i = 0; i < n; i++) values[i] = r.normal(0, std);
    return fromFloat64(values, dtype, shape);
  };
  const [qBatch, hq, qLenDefault, qkDim] = graph.query.shape;
  const [kvBatchDefault, hkv, kvDim2] = graph.key.shape;
  const vDim = graph.value.shape[3];
  const batch = shapes.batch ?? qBatch;
  const qLen = shapes.qLen ?? qLenDefault;
  const dtype = graph.query.dtype;
  const ragged = graph.raggedQuery === true;
  const dense = (field: "query" | "key" | "value", t: Tensor) => storedAs(t, layoutOf(graph, field));
  let query = normal([batch, hq, qLen, qkDim], dtype);
  let qStartLoc: Tensor | undefined;
  if (ragged) {
    const rows = Array.from({ length: batch }, (_, b) => raggedQueryRows(batch, qLen, b));
    qStartLoc = startLoc(rows);
    query = pack(query, rows);
  } else {
    query = dense("query", query);
  }

  let key: Tensor;
  let value: Tensor;
  let pageTable: Tensor | undefined;
  let seqLens: Tensor | undefined;
  let kvStartLoc: Tensor | undefined;
  if (graph.kvCache) {
    const pageSize = graph.kvCache.pageSize;
    const kvLen = shapes.kvLen ?? Math.max(1, Math.floor(graph.key.shape[0] / batch)) * pageSize;
    const maxPages = Math.ceil(kvLen / pageSize);
    const numPages = Math.max(graph.key.shape[0], batch * maxPages);
    key = dense("key", normal([numPages, hkv, pageSize, qkDim], dtype));
    value = dense("value", normal([numPages, hkv, pageSize, vDim], dtype));
    const order = r.shuffle(Int32Array.from({ length: numPages }, (_, i) => i));
    pageTable = tensor("int32", [batch, maxPages], Int32Array.from({ length: batch * maxPages }, (_, i) => order[i]));
    // Ragged: sequence b is shorter than the longest by a b-dependent amount (the first one is the longest).
    seqLens = tensor("int32", [batch], Int32Array.from({ length: batch }, (_, b) => raggedKvLength(kvLen, b)));
  } else {
    const kvLen = shapes.kvLen ?? kvDim2;
    // The spec broadcasts a key/value batch of 1 over a larger query batch: generated inputs do too.
    const kvBatch = !ragged && kvBatchDefault === 1 && qBatch > 1 ? 1 : batch;
    key = normal([kvBatch, hkv, kvLen, qkDim], dtype);
    value = normal([kvBatch, hkv, kvLen, vDim], dtype);
    if (ragged) {
      const lens = Array.from({ length: batch }, (_, b) => raggedKvLength(kvLen, b));
      kvStartLoc = startLoc(lens);
      key = pack(key, lens);
      value = pack(value, lens);
    } else {
      key = dense("key", key);
      value = dense("value", value);
    }
  }

  const buffers: Record<string, Tensor> = {};
  for (const b of graph.buffers) {
    const shape = [...b.shape];
    const n = shape.reduce((x, y) => x * y, 1);
    if (b.dtype === "float32") {
      buffers[b.name] = normal(shape, "float32", 0.5);
    } else if (b.dtype === "bool") {
      buffers[b.name] = tensor("bool", shape, Uint8Array.from({ length: n }, () => (r.float() < 0.5 ? 1 : 0)));
    } else {
      const values = Array.from({ length: n }, () => r.int(0, 4));
      if (shape.length === 1) values.sort((x, y) => x - y);
      buffers[b.name] = b.dtype === "int32"
        ? tensor("int32", shape, Int32Array.from(values))
        : tensor("int64", shape, BigInt64Array.from(values.map(BigInt)));
    }
  }
  const scales = quantized(graph, { key, value });
  if (scales) ({ key, value } = scales);
  return {
    query,
    key,
    value,
    buffers,
    pageTable,
    seqLens,
    ...(qStartLoc ? { qStartLoc } : {}),
    ...(kvStartLoc ? { kvStartLoc } : {}),
    ...(scales ? { keyScale: scales.keyScale, valueScale: scales.valueScale } : {}),
  };
}

/**
 * A quantized spec's key and value: the generated values quantized as quantizeKv does, int8 with a scale per token and
 * kv head, fp8 with the kv-head scales 0.5 + h / 4 (as the standalone harness draws them). Generated 8-bit caches are
 * laid out bhsd, unpacked.
 */
function quantized(graph: AttentionGraph, kv: { key: Tensor; value: Tensor }): { key: Tensor; value: Tensor; keyScale: Tensor; valueScale: Tensor } | undefined {
  const dtype = graph.key.dtype;
  if (!isQuantized(dtype)) return undefined;
  const hkv = graph.key.shape[1];
  const options = dtype === "int8" ? {} : { scale: Array.from({ length: hkv }, (_, h) => 0.5 + h / 4) };
  // Quantized in logical order (quantizeKv reads views), the codes then stored in the tensor's layout: a bshd spec
  // gets its bhsd twin's codes, and its scales, which stay plain ([B, Hkv, L], a pool [numPages, Hkv, pageSize],
  // packed [totalKv, Hkv]) in every layout.
  const layout = isPacked(graph, "key") ? "bhsd" : layoutOf(graph, "key");
  const k = quantizeKv(kv.key, dtype, options);
  const v = quantizeKv(kv.value, dtype, options);
  return { key: storedAs(k.codes, layout), value: storedAs(v.codes, layout), keyScale: k.scale, valueScale: v.scale };
}

/** int32 [B + 1] running sums of the sequences' lengths, from 0. */
function startLoc(lengths: readonly number[]): Tensor {
  const loc = new Int32Array(lengths.length + 1);
  lengths.forEach((n, b) => (loc[b + 1] = loc[b] + n));
  return tensor("int32", [loc.length], loc);
}

/** Sequence b's first lengths[b] rows of a dense [B, H, L, D] tensor, packed token-major [sum(lengths), H, D]. */
function pack(t: Tensor, lengths: readonly number[]): Tensor {
  const [, heads, len, dim] = t.shape;
  const total = lengths.reduce((a, n) => a + n, 0);
  const out = tensor(t.dtype, [total, heads, dim]);
  const src = t.data as Float32Array | Uint16Array;
  const dst = out.data as Float32Array | Uint16Array;
  let row = 0;
  lengths.forEach((n, b) => {
    for (let i = 0; i < n; i++, row++) {
      for (let h = 0; h < heads; h++) {
        const from = ((b * heads + h) * len + i) * dim;
        dst.set(src.subarray(from, from + dim), (row * heads + h) * dim);
      }
    }
  });
  return out;
}
