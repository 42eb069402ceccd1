/**
 * PyTorch's `create_block_mask` without the dense Lq x Lkv grid: interval reasoning decides most blocks at once,
 * and only the blocks it cannot decide are looked into, by halving them until intervals decide the halves or
 * they are small enough to evaluate point by point. The result is exact either way: a block is full when
 * mask_mod is true at every in-range position, partial when it is true somewhere, absent when it never is.
 */
import { type BufferValues, compileEvaluator, type EvalEnv } from "../ir/evalExpr.js";
import { freeVars, isConst, readsBuffers } from "../ir/expr.js";
import type { AttentionGraph } from "../ir/graph.js";
import { type BlockKind, type BlockRanges, compileBlockClassifier } from "../ir/intervals.js";
import { type BlockMask, allocateBlockMask, blocksFor } from "./blockMask.js";
import { InputError } from "./errors.js";

/** What a native builder (`md_build_block_mask`) needs besides the graph it was compiled from. */
export interface NativeBlockMaskRequest {
  /** The mask's own dims: 1 where it is broadcast (the mask does not read `b`, or `h`). */
  batch: number;
  heads: number;
  /** The call's batch size, query length and kv length (an upper bound of seqLens when paged). */
  batchSize: number;
  qLen: number;
  kvLen: number;
  seqLens?: Int32Array;
}

export interface CreateBlockMaskOptions {
  /** Paged: the kv length of each sequence; kv blocks entirely past it are absent. */
  seqLens?: Int32Array;
  /** Builds the mask of a buffer-reading mask_mod natively; without it the mask is evaluated in TypeScript. */
  nativeBuild?: (request: NativeBlockMaskRequest) => BlockMask;
  /** The captured buffers in declaration order, for evaluating a buffer-reading mask_mod in TypeScript. */
  buffers?: EvalEnv["buffers"];
}

/** Boxes of at most this many positions are evaluated point by point rather than halved further. */
const POINTWISE_AT_MOST = 64;

/** The block mask of `graph`'s mask_mod for a call of batch `B` over `qLen` queries and `kvLen` keys. */
export function createBlockMask(
  graph: AttentionGraph,
  B: number,
  qLen: number,
  kvLen: number,
  opts: CreateBlockMaskOptions = {},
): BlockMask {
  checkSize("batch", B);
  checkSize("qLen", qLen);
  checkSize("kvLen", kvLen);
  const { seqLens } = opts;
  if (seqLens !== undefined) checkSeqLens(seqLens, B, kvLen);
  const mask = graph.maskMod;
  const vars = freeVars(mask);
  // Per-sequence lengths make rows differ by batch even when mask_mod ignores `b`.
  const batch = vars.has("b") || seqLens !== undefined ? B : 1;
  const heads = vars.has("h") ? graph.query.shape[1] : 1;

  const usesBuffers = readsBuffers(mask);
  if (usesBuffers && opts.nativeBuild) {
    return opts.nativeBuild({ batch, heads, batchSize: B, qLen, kvLen, seqLens });
  }
  if (usesBuffers && !opts.buffers) {
    throw new InputError(
      "buffers",
      "mask_mod reads captured buffers, so createBlockMask needs either opts.nativeBuild or the buffer values in opts.buffers",
    );
  }
  const classify = isConst(mask) ? () => (mask.arg.value ? "full" : "empty") : exactClassifier(graph, opts.buffers ?? []);

  const [qBlockSize, kvBlockSize] = graph.blockSize;
  const result = allocateBlockMask({
    batch,
    heads,
    qBlocks: blocksFor(qLen, qBlockSize),
    kvBlocks: blocksFor(kvLen, kvBlockSize),
    qBlockSize,
    kvBlockSize,
  });
  const { kvBlocks } = result;
  let anyFull = false;
  for (let b = 0; b < batch; b++) {
    const kvEnd = seqLens ? seqLens[b] : kvLen;
    for (let h = 0; h < heads; h++) {
      for (let qb = 0; qb < result.qBlocks; qb++) {
        const row = (b * heads + h) * result.qBlocks + qb;
        const q: [number, number] = [qb * qBlockSize, Math.min(qLen, (qb + 1) * qBlockSize) - 1];
        const kinds: BlockKind[] = [];
        for (let kb = 0; kb < kvBlocks; kb++) {
          const kv: [number, number] = [kb * kvBlockSize, Math.min(kvEnd, (kb + 1) * kvBlockSize) - 1];
          kinds.push(kv[0] > kv[1] ? "empty" : classify({ b: [b, b], h: [h, h], q_idx: q, kv_idx: kv }));
        }
        result.kvNumBlocks[row] = writeRow(result.kvIndices, row * kvBlocks, kinds, "partial");
        result.fullKvNumBlocks![row] = writeRow(result.fullKvIndices!, row * kvBlocks, kinds, "full");
        anyFull ||= result.fullKvNumBlocks![row] > 0;
      }
    }
  }
  return anyFull ? result : { ...result, fullKvNumBlocks: null, fullKvIndices: null };
}

