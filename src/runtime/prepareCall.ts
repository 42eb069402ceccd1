/**
 * Turns validated inputs into the `md_args` of one call. The args object holds the typed arrays themselves,
 * so they stay alive (and koffi passes them by pointer) for as long as the call is pending.
 */
import type { AttentionGraph } from "../ir/graph.js";
import type { BlockMask } from "./blockMask.js";
import type { NativeArgs } from "./nativeLibrary.js";
import { type ResolvedRunOptions, type RunOptions, type RunTemplate, resolveRunOptions } from "./runOptions.js";
import { type Tensor, type TensorData, typedArrayFor } from "./tensor.js";
import { type CallShape, type KernelInputs, validateInputs } from "./validateInputs.js";

export interface KernelOutputs {
  /** [B, Hq, Lq, V_DIM] in the query dtype. */
  out: Tensor;
  /** [B, Hq, Lq] float32 natural-log logsumexp (-inf for a fully masked row), when the graph returns it. */
  lse?: Tensor;
}

export interface PreparedCall {
  template: RunTemplate;
  shape: CallShape;
  args: NativeArgs;
  /** Allocated here, written by the kernel. */
  outputs: KernelOutputs;
}

/** Validates everything, allocates the outputs and builds the `md_args` of one kernel call. */
export function prepareCall(graph: AttentionGraph, inputs: KernelInputs, options: RunOptions = {}): PreparedCall {
  const resolved = resolveRunOptions(graph, options);
  const shape = validateInputs(graph, inputs);
  const heads = graph.query.shape[1];
  const rows = shape.batch * heads * shape.qLen;
  const dtype = graph.query.dtype;
  const out: Tensor = {
    dtype,
    shape: [shape.batch, heads, shape.qLen, graph.value.shape[3]],
    data: new (typedArrayFor(dtype))(rows * graph.value.shape[3]),
  };
  const lse: Tensor | undefined = graph.returnLse
    ? { dtype: "float32", shape: [shape.batch, heads, shape.qLen], data: new Float32Array(rows) }
    : undefined;
  const args = encodeArgs(graph, inputs, shape, resolved, inputs.blockMask ?? null);
  args.out = out.data;
  args.lse = (lse?.data as Float32Array | undefined) ?? null;
  return { template: resolved.template, shape, args, outputs: lse ? { out, lse } : { out } };
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
  return {
    batch: shape.batch,
    q_len: shape.qLen,
    kv_len: shape.kvLen,
    query: inputs.query.data,
    key: inputs.key.data,
    value: inputs.value.data,
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
  };
}

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
