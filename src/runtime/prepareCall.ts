/**
 * Turns validated inputs into the `md_args` of one call. The args object holds the typed arrays themselves,
 * so they stay alive (and koffi passes them by pointer) for as long as the call is pending.
 */
import type { AttentionGraph } from "../ir/graph.js";
import type { BlockMask } from "./blockMask.js";
import type { NativeArgs } from "./nativeLibrary.js";
import { type ResolvedRunOptions, type RunOptions, type RunTemplate, resolveRunOptions } from "./runOptions.js";
import { InputError } from "./errors.js";
import { type DType, type Tensor, type TensorData, tensor } from "./tensor.js";
import { type CallShape, type CheckedTensor, type KernelInputs, checkTensor, validateCallMask, validateInputs } from "./validateInputs.js";
import { stridesOf, viewSpan } from "./view.js";

export interface KernelOutputs {
  /** [B, Hq, Lq, V_DIM] in the query dtype (ragged: [totalQ, Hq, V_DIM]); the caller's `out` when it gave one. */
  out: Tensor;
  /**
   * [B, Hq, Lq] float32 natural-log logsumexp (ragged: [totalQ, Hq]; -inf for a fully masked row), when the graph
   * returns it; the caller's `lse` when it gave one.
   */
  lse?: Tensor;
}

/** Caller-owned outputs: tensors (views allowed) the kernel writes in place instead of allocating. */
export interface OutputTensors {
  out?: Tensor;
  lse?: Tensor;
}

export interface PreparedCall {
  template: RunTemplate;
  shape: CallShape;
  args: NativeArgs;
  /** The caller's or allocated here; written by the kernel. */
  outputs: KernelOutputs;
}

/**
 * Validates everything, takes or allocates the outputs and builds the `md_args` of one kernel call. `validated` is
 * what validateInputs returned for these same inputs (a caller that had to validate them first passes it, so they
 * are not checked twice); `mask` (default `inputs.blockMask`) is checked here all the same.
 */
export function prepareCall(
  graph: AttentionGraph,
  inputs: KernelInputs,
  options: RunOptions & OutputTensors = {},
  validated?: CallShape,
  mask: BlockMask | undefined = inputs.blockMask,
): PreparedCall {
  const resolved = resolveRunOptions(graph, options);
  let shape: CallShape;
  if (validated) {
    shape = validated;
    if (mask) validateCallMask(graph, shape, mask);
  } else {
    shape = validateInputs(graph, mask === inputs.blockMask ? inputs : { ...inputs, blockMask: mask });
  }
  const heads = graph.query.shape[1];
  const vDim = graph.value.shape[3];
  const dtype = graph.query.dtype;
  const rowsShape = shape.totalQ === null ? [shape.batch, heads, shape.qLen] : [shape.totalQ, heads];
  const outShape = [...rowsShape, vDim];
  const out = present(options.out)
    ? checkOutput("out", options.out, dtype, outShape)
    : { tensor: tensor(dtype, outShape), view: null };
  if (present(options.lse) && !graph.returnLse) {
    throw new InputError("lse", "lse is given but the graph does not return it (returnLse is false)");
  }
  const lse = graph.returnLse
    ? present(options.lse)
      ? checkOutput("lse", options.lse, "float32", rowsShape)
      : { tensor: tensor("float32", rowsShape), view: null }
    : undefined;
  checkOverlaps(inputs, [
    ["out", out.tensor],
    ...(lse ? [["lse", lse.tensor] as const] : []),
  ]);
  const args = encodeArgs(graph, inputs, shape, resolved, mask ?? null);
  const outView = out.view ?? checkTensor("out", out.tensor, dtype, outShape.length);
  args.out = outView.data.subarray(outView.offset);
  args.out_strides = rowStrides(outView.strides, shape.totalQ !== null);
  if (lse) {
    const lseView = lse.view ?? checkTensor("lse", lse.tensor, "float32", rowsShape.length);
    args.lse = (lseView.data as Float32Array).subarray(lseView.offset);
    args.lse_strides = rowStrides(lseView.strides, shape.totalQ !== null);
  }
  const outputs: KernelOutputs = lse ? { out: out.tensor, lse: lse.tensor } : { out: out.tensor };
  return { template: resolved.template, shape, args, outputs };
}

/** `md_args` for validated inputs, without outputs; `mask` may be one to be filled by md_build_block_mask. */
export function encodeArgs(
  graph: AttentionGraph,
  inputs: KernelInputs,
  shape: CallShape,
  options: ResolvedRunOptions,
  mask: BlockMask | null,
): NativeArgs {
  const { buffers, dims } = encodeBuffers(graph, inputs.buffers ?? {});
  const { query, key, value } = shape.views;
  return {
    batch: shape.batch,
    q_len: shape.qLen,
    kv_len: shape.kvLen,
    query: query.data,
    key: key.data,
    value: value.data,
    out: null,
    lse: null,
    page_table: shape.paged ? (inputs.pageTable!.data as Int32Array) : null,
    seq_lens: shape.paged ? (inputs.seqLens!.data as Int32Array) : null,
    max_pages_per_seq: shape.paged?.maxPagesPerSeq ?? 0,
    num_pages: shape.paged?.numPages ?? 0,
    kv_num_blocks: mask?.kvNumBlocks ?? null,
    kv_indices: mask?.kvIndices ?? null,
    full_kv_num_blocks: mask?.fullKvNumBlocks ?? null,
    full_kv_indices: mask?.fullKvIndices ?? null,
    mask_batch: mask?.batch ?? 0,
    mask_heads: mask?.heads ?? 0,
    q_blocks: mask?.qBlocks ?? 0,
    kv_blocks: mask?.kvBlocks ?? 0,
    buffers,
    buffer_dims: dims,
    partition_size: options.partitionSize,
    num_threads: options.numThreads,
    status: 0,
    mods: null,
    q_strides: query.strides,
    k_strides: key.strides,
    v_strides: value.strides,
    out_strides: [0, 0, 0],
    lse_strides: [0, 0, 0],
    q_start_loc: shape.qStartLoc,
    kv_start_loc: shape.kvStartLoc,
    k_scale: shape.scales.key?.data ?? null,
    v_scale: shape.scales.value?.data ?? null,
    k_scale_strides: shape.scales.key?.strides ?? [0, 0, 0],
    v_scale_strides: shape.scales.value?.strides ?? [0, 0, 0],
  };
}

