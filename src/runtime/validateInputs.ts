/**
 * Checks a call's tensors against the compiled graph. The kernel does no bounds checking of its own, so
 * everything it will read (shapes, page table entries, block mask indices) is validated here first.
 */
import { MAX_POSITIONS } from "../codegen/kernelAbi.js";
import type { AttentionGraph } from "../ir/graph.js";
import { type BlockMask, validateBlockMask } from "./blockMask.js";
import { InputError } from "./errors.js";
import { type DType, type Tensor, numel, typedArrayFor } from "./tensor.js";

export interface KernelInputs {
  /** [B, Hq, Lq, Q_DIM] in the graph's dtype (16-bit floats as bit patterns). */
  query: Tensor;
  /** Unpaged [B, Hkv, Lkv, Q_DIM]; paged: the pool [numPages, Hkv, pageSize, Q_DIM]. */
  key: Tensor;
  /** Like key, with V_DIM. */
  value: Tensor;
  /** By the spec's buffer name; every declared buffer is required. */
  buffers?: Record<string, Tensor>;
  /** int32 [B, maxPagesPerSeq]; required iff the graph has a kvCache. */
  pageTable?: Tensor;
  /** int32 [B]; required iff the graph has a kvCache. */
  seqLens?: Tensor;
  blockMask?: BlockMask;
}

/** The runtime sizes of a validated call. */
export interface CallShape {
  batch: number;
  qLen: number;
  /** Unpaged: Lkv. Paged: max(seqLens), the upper bound md_args.kv_len asks for. */
  kvLen: number;
  paged: { numPages: number; maxPagesPerSeq: number } | null;
}

/** Throws an InputError naming the field at fault unless `inputs` fit `graph`; returns the call's sizes. */
export function validateInputs(graph: AttentionGraph, inputs: KernelInputs): CallShape {
  const dtype = graph.query.dtype;
  const heads = graph.query.shape[1];
  const kvHeads = graph.key.shape[1];
  const qDim = graph.query.shape[3];
  const vDim = graph.value.shape[3];

  const query = checkTensor("query", inputs.query, dtype, 4);
  expectDim("query", query, 1, heads, "Hq");
  expectDim("query", query, 3, qDim, "Q_DIM");
  const [batch, , qLen] = query;

  const key = checkTensor("key", inputs.key, dtype, 4);
  const value = checkTensor("value", inputs.value, dtype, 4);
  expectDim("key", key, 1, kvHeads, "Hkv");
  expectDim("key", key, 3, qDim, "Q_DIM");
  expectDim("value", value, 1, kvHeads, "Hkv");
  expectDim("value", value, 3, vDim, "V_DIM");
  for (const axis of [0, 2]) {
    if (value[axis] !== key[axis]) {
      throw new InputError("value", `value.shape[${axis}] = ${value[axis]} differs from key.shape[${axis}] = ${key[axis]}`);
    }
  }

  checkBuffers(graph, inputs.buffers);

  let kvLen: number;
  let paged: CallShape["paged"] = null;
  if (graph.kvCache) {
    expectDim("key", key, 2, graph.kvCache.pageSize, "pageSize");
    const numPages = key[0];
    const { maxPagesPerSeq, longest } = checkPageTable(inputs, batch, numPages, graph.kvCache.pageSize);
    paged = { numPages, maxPagesPerSeq };
    kvLen = longest;
  } else {
    for (const field of ["pageTable", "seqLens"] as const) {
      if (inputs[field] !== undefined) {
        throw new InputError(field, `${field} is given but the graph has no kvCache`);
      }
    }
    if (key[0] !== batch) {
      throw new InputError("key", `key.shape[0] = ${key[0]} differs from the batch size query.shape[0] = ${batch}`);
    }
    kvLen = key[2];
  }

  if (inputs.blockMask !== undefined && inputs.blockMask !== null) {
    const [qBlockSize, kvBlockSize] = graph.blockSize;
    validateBlockMask(inputs.blockMask, { batch, heads, qLen, kvLen, qBlockSize, kvBlockSize });
  }
  for (const [name, value, field] of [["batch", batch, "query"], ["q_len", qLen, "query"], ["kv_len", kvLen, graph.kvCache ? "seqLens" : "key"]] as const) {
    if (value > MAX_POSITIONS) throw new InputError(field, `${name} = ${value} is above ${MAX_POSITIONS}, the longest the kernel indexes (int32)`);
  }
  return { batch, qLen, kvLen, paged };
}

/** Checks presence, dtype, storage, rank and element count; returns the shape. */
function checkTensor(field: string, t: Tensor | undefined, dtype: DType, rank: number): number[] {
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
  if (t.data.length !== count) {
    throw new InputError(
      field,
      `${field}.data has ${t.data.length} elements but shape [${t.shape.join(", ")}] holds ${count}`,
    );
  }
  return t.shape;
}

function expectDim(field: string, shape: number[], axis: number, expected: number, name: string): void {
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
    const shape = checkTensor(field, given[spec.name], spec.dtype, spec.shape.length);
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
  const tableShape = checkTensor("pageTable", inputs.pageTable, "int32", 2);
  if (tableShape[0] !== batch) {
    throw new InputError("pageTable", `pageTable.shape[0] = ${tableShape[0]} differs from the batch size ${batch}`);
  }
  const lensShape = checkTensor("seqLens", inputs.seqLens, "int32", 1);
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
