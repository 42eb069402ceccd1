import type { AttentionGraph } from "../ir/graph.js";
import { fromFloat64, type Tensor, tensor } from "../runtime/tensor.js";
import { rng } from "./random.js";

export interface GeneratedInputs {
  query: Tensor;
  key: Tensor;
  value: Tensor;
  buffers: Record<string, Tensor>;
  pageTable?: Tensor;
  seqLens?: Tensor;
}

export interface ShapeOverrides {
  batch?: number;
  qLen?: number;
  /** Unpaged: the key/value length. Paged: the longest sequence (others are shorter: ragged lengths). */
  kvLen?: number;
}

/**
 * Seeded random inputs for a graph, at the spec's default shapes unless overridden: q/k/v ~ N(0, 1) rounded to
 * their dtype; float buffers ~ N(0, 0.5); integer buffers sorted values in [0, 4) (so a `doc` buffer describes
 * four contiguous documents); bool buffers fair coins. A paged cache gets a shuffled page table and ragged lengths.
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
  const [, hkv, kvDim2] = graph.key.shape;
  const vDim = graph.value.shape[3];
  const batch = shapes.batch ?? qBatch;
  const qLen = shapes.qLen ?? qLenDefault;
  const dtype = graph.query.dtype;
  const query = normal([batch, hq, qLen, qkDim], dtype);

  let key: Tensor;
  let value: Tensor;
  let pageTable: Tensor | undefined;
  let seqLens: Tensor | undefined;
  if (graph.kvCache) {
    const pageSize = graph.kvCache.pageSize;
    const kvLen = shapes.kvLen ?? Math.max(1, Math.floor(graph.key.shape[0] / batch)) * pageSize;
    const maxPages = Math.ceil(kvLen / pageSize);
    const numPages = Math.max(graph.key.shape[0], batch * maxPages);
    key = normal([numPages, hkv, pageSize, qkDim], dtype);
    value = normal([numPages, hkv, pageSize, vDim], dtype);
    const order = r.shuffle(Int32Array.from({ length: numPages }, (_, i) => i));
    pageTable = tensor("int32", [batch, maxPages], Int32Array.from({ length: batch * maxPages }, (_, i) => order[i]));
    // Ragged: sequence b is shorter than the longest by a b-dependent amount (the first one is the longest).
    seqLens = tensor("int32", [batch], Int32Array.from({ length: batch }, (_, b) => kvLen - ((b * 37) % Math.max(1, Math.ceil(kvLen / 4)))));
  } else {
    const kvLen = shapes.kvLen ?? kvDim2;
    key = normal([batch, hkv, kvLen, qkDim], dtype);
    value = normal([batch, hkv, kvLen, vDim], dtype);
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
  return { query, key, value, buffers, pageTable, seqLens };
}
