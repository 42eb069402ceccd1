import { MD_ABI_VERSION } from "../../src/runtime/nativeLibrary.js";
import { beforeAll, describe, expect, it } from "vitest";
import { buildKernel, type KernelConfig } from "./harness/buildKernel.js";
import { expectAttention } from "./harness/compare.js";
import { alibiCausalMods, causalMods, identityMods, type Mods, softcapShiftedMods } from "./harness/mods.js";
import { argsFor, type KernelLibrary, openKernel, runAttention } from "./harness/native.js";
import { makeProblem, rng } from "./harness/problem.js";
import { type BlockMaskArrays, blockMaskFromKinds, referenceAttention, referenceBlockMask } from "./harness/reference.js";

interface Kernel {
  config: KernelConfig;
  mods: Mods;
  lib?: KernelLibrary;
}

const kernel = (config: KernelConfig, mods: Mods): Kernel => ({ config, mods });

const slopes = (hq: number) => Float32Array.from({ length: hq }, (_, h) => 2 ** -(h + 1));

const kernels = {
  /** fp32, GQA 4, D 64, square 64 blocks, alibi + causal, a scale that makes scores large enough to matter */
  alibi: kernel({ dtype: "float32", hq: 8, hkv: 2, qDim: 64, vDim: 64, blockSize: [64, 64], scale: 0.5, buffers: ["float32"] }, alibiCausalMods),
  /** bf16, GQA 4 onto one kv head, D 72, non-square blocks */
  bf16: kernel({ dtype: "bfloat16", hq: 4, hkv: 1, qDim: 72, vDim: 72, blockSize: [128, 64] }, causalMods),
  /** fp16, value dim differs from the query dim, non-square blocks the other way, a negative scale */
  fp16: kernel({ dtype: "float16", hq: 8, hkv: 2, qDim: 64, vDim: 72, blockSize: [64, 128], scale: -0.25 }, identityMods),
  /** fp32, D 72 -> V 64, small blocks, score_mod on full blocks, rows masked out entirely depending on b and h */
  softcap: kernel({ dtype: "float32", hq: 4, hkv: 2, qDim: 72, vDim: 64, blockSize: [32, 32] }, softcapShiftedMods),
};

beforeAll(async () => {
  await Promise.all(
    Object.values(kernels).map(async (k) => {
      // Split as compile() builds them: the engine calls these hand-written mods through md_args.mods.
      k.lib = openKernel(await buildKernel(k.config, k.mods.cpp, undefined, { split: true }));
    }),
  );
});

const ENTRIES = ["md_flash_attention", "md_naive_attention", "md_flash_decoding"] as const;

/**
 * Every entry point against the double-precision reference. The naive baseline ignores the block mask by design,
 * so callers pass only exact masks (those of md_build_block_mask's semantics) here.
 */
function checkAll(k: Kernel, p: ReturnType<typeof makeProblem>, mask: BlockMaskArrays | undefined, what: string): void {
  const want = referenceAttention(k.config, p, k.mods, mask);
  for (const entry of ENTRIES)
    expectAttention(runAttention(k.lib!, entry, k.config, p, { mask }), want, k.config.dtype, `${what} ${entry}`);
}

