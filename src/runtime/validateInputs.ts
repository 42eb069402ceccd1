/**
 * Checks a call's tensors against the compiled graph. The kernel does no bounds checking of its own, so
 * everything it will read (shapes, views' strides and offsets, ragged row starts, page table entries, block mask
 * indices) is validated here first.
 */
import { MAX_POSITIONS } from "../codegen/kernelAbi.js";
import { type AttentionGraph, isQuantized } from "../ir/graph.js";
import { type BlockMask, validateBlockMask } from "./blockMask.js";
import { BAD_SCALE_MESSAGE, InputError } from "./errors.js";
import { type DType, type Tensor, type TensorData, numel, typedArrayFor } from "./tensor.js";
import { checkViewBounds, contiguousStrides, elementIndices, stridesOf } from "./view.js";

export interface KernelInputs {
  /** [B, Hq, Lq, Q_DIM] in the graph's dtype (16-bit floats as bit patterns); ragged: [totalQ, Hq, Q_DIM]. */
  query: Tensor;
  /**
   * Unpaged [B, Hkv, Lkv, Q_DIM] (a batch of 1 broadcasts over the query's), or packed [totalKv, Hkv, Q_DIM] with
   * kvStartLoc; paged: the pool [numPages, Hkv, pageSize, Q_DIM] (a token-major pool is a permuted view).
   */
  key: Tensor;
  /** Like key, with V_DIM. */
  value: Tensor;
  /** By the spec's buffer name; every declared buffer is required. */
  buffers?: Record<string, Tensor>;
  /** int32 [B, maxPagesPerSeq]; required iff the graph has a kvCache. */
  pageTable?: Tensor;
  /** int32 [B]; required iff the graph has a kvCache. */
  seqLens?: Tensor;
  /** Ragged query: int32 [B + 1], sequence b owns query rows qStartLoc[b] .. qStartLoc[b + 1] - 1. */
  qStartLoc?: Tensor;
  /** Packed key/value (unpaged): int32 [B + 1], sequence b owns kv rows kvStartLoc[b] .. kvStartLoc[b + 1] - 1. */
  kvStartLoc?: Tensor;
  /**
   * Quantized key (int8: required, float32 shaped like key without its last dim, one scale per token and kv head;
   * fp8: optional, float32 [Hkv], default 1). A key value is scale * code.
   */
  keyScale?: Tensor;
  /** Like keyScale, for value. */
  valueScale?: Tensor;
  blockMask?: BlockMask;
}

/** A tensor as the kernel reads it: its data from the view's offset, and the strides of its three outer logical dims. */
export interface NativeView {
  data: TensorData;
  strides: [number, number, number];
}

/** The runtime sizes of a validated call. */
export interface CallShape {
  batch: number;
  /** Query rows per sequence; ragged: the longest sequence's. */
  qLen: number;
  /** Unpaged: Lkv (packed: the longest sequence's). Paged: max(seqLens), the upper bound md_args.kv_len asks for. */
  kvLen: number;
  /** The fewest query rows of a sequence that has any (qLen unless ragged). */
  minQLen: number;
  paged: { numPages: number; maxPagesPerSeq: number } | null;
  /** Ragged batches: the validated row starts, or null. */
  qStartLoc: Int32Array | null;
  kvStartLoc: Int32Array | null;
  /** Ragged: totalQ, the query's packed rows; null for a dense query. */
  totalQ: number | null;
  views: { query: NativeView; key: NativeView; value: NativeView };
  /** Quantized key/value: their scales as the kernel reads them (null: none, every scale 1). */
  scales: { key: NativeScale | null; value: NativeScale | null };
}

/** A scale tensor as the kernel reads it: its data from the view's offset and the strides of [batch, head, position]. */
export interface NativeScale {
  data: Float32Array;
  strides: [number, number, number];
}