/**
 * Writes the blocks of `kind` ascending, then the others ascending, as PyTorch's stable argsort (and the native
 * builder) leave a row, so the whole index array is defined. Returns how many blocks are of `kind`.
 */
function writeRow(indices: Int32Array, base: number, kinds: readonly BlockKind[], kind: BlockKind): number {
  let next = base;
  kinds.forEach((k, block) => {
    if (k === kind) indices[next++] = block;
  });
  const count = next - base;
  kinds.forEach((k, block) => {
    if (k !== kind) indices[next++] = block;
  });
  return count;
}

/** Intervals first; undecided boxes are halved, and small ones evaluated at every position. */
function exactClassifier(graph: AttentionGraph, buffers: readonly BufferValues[]): (ranges: BlockRanges) => BlockKind {
  const byIntervals = compileBlockClassifier(graph.maskMod);
  const evaluate = compileEvaluator(graph.maskMod);
  const env: EvalEnv = { score: 0, b: 0, h: 0, q_idx: 0, kv_idx: 0, buffers };

  const pointwise = (ranges: BlockRanges): BlockKind => {
    env.b = ranges.b[0];
    env.h = ranges.h[0];
    let seenTrue = false;
    let seenFalse = false;
    for (let q = ranges.q_idx[0]; q <= ranges.q_idx[1]; q++) {
      env.q_idx = q;
      for (let kv = ranges.kv_idx[0]; kv <= ranges.kv_idx[1]; kv++) {
        env.kv_idx = kv;
        if (evaluate(env)) seenTrue = true;
        else seenFalse = true;
        if (seenTrue && seenFalse) return "partial";
      }
    }
    return seenTrue ? "full" : "empty";
  };

  const classify = (ranges: BlockRanges): BlockKind => {
    const kind = byIntervals(ranges);
    if (kind !== "partial") return kind;
    const [q0, q1] = ranges.q_idx;
    const [kv0, kv1] = ranges.kv_idx;
    if ((q1 - q0 + 1) * (kv1 - kv0 + 1) <= POINTWISE_AT_MOST) return pointwise(ranges);
    const [first, second] = splitLonger(ranges);
    const a = classify(first);
    if (a === "partial") return "partial";
    return classify(second) === a ? a : "partial";
  };
  return classify;
}

/** Halves the box along its longer index axis. */
function splitLonger(ranges: BlockRanges): [BlockRanges, BlockRanges] {
  const axis = ranges.q_idx[1] - ranges.q_idx[0] >= ranges.kv_idx[1] - ranges.kv_idx[0] ? "q_idx" : "kv_idx";
  const [lo, hi] = ranges[axis];
  const mid = lo + Math.floor((hi - lo) / 2);
  return [
    { ...ranges, [axis]: [lo, mid] },
    { ...ranges, [axis]: [mid + 1, hi] },
  ];
}

function checkSize(field: string, value: number): void {
  if (!Number.isSafeInteger(value) || value < 0) {
    throw new InputError(field, `${field} = ${value} is not a non-negative integer`);
  }
}

function checkSeqLens(seqLens: Int32Array, B: number, kvLen: number): void {
  if (!(seqLens instanceof Int32Array)) throw new InputError("seqLens", "seqLens must be an Int32Array");
  if (seqLens.length !== B) {
    throw new InputError("seqLens", `seqLens has ${seqLens.length} entries, expected the batch size ${B}`);
  }
  seqLens.forEach((length, b) => {
    if (length < 0 || length > kvLen) {
      throw new InputError("seqLens", `seqLens[${b}] = ${length} is outside [0, kvLen = ${kvLen}]`);
    }
  });
}