describe("flash attention numerics", () => {
  const lengths: Array<[number, number]> = [[1, 1], [17, 17], [129, 129], [17, 129], [129, 17]];

  for (const [lq, lkv] of lengths) {
    it(`fp32 GQA alibi+causal Lq=${lq} Lkv=${lkv}, dense and block-sparse`, () => {
      const k = kernels.alibi;
      const p = makeProblem(k.config, { batch: 2, qLen: lq, kvLen: lkv, seed: lq * 1000 + lkv, buffers: [slopes(8)] });
      checkAll(k, p, undefined, "no mask");
      checkAll(k, p, referenceBlockMask(k.config, p, k.mods, { maskBatch: 1, maskHeads: 1 }), "causal mask");
    });
  }

  it("bf16, D 72, GQA onto one kv head, non-square blocks, odd lengths", () => {
    const k = kernels.bf16;
    for (const [lq, lkv] of [[129, 129], [17, 200], [1, 65]]) {
      const p = makeProblem(k.config, { batch: 2, qLen: lq, kvLen: lkv, seed: lq + lkv });
      checkAll(k, p, undefined, `bf16 ${lq}x${lkv}`);
      checkAll(k, p, referenceBlockMask(k.config, p, k.mods, { maskBatch: 1, maskHeads: 1 }), `bf16 ${lq}x${lkv} mask`);
    }
  });

  it("fp16 with V_DIM != Q_DIM under a random sparse mask with empty rows (zeros, lse = -inf)", () => {
    const k = kernels.fp16;
    const p = makeProblem(k.config, { batch: 2, qLen: 129, kvLen: 300, seed: 7 });
    const next = rng(11);
    const mask = blockMaskFromKinds({ maskBatch: 2, maskHeads: 8, qBlocks: 3, kvBlocks: 3 }, (row) =>
      row % 5 === 0 ? "absent" : (["absent", "partial", "full"] as const)[Math.floor(next() * 3)],
    );
    const want = referenceAttention(k.config, p, k.mods, mask);
    expect(Array.from(want.lse).filter((x) => x === -Infinity).length).toBeGreaterThan(100);
    for (const entry of ["md_flash_attention", "md_flash_decoding"] as const)
      expectAttention(runAttention(k.lib!, entry, k.config, p, { mask }), want, "float16", entry);
    const got = runAttention(k.lib!, "md_flash_attention", k.config, p, { mask });
    const emptyRow = Array.from(want.lse).indexOf(-Infinity);
    expect(Array.from(got.out.subarray(emptyRow * 72, (emptyRow + 1) * 72))).toEqual(Array(72).fill(0));
  });

  it("score_mod on full blocks, per-(b, h) masks and fully masked rows", () => {
    const k = kernels.softcap;
    const p = makeProblem(k.config, { batch: 2, qLen: 70, kvLen: 70, seed: 3 });
    const want = referenceAttention(k.config, p, k.mods);
    expect(want.lse[0]).toBe(-Infinity); // b = 0, h = 0, q = 0 sees nothing
    checkAll(k, p, undefined, "softcap");
    const mask = referenceBlockMask(k.config, p, k.mods, { maskBatch: 2, maskHeads: 4 });
    expect(Array.from(mask.fullKvNumBlocks!).some((n) => n > 0)).toBe(true);
    checkAll(k, p, mask, "softcap per-head mask");
  });

  it("full blocks skip mask_mod (a block listed as full is attended entirely)", () => {
    const k = kernels.softcap;
    const p = makeProblem(k.config, { batch: 1, qLen: 64, kvLen: 64, seed: 5 });
    const exact = referenceBlockMask(k.config, p, k.mods, { maskBatch: 1, maskHeads: 1 });
    const allFull = blockMaskFromKinds(exact, () => "full");
    const want = referenceAttention(k.config, p, k.mods, allFull);
    const masked = referenceAttention(k.config, p, k.mods, exact);
    expect(want.lse[0]).not.toBe(masked.lse[0]);
    expectAttention(runAttention(k.lib!, "md_flash_attention", k.config, p, { mask: allFull }), want, "float32", "all full");
  });

  it("an empty kv sequence gives zeros and lse = -inf from every entry point", () => {
    const k = kernels.bf16;
    const p = makeProblem(k.config, { batch: 2, qLen: 3, kvLen: 0, seed: 1 });
    for (const entry of ENTRIES) {
      const got = runAttention(k.lib!, entry, k.config, p);
      expect(got.status).toBe(0);
      expect(Array.from(got.out).every((x) => x === 0)).toBe(true);
      expect(Array.from(got.lse).every((x) => x === -Infinity)).toBe(true);
    }
  });

  it("gives the same result with one thread and with the default", () => {
    const k = kernels.alibi;
    const p = makeProblem(k.config, { batch: 1, qLen: 129, kvLen: 129, seed: 9, buffers: [slopes(8)] });
    const one = runAttention(k.lib!, "md_flash_attention", k.config, p, { numThreads: 1 });
    const all = runAttention(k.lib!, "md_flash_attention", k.config, p);
    expect(Array.from(all.out)).toEqual(Array.from(one.out));
    expect(Array.from(all.lse)).toEqual(Array.from(one.lse));
  });
});

describe("flash attention statuses", () => {
  it("reports an out-of-range buffer load from a mod as status 1 and still finishes", () => {
    const k = kernels.alibi;
    const p = makeProblem(k.config, { batch: 1, qLen: 5, kvLen: 5, seed: 1, buffers: [slopes(8)] });
    p.bufferDims[0] = 2n; // heads 2..7 index past the declared size
    const got = runAttention(k.lib!, "md_flash_attention", k.config, p);
    expect(got.status).toBe(1);
    expect(Number.isFinite(got.out[0])).toBe(true);
  });

  it("rejects impossible arguments with status 2 instead of faulting", () => {
    const k = kernels.alibi;
    const p = makeProblem(k.config, { batch: 1, qLen: 65, kvLen: 65, seed: 1, buffers: [slopes(8)] });
    const exact = referenceBlockMask(k.config, p, k.mods, { maskBatch: 1, maskHeads: 1 });
    const badHeads = { ...exact, maskHeads: 3 };
    expect(runAttention(k.lib!, "md_flash_attention", k.config, p, { mask: badHeads }).status).toBe(2);
    const badIndex = { ...exact, kvIndices: exact.kvIndices.map(() => 1 << 20) };
    expect(runAttention(k.lib!, "md_flash_attention", k.config, p, { mask: badIndex }).status).toBe(2);
    const badQBlocks = { ...exact, qBlocks: 1 };
    expect(runAttention(k.lib!, "md_flash_attention", k.config, p, { mask: badQBlocks }).status).toBe(2);
    const out = new Float32Array(65 * 8 * 64);
    expect(k.lib!.call("md_flash_attention", argsFor(p, { out, batch: -1 }))).toBe(2);
    expect(k.lib!.call("md_flash_attention", argsFor(p, { out: null }))).toBe(2);
  });

  it("exports the ABI version", () => {
    expect(kernels.alibi.lib!.abiVersion()).toBe(MD_ABI_VERSION);
  });
});