/** Where the kernel reads or writes one tensor: the memory it is given and the strides of its three outer dims. */
export interface TensorBinding {
  buffer: ArrayBufferLike;
  byteOffset: number;
  strides: number[];
}

/** The tensors of prepared `md_args` as the kernel sees them. */
export function bindingsOf(args: NativeArgs): Record<"query" | "key" | "value" | "out" | "lse", TensorBinding | null> {
  const bind = (data: TensorData | null, strides: number[]): TensorBinding | null =>
    data ? { buffer: data.buffer, byteOffset: data.byteOffset, strides: [...strides] } : null;
  return {
    query: bind(args.query, args.q_strides),
    key: bind(args.key, args.k_strides),
    value: bind(args.value, args.v_strides),
    out: bind(args.out, args.out_strides),
    lse: bind(args.lse, args.lse_strides),
  };
}

function present<T>(value: T | undefined | null): value is T {
  return value !== undefined && value !== null;
}

/** The strides of [batch, head, row] of an output: [B, H, L(, D)] as they are, token-major [T, H(, D)] reordered. */
function rowStrides(strides: readonly number[], ragged: boolean): number[] {
  return ragged ? [0, strides[1], strides[0]] : [strides[0], strides[1], strides[2]];
}

/** A caller's output: its dtype, exact logical shape, bounds and (for out) a contiguous last dim. */
function checkOutput(field: string, t: Tensor, dtype: DType, shape: readonly number[]): { tensor: Tensor; view: CheckedTensor } {
  const view = checkTensor(field, t, dtype, shape.length, { lastContiguous: field === "out" });
  shape.forEach((dim, axis) => {
    if (view.shape[axis] !== dim) {
      throw new InputError(field, `${field}.shape [${view.shape.join(", ")}] differs from the call's [${shape.join(", ")}]`);
    }
  });
  // An output the kernel writes twice through a zero stride would race with itself.
  view.strides.forEach((stride, axis) => {
    if (stride === 0 && shape[axis] > 1) {
      throw new InputError(field, `${field}.strides[${axis}] is 0: an output element would be written more than once`);
    }
  });
  return { tensor: t, view };
}

/** Byte range [start, end) of a tensor's elements inside its ArrayBuffer, or null when it has none. */
function byteRange(t: Tensor): { buffer: ArrayBufferLike; start: number; end: number } | null {
  const span = viewSpan(t.shape, stridesOf(t), t.offset ?? 0);
  if (!span) return null;
  const size = t.data.BYTES_PER_ELEMENT;
  return { buffer: t.data.buffer, start: t.data.byteOffset + span.first * size, end: t.data.byteOffset + (span.last + 1) * size };
}

/**
 * Outputs never overlap an input or each other: compared by the byte range each view spans in its buffer, which
 * also refuses interleaved views whose elements happen not to collide.
 */
function checkOverlaps(inputs: KernelInputs, outputs: ReadonlyArray<readonly [string, Tensor]>): void {
  for (let i = 0; i < outputs.length; i++) {
    const [field, t] = outputs[i];
    // Only a tensor in the output's own ArrayBuffer can overlap it: spans are computed for those alone.
    let mine: ReturnType<typeof byteRange> | undefined;
    const against = (other: string, o: Tensor | undefined): void => {
      if (!o || o.data.buffer !== t.data.buffer) return;
      mine ??= byteRange(t);
      const theirs = byteRange(o);
      if (mine && theirs && theirs.start < mine.end && mine.start < theirs.end) {
        throw new InputError(field, `${field} overlaps ${other} (the same memory); outputs must not overlap inputs or each other`);
      }
    };
    for (const name of INPUT_TENSORS) against(name, inputs[name]);
    for (const name in inputs.buffers) against(`buffers.${name}`, inputs.buffers[name]);
    for (let j = 0; j < i; j++) against(outputs[j][0], outputs[j][1]);
  }
}

/** The inputs an output must not overlap, besides the captured buffers. */
const INPUT_TENSORS = ["query", "key", "value", "pageTable", "seqLens", "qStartLoc", "kvStartLoc", "keyScale", "valueScale"] as const;

/** Buffer pointers in declaration order and their dims as [n][2], unused trailing dims 1. */
function encodeBuffers(
  graph: AttentionGraph,
  given: Record<string, Tensor>,
): { buffers: TensorData[] | null; dims: BigInt64Array | null } {
  if (graph.buffers.length === 0) return { buffers: null, dims: null };
  const dims = new BigInt64Array(graph.buffers.length * 2).fill(1n);
  const buffers = graph.buffers.map((spec, i) => {
    const t = given[spec.name];
    t.shape.forEach((dim, axis) => {
      dims[i * 2 + axis] = BigInt(dim);
    });
    return t.data;
  });
  return { buffers, dims };
}