/** Throws an InputError naming the field at fault unless `inputs` fit `graph`; returns the call's sizes. */
export function validateInputs(graph: AttentionGraph, inputs: KernelInputs): CallShape {
  const dtype = graph.query.dtype;
  const heads = graph.query.shape[1];
  const kvHeads = graph.key.shape[1];
  const qDim = graph.query.shape[3];
  const vDim = graph.value.shape[3];

  const raggedQ = present(inputs.qStartLoc);
  const query = checkTensor("query", inputs.query, dtype, raggedQ ? 3 : 4);
  let batch: number, qLen: number, minQLen: number;
  let qStartLoc: Int32Array | null = null;
  let totalQ: number | null = null;
  let queryView: NativeView;
  if (raggedQ) {
    expectDim("query", query.shape, 1, heads, "Hq");
    expectDim("query", query.shape, 2, qDim, "Q_DIM");
    totalQ = query.shape[0];
    ({ loc: qStartLoc, longest: qLen, shortest: minQLen } = checkStartLoc("qStartLoc", inputs.qStartLoc!, totalQ, "query.shape[0] (totalQ)"));
    batch = qStartLoc.length - 1;
    queryView = packedView(query);
  } else {
    expectDim("query", query.shape, 1, heads, "Hq");
    expectDim("query", query.shape, 3, qDim, "Q_DIM");
    [batch, , qLen] = query.shape;
    minQLen = qLen;
    queryView = denseView(query);
  }

  checkBuffers(graph, inputs.buffers);

  const packedKv = present(inputs.kvStartLoc);
  if (packedKv && graph.kvCache) {
    throw new InputError("kvStartLoc", "kvStartLoc is given but the graph has a kvCache: a paged call takes seqLens");
  }
  const kvDtype = graph.key.dtype;
  const key = checkTensor("key", inputs.key, kvDtype, packedKv ? 3 : 4);
  const value = checkTensor("value", inputs.value, graph.value.dtype, packedKv ? 3 : 4);
  const dimAxis = packedKv ? 2 : 3;
  expectDim("key", key.shape, 1, kvHeads, "Hkv");
  expectDim("key", key.shape, dimAxis, qDim, "Q_DIM");
  expectDim("value", value.shape, 1, kvHeads, "Hkv");
  expectDim("value", value.shape, dimAxis, vDim, "V_DIM");
  for (const axis of packedKv ? [0] : [0, 2]) {
    if (value.shape[axis] !== key.shape[axis]) {
      throw new InputError("value", `value.shape[${axis}] = ${value.shape[axis]} differs from key.shape[${axis}] = ${key.shape[axis]}`);
    }
  }

  let kvLen: number;
  let paged: CallShape["paged"] = null;
  let kvStartLoc: Int32Array | null = null;
  let keyView: NativeView, valueView: NativeView;
  if (graph.kvCache) {
    expectDim("key", key.shape, 2, graph.kvCache.pageSize, "pageSize");
    const numPages = key.shape[0];
    const { maxPagesPerSeq, longest } = checkPageTable(inputs, batch, numPages, graph.kvCache.pageSize);
    paged = { numPages, maxPagesPerSeq };
    kvLen = longest;
    keyView = denseView(key);
    valueView = denseView(value);
  } else {
    for (const field of ["pageTable", "seqLens"] as const) {
      if (present(inputs[field])) {
        throw new InputError(field, `${field} is given but the graph has no kvCache`);
      }
    }
    if (packedKv) {
      const loc = checkStartLoc("kvStartLoc", inputs.kvStartLoc!, key.shape[0], "key.shape[0] (totalKv)");
      if (loc.loc.length - 1 !== batch) {
        throw new InputError("kvStartLoc", `kvStartLoc has ${loc.loc.length - 1} sequences, the query ${batch}`);
      }
      kvStartLoc = loc.loc;
      kvLen = loc.longest;
      keyView = packedView(key);
      valueView = packedView(value);
    } else {
      if (key.shape[0] !== batch && key.shape[0] !== 1) {
        throw new InputError(
          "key",
          `key.shape[0] = ${key.shape[0]} differs from the batch size ${batch} (a key/value batch of 1 broadcasts)`,
        );
      }
      kvLen = key.shape[2];
      keyView = denseView(key, key.shape[0] === 1);
      valueView = denseView(value, value.shape[0] === 1);
    }
  }

  const scales = {
    key: checkScales(graph, "keyScale", inputs.keyScale, key, { paged: paged !== null, packed: packedKv }),
    value: checkScales(graph, "valueScale", inputs.valueScale, value, { paged: paged !== null, packed: packedKv }),
  };

  if (present(inputs.blockMask)) validateCallMask(graph, { batch, qLen, kvLen }, inputs.blockMask!);
  for (const [name, value, field] of [["batch", batch, "query"], ["q_len", qLen, "query"], ["kv_len", kvLen, graph.kvCache ? "seqLens" : "key"]] as const) {
    if (value > MAX_POSITIONS) throw new InputError(field, `${name} = ${value} is above ${MAX_POSITIONS}, the longest the kernel indexes (int32)`);
  }
  return {
    batch,
    qLen,
    kvLen,
    minQLen,
    paged,
    qStartLoc,
    kvStartLoc,
    totalQ,
    views: { query: queryView, key: keyView, value: valueView },
    scales,
  };
}

