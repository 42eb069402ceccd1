import { beforeAll, describe, expect, it } from "vitest";
import { expectAttention } from "./harness/compare.js";
import { alibiOffsetCausalMods, identityMods } from "./harness/mods.js";
import { runAttention } from "./harness/native.js";
import { makeProblem } from "./harness/problem.js";
import { referenceAttention, referenceBlockMask } from "./harness/reference.js";
import { openKernels, testKernel } from "./harness/testKernels.js";


const kernels = {
  /** bf16 pages smaller than a kv block, decode-style causal mask at absolute positions, alibi */
  smallPages: testKernel(
    { dtype: "bfloat16", hq: 8, hkv: 2, qDim: 64, vDim: 64, blockSize: [32, 64], pageSize: 16, buffers: ["float32", "int64"] },
    alibiOffsetCausalMods,
  ),
  /** fp32 pages larger than a kv block, no mods */
  largePages: testKernel({ dtype: "float32", hq: 4, hkv: 4, qDim: 72, vDim: 72, blockSize: [32, 32], pageSize: 64 }, identityMods),
};

beforeAll(() => openKernels(kernels));

const ENTRIES = ["md_flash_attention", "md_naive_attention", "md_flash_decoding"] as const;

describe("paged KV cache", () => {
  it("reads shuffled pages through the page table with ragged seq_lens (an empty sequence gives -inf rows)", () => {
    const k = kernels.smallPages;
    const seqLens = [0, 37, 129, 64];
    for (const qLen of [1, 17]) {
      const offsets = BigInt64Array.from(seqLens, (len) => BigInt(len - qLen));
      const slopes = Float32Array.from({ length: 8 }, (_, h) => 2 ** -(h + 1));
      const p = makeProblem(k.config, { batch: 4, qLen, kvLen: 129, seqLens, seed: qLen, buffers: [slopes, offsets] });
      const want = referenceAttention(k.config, p, k.mods);
      expect(want.lse[0]).toBe(-Infinity);
      const mask = referenceBlockMask(k.config, p, k.mods, { maskBatch: 4, maskHeads: 1 });
      const wantMasked = referenceAttention(k.config, p, k.mods, mask);
      for (const entry of ENTRIES) {
        expectAttention(runAttention(k.lib!, entry, k.config, p), want, "bfloat16", `q_len ${qLen} ${entry}`);
        expectAttention(runAttention(k.lib!, entry, k.config, p, { mask }), wantMasked, "bfloat16", `q_len ${qLen} ${entry} mask`);
      }
    }
  });

  it("handles pages larger than a kv block and sequences shorter than a page", () => {
    const k = kernels.largePages;
    const p = makeProblem(k.config, { batch: 3, qLen: 33, kvLen: 130, seqLens: [100, 1, 130], seed: 4 });
    const want = referenceAttention(k.config, p, k.mods);
    for (const entry of ENTRIES) expectAttention(runAttention(k.lib!, entry, k.config, p), want, "float32", entry);
  });

  it("flags a page-table entry outside the pool with status 2 instead of reading it", () => {
    const k = kernels.largePages;
    const p = makeProblem(k.config, { batch: 1, qLen: 4, kvLen: 100, seqLens: [100], seed: 2 });
    p.paged!.pageTable[1] = p.paged!.numPages + 5;
    expect(runAttention(k.lib!, "md_flash_attention", k.config, p).status).toBe(2);
    expect(runAttention(k.lib!, "md_naive_attention", k.config, p).status).toBe(2);
  });

  it("rejects a seq_len beyond the page table with status 2", () => {
    const k = kernels.largePages;
    const p = makeProblem(k.config, { batch: 1, qLen: 4, kvLen: 100, seqLens: [100], seed: 2 });
    p.paged!.seqLens[0] = 129; // two pages of 64 hold 128 positions
    expect(runAttention(k.lib!, "md_flash_attention", k.config, { ...p, kvLen: 200 }).status).toBe(2);
  });
});
