import { freeVars, readsBuffers } from "./ir/expr.js";
import type { AttentionGraph } from "./ir/graph.js";
import { type BlockMask, markOwnMask } from "./runtime/blockMask.js";
import { buildBlockMask } from "./runtime/buildBlockMask.js";
import { createBlockMask } from "./runtime/createBlockMask.js";
import type { NativeLibrary } from "./runtime/nativeLibrary.js";
import { interpreterBuffers } from "./reference/referenceAttention.js";
import type { Tensor } from "./runtime/tensor.js";
import type { CallShape, KernelInputs } from "./runtime/validateInputs.js";

/**
 * The block masks `run()` builds for itself, reused while they stay valid. An index-only mask is classified by
 * intervals over whole blocks (lengths rounded up to the block sizes): a block full or empty over all its
 * positions is so over any prefix of them, and the kernel masks positions past the real lengths itself, so one
 * mask serves every call with the same numbers of blocks (a decode loop rebuilds it once per kv block, not once
 * per token). A mask that reads buffers is evaluated natively at the exact lengths (padding positions could
 * index its buffers out of range) and rebuilt when the lengths or the buffers' contents change.
 */
export class BlockMaskCache {
  /** `pinned`: the mask went to a call on a worker thread, which may still be reading it; its arrays are never refilled. */
  private entry: { key: string; buffers: Tensor["data"][]; mask: BlockMask; pinned: boolean } | undefined;
  private readonly readsBatch: boolean;
  private readonly readsBuffers: boolean;

  constructor(private readonly graph: AttentionGraph, private readonly native: NativeLibrary) {
    this.readsBatch = freeVars(graph.maskMod).has("b");
    this.readsBuffers = readsBuffers(graph.maskMod);
  }

  /**
   * The mask for a validated call, from the cache when its block counts and mask buffers are unchanged. `pin` for a
   * call that runs on a worker thread (runAsync): the mask's arrays are then never reused for a later build.
   */
  get(shape: CallShape, inputs: KernelInputs, pin = false): BlockMask {
    const [qb, kb] = this.graph.blockSize;
    const qBlocks = Math.ceil(shape.qLen / qb);
    const kvBlocks = Math.ceil(shape.kvLen / kb);
    const key = this.readsBuffers
      ? `exact/${shape.batch}/${shape.qLen}/${shape.kvLen}`
      : `blocks/${this.readsBatch ? shape.batch : 1}/${qBlocks}/${kvBlocks}`;
    const buffers = this.readsBuffers
      ? [
        ...this.graph.buffers.map((b) => inputs.buffers![b.name].data),
        ...[inputs.seqLens, inputs.qStartLoc, inputs.kvStartLoc].filter((t) => t).map((t) => t!.data),
      ]
      : [];
    const entry = this.entry;
    if (entry && entry.key === key && sameContents(entry.buffers, buffers)) {
      entry.pinned ||= pin;
      return entry.mask;
    }
    const reuse = entry && !entry.pinned ? entry.mask : undefined;
    // A build that fails half-way through a reused mask must not leave it cached under its old key.
    this.entry = undefined;
    const mask = this.readsBuffers
      ? createBlockMask(this.graph, shape.batch, shape.qLen, shape.kvLen, {
        // Paged and ragged sequences have their own lengths, so a native mask is never broadcast over the batch then.
        nativeBuild: (request) => {
          const perSequence = this.graph.kvCache || shape.qStartLoc || shape.kvStartLoc;
          return buildBlockMask(this.native, this.graph, inputs, { batch: perSequence ? shape.batch : request.batch, heads: request.heads }, shape, reuse);
        },
      })
      : createBlockMask(this.graph, shape.batch, qBlocks * qb, kvBlocks * kb);
    const kept = entry && sameLengths(entry.buffers, buffers) ? copyInto(entry.buffers, buffers) : buffers.map((d) => d.slice());
    // No caller ever holds this mask (run() passes it to the kernel only), so its calls need not check it again.
    this.entry = { key, buffers: kept, mask: markOwnMask(mask), pinned: pin };
    return mask;
  }

  /** A mask for explicit lengths (the public `createBlockMask`), evaluating buffer-reading masks in TypeScript. */
  build(batch: number, qLen: number, kvLen: number, buffers?: Record<string, Tensor>, seqLens?: Tensor): BlockMask {
    const values = buffers ? interpreterBuffers(this.graph, buffers) : undefined;
    return createBlockMask(this.graph, batch, qLen, kvLen, { buffers: values, seqLens: seqLens?.data as Int32Array | undefined });
  }
}

function sameContents(a: readonly Tensor["data"][], b: readonly Tensor["data"][]): boolean {
  if (a.length !== b.length) return false;
  for (let i = 0; i < a.length; i++) {
    const x = a[i];
    const y = b[i];
    if (x.length !== y.length) return false;
    for (let j = 0; j < x.length; j++) if (x[j] !== y[j]) return false;
  }
  return true;
}

function sameLengths(a: readonly Tensor["data"][], b: readonly Tensor["data"][]): boolean {
  return a.length === b.length && a.every((x, i) => x.length === b[i].length && x.constructor === b[i].constructor);
}

function copyInto(kept: Tensor["data"][], from: readonly Tensor["data"][]): Tensor["data"][] {
  for (let i = 0; i < kept.length; i++) (kept[i] as Int32Array).set(from[i] as Int32Array);
  return kept;
}