/** Throws an InputError unless `mask` covers a call of these sizes with the graph's block sizes. */
export function validateCallMask(graph: AttentionGraph, shape: Pick<CallShape, "batch" | "qLen" | "kvLen">, mask: BlockMask): void {
  const [qBlockSize, kvBlockSize] = graph.blockSize;
  validateBlockMask(mask, { batch: shape.batch, heads: graph.query.shape[1], qLen: shape.qLen, kvLen: shape.kvLen, qBlockSize, kvBlockSize });
}

/**
 * The scales of a quantized key or value (`kv`, already checked): int8 needs one per token and kv head, shaped like
 * the cache without its last dim ([B or 1, Hkv, Lkv], packed [totalKv, Hkv], a pool [numPages, Hkv, pageSize]); fp8
 * takes an optional [Hkv]. Every scale the kernel may read must be finite and non-negative.
 */
function checkScales(
  graph: AttentionGraph,
  field: "keyScale" | "valueScale",
  t: Tensor | undefined,
  kv: CheckedTensor,
  { paged, packed }: { paged: boolean; packed: boolean },
): NativeScale | null {
  const dtype = graph.key.dtype;
  if (!isQuantized(dtype)) {
    if (present(t)) throw new InputError(field, `${field} is given but key/value are ${dtype}, not quantized`);
    return null;
  }
  if (!present(t)) {
    if (dtype === "int8") throw new InputError(field, `${field} is missing: int8 key/value need one scale per token and kv head`);
    return null;
  }
  let want: number[];
  if (dtype === "int8") want = kv.shape.slice(0, -1);
  else want = [kv.shape[1]];
  const what = dtype === "int8" ? (paged ? "the pool without its last dim" : "key/value without their last dim") : "[Hkv], one per kv head";
  const wrongShape = (shape: readonly number[]) =>
    new InputError(field, `${field}.shape [${shape.join(", ")}] should be [${want.join(", ")}] (${what})`);
  if (Array.isArray(t.shape) && t.shape.length !== want.length) throw wrongShape(t.shape);
  const scale = checkTensor(field, t, "float32", want.length, { lastContiguous: false });
  if (want.some((dim, axis) => scale.shape[axis] !== dim)) throw wrongShape(scale.shape);
  checkScaleValues(field, scale);
  const [s0, s1, s2] = scale.strides;
  const data = (scale.data as Float32Array).subarray(scale.offset);
  if (dtype !== "int8") return { data, strides: [0, s0, 0] };
  if (packed) return { data, strides: [0, s1, s0] };
  return { data, strides: [!paged && scale.shape[0] === 1 ? 0 : s0, s1, s2] };
}

