import { beforeAll, describe, expect, it } from "vitest";
import { alibiOffsetCausalMods, causalMods, identityMods, softcapShiftedMods } from "./harness/mods.js";
import { argsFor } from "./harness/native.js";
import { makeProblem, type Problem } from "./harness/problem.js";
import { type BlockMaskArrays, referenceBlockMask } from "./harness/reference.js";
import { openKernels, type TestKernel, testKernel } from "./harness/testKernels.js";


const kernels = {
  causal: testKernel({ dtype: "float32", hq: 4, hkv: 2, qDim: 16, vDim: 16, blockSize: [32, 32] }, causalMods),
  causalNonSquare: testKernel({ dtype: "float32", hq: 2, hkv: 2, qDim: 16, vDim: 16, blockSize: [16, 48] }, causalMods),
  perHead: testKernel({ dtype: "float32", hq: 4, hkv: 2, qDim: 16, vDim: 16, blockSize: [8, 8] }, softcapShiftedMods),
  unmasked: testKernel({ dtype: "float32", hq: 2, hkv: 1, qDim: 16, vDim: 16, blockSize: [16, 16] }, identityMods),
  paged: testKernel(
    { dtype: "float32", hq: 2, hkv: 1, qDim: 16, vDim: 16, blockSize: [8, 16], pageSize: 8, buffers: ["float32", "int64"] },
    alibiOffsetCausalMods,
  ),
};

beforeAll(() => openKernels(kernels));

/** Run md_build_block_mask into arrays prefilled with garbage, shaped like the reference. */
function build(k: TestKernel, p: Problem, shape: BlockMaskArrays, withFull = true): { status: number; mask: BlockMaskArrays } {
  const rows = shape.maskBatch * shape.maskHeads * shape.qBlocks;
  const mask: BlockMaskArrays = {
    ...shape,
    kvNumBlocks: new Int32Array(rows).fill(-7),
    kvIndices: new Int32Array(rows * shape.kvBlocks).fill(-7),
    fullKvNumBlocks: withFull ? new Int32Array(rows).fill(-7) : null,
    fullKvIndices: withFull ? new Int32Array(rows * shape.kvBlocks).fill(-7) : null,
  };
  const status = k.lib!.call(
    "md_build_block_mask",
    argsFor(p, {
      kv_num_blocks: mask.kvNumBlocks,
      kv_indices: mask.kvIndices,
      full_kv_num_blocks: mask.fullKvNumBlocks,
      full_kv_indices: mask.fullKvIndices,
      mask_batch: shape.maskBatch,
      mask_heads: shape.maskHeads,
      q_blocks: shape.qBlocks,
      kv_blocks: shape.kvBlocks,
    }),
  );
  return { status, mask };
}

function expectSameMask(got: BlockMaskArrays, want: BlockMaskArrays): void {
  expect(Array.from(got.kvNumBlocks)).toEqual(Array.from(want.kvNumBlocks));
  expect(Array.from(got.kvIndices)).toEqual(Array.from(want.kvIndices));
  expect(got.fullKvNumBlocks && Array.from(got.fullKvNumBlocks)).toEqual(want.fullKvNumBlocks && Array.from(want.fullKvNumBlocks));
  expect(got.fullKvIndices && Array.from(got.fullKvIndices)).toEqual(want.fullKvIndices && Array.from(want.fullKvIndices));
}

describe("md_build_block_mask", () => {
  it("causal: blocks below the diagonal full, on it partial, above absent, in PyTorch's layout", () => {
    const k = kernels.causal;
    const p = makeProblem(k.config, { batch: 1, qLen: 128, kvLen: 128, seed: 1 });
    const want = referenceBlockMask(k.config, p, k.mods, { maskBatch: 1, maskHeads: 1 });
    const { status, mask } = build(k, p, want);
    expect(status).toBe(0);
    expectSameMask(mask, want);
    // spelled out for q block 2 of 4: blocks 0, 1 full; 2 partial; 3 absent
    expect(mask.kvNumBlocks[2]).toBe(1);
    expect(Array.from(mask.kvIndices.subarray(8, 12))).toEqual([2, 0, 1, 3]);
    expect(mask.fullKvNumBlocks![2]).toBe(2);
    expect(Array.from(mask.fullKvIndices!.subarray(8, 12))).toEqual([0, 1, 2, 3]);
  });

  it("classifies by in-range positions only (tails of odd lengths, non-square blocks)", () => {
    const k = kernels.causalNonSquare;
    for (const [lq, lkv] of [[17, 17], [129, 100], [1, 50], [50, 1]]) {
      const p = makeProblem(k.config, { batch: 1, qLen: lq, kvLen: lkv, seed: 1 });
      const want = referenceBlockMask(k.config, p, k.mods, { maskBatch: 1, maskHeads: 1 });
      const { status, mask } = build(k, p, want);
      expect(status).toBe(0);
      expectSameMask(mask, want);
    }
  });

  it("evaluates per batch and head when the mask is not broadcast, and folds full into partial without full arrays", () => {
    const k = kernels.perHead;
    const p = makeProblem(k.config, { batch: 2, qLen: 20, kvLen: 20, seed: 1 });
    const want = referenceBlockMask(k.config, p, k.mods, { maskBatch: 2, maskHeads: 4 });
    const fullOfHead = (h: number) => Array.from(want.fullKvNumBlocks!.subarray(h * want.qBlocks, (h + 1) * want.qBlocks));
    expect(fullOfHead(3)).not.toEqual(fullOfHead(0)); // the diagonal moves with h
    expectSameMask(build(k, p, want).mask, want);
    const wantNoFull = referenceBlockMask(k.config, p, k.mods, { maskBatch: 2, maskHeads: 4, withFull: false });
    expectSameMask(build(k, p, wantNoFull, false).mask, wantNoFull);
  });

  it("marks every in-range block full for a constant-true mask", () => {
    const k = kernels.unmasked;
    const p = makeProblem(k.config, { batch: 1, qLen: 40, kvLen: 33, seed: 1 });
    const want = referenceBlockMask(k.config, p, k.mods, { maskBatch: 1, maskHeads: 2 });
    expect(Array.from(want.fullKvNumBlocks!)).toEqual([3, 3, 3, 3, 3, 3]);
    expectSameMask(build(k, p, want).mask, want);
  });

  it("paged: uses each sequence's length, or kv_len for a mask shared by the batch", () => {
    const k = kernels.paged;
    const seqLens = [5, 40, 17];
    const offsets = BigInt64Array.from(seqLens, (len) => BigInt(len - 9));
    const slopes = Float32Array.of(0.5, 0.25);
    const p = makeProblem(k.config, { batch: 3, qLen: 9, kvLen: 40, seqLens, seed: 1, buffers: [slopes, offsets] });
    const perSequence = referenceBlockMask(k.config, p, k.mods, { maskBatch: 3, maskHeads: 1 });
    expectSameMask(build(k, p, perSequence).mask, perSequence);
    const shared = referenceBlockMask(k.config, p, k.mods, { maskBatch: 1, maskHeads: 2 });
    expectSameMask(build(k, p, shared).mask, shared);
  });

  it("rejects a mask shape that does not broadcast with status 2", () => {
    const k = kernels.causal;
    const p = makeProblem(k.config, { batch: 2, qLen: 64, kvLen: 64, seed: 1 });
    const want = referenceBlockMask(k.config, p, k.mods, { maskBatch: 1, maskHeads: 1 });
    expect(build(k, p, { ...want, maskHeads: 3 }).status).toBe(2);
    expect(build(k, p, { ...want, maskBatch: 3 }).status).toBe(2);
  });
});
