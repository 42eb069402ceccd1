/** Builds a block mask natively: `md_build_block_mask` evaluates mask_mod per block of the call's grid. */
import type { AttentionGraph } from "../ir/graph.js";
import { type BlockMask, allocateBlockMask, blocksFor, checkGeometry } from "./blockMask.js";
import { throwOnStatus } from "./errors.js";
import type { NativeArgs, NativeLibrary } from "./nativeLibrary.js";
import { encodeArgs } from "./prepareCall.js";
import { resolveRunOptions } from "./runOptions.js";
import { type CallShape, type KernelInputs, validateInputs } from "./validateInputs.js";

/**
 * Mask dims to build; both default to the full size. Pass 1 when mask_mod does not read `b` (or `h`), so the
 * mask is evaluated once and broadcast.
 */
export interface BlockMaskGeometry {
  batch?: number;
  heads?: number;
}

const ENTRY = "md_build_block_mask";

/**
 * The block mask of `graph`'s mask_mod for these inputs' lengths (inputs.blockMask is ignored). `validated`: what
 * validateInputs returned for these inputs, when the caller has it.
 */
export function buildBlockMask(
  lib: NativeLibrary,
  graph: AttentionGraph,
  inputs: KernelInputs,
  geometry: BlockMaskGeometry = {},
  validated?: CallShape,
  /** A mask of the same geometry whose arrays may be overwritten (md_build_block_mask writes every element). */
  reuse?: BlockMask,
): BlockMask {
  const { args, mask } = prepareBuild(graph, inputs, geometry, validated, reuse);
  throwOnStatus(lib.buildBlockMask(args), ENTRY);
  return mask;
}

/** `buildBlockMask` on a worker thread. */
export async function buildBlockMaskAsync(
  lib: NativeLibrary,
  graph: AttentionGraph,
  inputs: KernelInputs,
  geometry: BlockMaskGeometry = {},
  validated?: CallShape,
): Promise<BlockMask> {
  const { args, mask } = prepareBuild(graph, inputs, geometry, validated);
  throwOnStatus(await lib.buildBlockMaskAsync(args), ENTRY);
  return mask;
}

function prepareBuild(
  graph: AttentionGraph,
  inputs: KernelInputs,
  geometry: BlockMaskGeometry,
  validated?: CallShape,
  reuse?: BlockMask,
): { args: NativeArgs; mask: BlockMask } {
  const withoutMask = inputs.blockMask === undefined ? inputs : { ...inputs, blockMask: undefined };
  const shape = validated ?? validateInputs(graph, withoutMask);
  const [qBlockSize, kvBlockSize] = graph.blockSize;
  const heads = graph.query.shape[1];
  const dims = {
    batch: geometry.batch ?? shape.batch,
    heads: geometry.heads ?? heads,
    qBlocks: blocksFor(shape.qLen, qBlockSize),
    kvBlocks: blocksFor(shape.kvLen, kvBlockSize),
    qBlockSize,
    kvBlockSize,
  };
  // A new ArrayBuffer per build was half of a decode step's JavaScript when its mask is rebuilt every step (the
  // allocation and the collections of external memory it brings).
  const mask = reuse && sameGeometry(reuse, dims) ? reuse : allocateBlockMask(dims);
  // A zeroed mask is valid exactly when its geometry is: this checks the requested broadcast dims.
  checkGeometry(mask, { batch: shape.batch, heads, qLen: shape.qLen, kvLen: shape.kvLen, qBlockSize, kvBlockSize });
  const args = encodeArgs(graph, withoutMask, shape, resolveRunOptions(graph), mask);
  return { args, mask };
}

function sameGeometry(mask: BlockMask, dims: Pick<BlockMask, "batch" | "heads" | "qBlocks" | "kvBlocks" | "qBlockSize" | "kvBlockSize">): boolean {
  return (
    mask.batch === dims.batch && mask.heads === dims.heads && mask.qBlocks === dims.qBlocks && mask.kvBlocks === dims.kvBlocks &&
    mask.qBlockSize === dims.qBlockSize && mask.kvBlockSize === dims.kvBlockSize && mask.fullKvNumBlocks !== null
  );
}