/**
 * A negative, infinite or NaN float32, from its bits read as an int32 (which V8 keeps as small integers, unlike
 * uint32): +inf and NaNs are words >= 0x7f800000, negatives are negative words, except -0 (INT32_MIN), which is fine.
 */
function isBadScale(w: number): boolean {
  return w >= 0x7f800000 || (w < 0 && w !== -0x80000000);
}

/** Index of the first bad word, or -1. */
function firstBadScale(words: Int32Array): number {
  const n = words.length;
  for (let i = 0; i < n; i++) if (isBadScale(words[i])) return i;
  return -1;
}

function firstBadScaleAt(words: Int32Array, indices: Float64Array): number {
  for (const at of indices) if (isBadScale(words[at])) return at;
  return -1;
}

/**
 * Scales up to this many elements are scanned here; larger ones are checked by the kernel as it reads them (status
 * 4), and only then scanned here, to name the bad one (badScaleError). The scan costs about 1.2 ns a scale, which a
 * decode loop pays per call: with 65536 as the limit, an int8 decode call (G 4, D 128, Hkv 8, 2 threads, AVX-512)
 * took 31 us at kv 256, 50 at kv 512, 169 at kv 2048 and 324 at kv 4096; with 256, 26, 41, 136-142 and 252-263 us,
 * the kernel's own check a compare per row.
 */
const SCAN_SCALES_UP_TO = 256;

/** Every element of a scale view is finite and >= 0; small views only, larger ones are checked as the kernel reads them. */
function checkScaleValues(field: string, t: CheckedTensor): void {
  if (numel(t.shape) > SCAN_SCALES_UP_TO) return;
  const bad = badScaleIn(field, t);
  if (bad) throw bad;
}

/** The InputError naming the first negative, infinite or NaN element of a scale view, or undefined. */
function badScaleIn(field: string, t: CheckedTensor): InputError | undefined {
  const data = t.data as Float32Array;
  // On the bits (a decode loop pays this per call): integer compares are several times faster than float ones here.
  const bits = new Int32Array(data.buffer, data.byteOffset, data.length);
  const plain = t.offset === 0 && data.length === numel(t.shape) && t.strides.every((s, i) => s === contiguousStrides(t.shape)[i]);
  const indices = plain ? null : elementIndices({ data, shape: t.shape, dtype: "float32", strides: t.strides, offset: t.offset });
  const bad = indices ? firstBadScaleAt(bits, indices) : firstBadScale(bits);
  return bad >= 0 ? new InputError(field, `${field} holds ${data[bad]} (data index ${bad}); scales must be finite and non-negative`) : undefined;
}

/**
 * The error of a call whose kernel read a bad scale (status 4) in a scale tensor too large to scan before it: the
 * first bad element of keyScale, else of valueScale (inputs that passed validation).
 */
export function badScaleError(inputs: KernelInputs): InputError {
  for (const field of ["keyScale", "valueScale"] as const) {
    const t = inputs[field];
    if (!present(t)) continue;
    const bad = badScaleIn(field, checkTensor(field, t, "float32", t.shape.length, { lastContiguous: false }));
    if (bad) return bad;
  }
  return new InputError("keyScale", BAD_SCALE_MESSAGE);
}

/** A tensor that passed checkTensor: its shape, strides and offset. */
export interface CheckedTensor {
  shape: number[];
  strides: number[];
  offset: number;
  data: TensorData;
}

function present<T>(value: T | undefined | null): value is T {
  return value !== undefined && value !== null;
}

/** [B, H, L, D] -> the strides of B, H, L; `broadcast` reads one batch for every sequence. */
function denseView(t: CheckedTensor, broadcast = false): NativeView {
  return { data: t.data.subarray(t.offset), strides: [broadcast ? 0 : t.strides[0], t.strides[1], t.strides[2]] };
}

/** Token-major [total, H, D] -> batch stride 0 (the start locations place each sequence), H, token. */
function packedView(t: CheckedTensor): NativeView {
  return { data: t.data.subarray(t.offset), strides: [0, t.strides[1], t.strides[0]] };
}

/** Checks int32 [B + 1] start locations: 0 first, non-decreasing, `total` last. */
function checkStartLoc(
  field: string,
  t: Tensor,
  total: number,
  totalName: string,
): { loc: Int32Array; longest: number; shortest: number } {
  const { shape } = checkTensor(field, t, "int32", 1, { plain: true });
  if (shape[0] < 1) throw new InputError(field, `${field} has no entries; it holds B + 1 row starts`);
  const loc = t.data as Int32Array;
  if (loc[0] !== 0) throw new InputError(field, `${field}[0] = ${loc[0]}, expected 0`);
  let longest = 0;
  let shortest = Infinity;
  for (let b = 0; b + 1 < loc.length; b++) {
    const rows = loc[b + 1] - loc[b];
    if (rows < 0) throw new InputError(field, `${field}[${b + 1}] = ${loc[b + 1]} is below ${field}[${b}] = ${loc[b]}; starts must not decrease`);
    longest = Math.max(longest, rows);
    if (rows > 0) shortest = Math.min(shortest, rows);
  }
  if (loc[loc.length - 1] !== total) {
    throw new InputError(field, `${field}[${loc.length - 1}] = ${loc[loc.length - 1]} must equal ${totalName} = ${total}`);
  }
  return { loc, longest, shortest: shortest === Infinity ? 0 : shortest };
}

/**
 * Checks presence, dtype, storage, rank and that every element of the view lies inside its data; a tensor without
 * strides or offset must hold exactly its elements. `lastContiguous`: the last dim has stride 1 (q, k, v, out);
 * `plain`: no view at all (index arrays).
 */
export function checkTensor(
  field: string,
  t: Tensor | undefined,
  dtype: DType,
  rank: number,
  { lastContiguous = rank >= 3, plain = false }: { lastContiguous?: boolean; plain?: boolean } = {},
): CheckedTensor {
  if (t === undefined || t === null) throw new InputError(field, `${field} is missing`);
  if (t.dtype !== dtype) {
    throw new InputError(field, `${field}.dtype is '${t.dtype}', expected '${dtype}'`);
  }
  const storage = typedArrayFor(dtype);
  if (!(t.data instanceof storage)) {
    throw new InputError(field, `${field}.data is a ${describe(t.data)}; ${dtype} data is stored in a ${storage.name}`);
  }
  if (!Array.isArray(t.shape) || t.shape.length !== rank) {
    throw new InputError(field, `${field}.shape [${String(t.shape)}] has rank ${t.shape?.length}, expected ${rank}`);
  }
  t.shape.forEach((dim, axis) => {
    if (!Number.isSafeInteger(dim) || dim < 0) {
      throw new InputError(field, `${field}.shape[${axis}] = ${dim} is not a non-negative integer`);
    }
  });
  let count: number;
  try {
    count = numel(t.shape);
  } catch (error) {
    throw new InputError(field, `${field}.shape [${t.shape.join(", ")}] is too large: ${(error as Error).message}`);
  }
  const isView = present(t.strides) || present(t.offset);
  if (!isView) {
    if (t.data.length !== count) {
      throw new InputError(
        field,
        `${field}.data has ${t.data.length} elements but shape [${t.shape.join(", ")}] holds ${count}`,
      );
    }
    return { shape: t.shape, strides: contiguousStrides(t.shape), offset: 0, data: t.data };
  }
  if (plain) throw new InputError(field, `${field} must be a contiguous tensor, not a view (strides/offset given)`);
  if (present(t.strides) && !Array.isArray(t.strides)) {
    throw new InputError(field, `${field}.strides must be an array of ${rank} integers`);
  }
  const strides = stridesOf(t);
  const offset = t.offset ?? 0;
  try {
    checkViewBounds(t.shape, strides, offset, t.data.length);
  } catch (error) {
    throw new InputError(field, `${field}: ${(error as Error).message}`);
  }
  if (lastContiguous && t.shape[rank - 1] > 1 && strides[rank - 1] !== 1) {
    throw new InputError(
      field,
      `${field}.strides[${rank - 1}] = ${strides[rank - 1]}: the last dim must be contiguous (stride 1)`,
    );
  }
  return { shape: t.shape, strides, offset, data: t.data };
}

function expectDim(field: string, shape: readonly number[], axis: number, expected: number, name: string): void {
  if (shape[axis] !== expected) {
    throw new InputError(field, `${field}.shape[${axis}] = ${shape[axis]} but the graph has ${name} = ${expected}`);
  }
}

function checkBuffers(graph: AttentionGraph, buffers: Record<string, Tensor> | undefined): void {
  const given = buffers ?? {};
  const declared = new Set(graph.buffers.map((b) => b.name));
  for (const name of Object.keys(given)) {
    if (!declared.has(name)) {
      const known = declared.size > 0 ? [...declared].join(", ") : "none";
      throw new InputError(`buffers.${name}`, `buffers.${name} is not declared by the graph (declared: ${known})`);
    }
  }
  for (const spec of graph.buffers) {
    const field = `buffers.${spec.name}`;
    if (!Object.hasOwn(given, spec.name)) {
      throw new InputError(field, `${field} is missing (the graph declares it as ${spec.dtype} of rank ${spec.shape.length})`);
    }
    if (spec.shape.length > 2) {
      throw new InputError(field, `${field} has rank ${spec.shape.length}; the kernel ABI carries at most 2 dims`);
    }
    const { shape } = checkTensor(field, given[spec.name], spec.dtype, spec.shape.length, { plain: true });
    shape.forEach((dim, axis) => {
      if (dim === 0) throw new InputError(field, `${field}.shape[${axis}] is 0; buffers must not be empty`);
    });
  }
}

/** Checks pageTable and seqLens, including every page a position below its sequence's length reads. */
function checkPageTable(
  inputs: KernelInputs,
  batch: number,
  numPages: number,
  pageSize: number,
): { maxPagesPerSeq: number; longest: number } {
  const tableShape = checkTensor("pageTable", inputs.pageTable, "int32", 2, { plain: true }).shape;
  if (tableShape[0] !== batch) {
    throw new InputError("pageTable", `pageTable.shape[0] = ${tableShape[0]} differs from the batch size ${batch}`);
  }
  const lensShape = checkTensor("seqLens", inputs.seqLens, "int32", 1, { plain: true }).shape;
  if (lensShape[0] !== batch) {
    throw new InputError("seqLens", `seqLens.shape[0] = ${lensShape[0]} differs from the batch size ${batch}`);
  }
  const maxPagesPerSeq = tableShape[1];
  const capacity = maxPagesPerSeq * pageSize;
  const table = inputs.pageTable!.data as Int32Array;
  const lens = inputs.seqLens!.data as Int32Array;
  let longest = 0;
  for (let b = 0; b < batch; b++) {
    const len = lens[b];
    if (len < 0 || len > capacity) {
      throw new InputError(
        "seqLens",
        `seqLens[${b}] = ${len} is outside [0, ${capacity}] (maxPagesPerSeq ${maxPagesPerSeq} * pageSize ${pageSize})`,
      );
    }
    longest = Math.max(longest, len);
    // Entries past the sequence's last page are never read, so they may hold anything (e.g. -1).
    const pagesUsed = Math.ceil(len / pageSize);
    for (let p = 0; p < pagesUsed; p++) {
      const page = table[b * maxPagesPerSeq + p];
      if (page < 0 || page >= numPages) {
        throw new InputError(
          "pageTable",
          `pageTable[${b}][${p}] = ${page} is not a page of the pool (numPages = ${numPages})`,
        );
      }
    }
  }
  return { maxPagesPerSeq, longest };
}

function describe(value: unknown): string {
  if (value === null || value === undefined) return String(value);
  return (value as object).constructor?.name ?? typeof value;
}
