import { describe, it } from "vitest";
import { buildKernel, type KernelConfig, TEST_OPT } from "./harness/buildKernel.js";
import { expectAttention } from "./harness/compare.js";
import { alibiOffsetCausalMods, type Mods, softcapShiftedMods } from "./harness/mods.js";
import { argsFor, openKernel } from "./harness/native.js";
import { decode, makeProblem } from "./harness/problem.js";
import { blockMaskFromKinds, referenceAttention } from "./harness/reference.js";

/**
 * The decode template's row-pointer kernels built for targets other than this machine's best: the scalar fallback
 * (x86-64 baseline, exact fp16 conversion), AVX2 without F16C, and this machine. Head dims that are not multiples of
 * 16 exercise the bf16 pairs' plain tail and the partial last vector of a row; G 1 at a long head dim, the one-row
 * block of AVX2's 16 registers.
 */
const TARGETS: Record<string, string[]> = {
  scalar: [TEST_OPT, "-march=x86-64"],
  "avx2 without f16c": [TEST_OPT, "-march=haswell", "-mno-f16c"],
  native: [TEST_OPT, "-march=native"],
};

const cases: Array<{ name: string; config: KernelConfig; mods: Mods; paged?: boolean }> = [
  {
    name: "bf16 D 72 -> V 20, G 4, paged",
    config: { dtype: "bfloat16", hq: 8, hkv: 2, qDim: 72, vDim: 20, blockSize: [8, 16], pageSize: 8, buffers: ["float32", "int64"] },
    mods: alibiOffsetCausalMods,
    paged: true,
  },
  {
    name: "fp16 D 40 -> V 24, G 3",
    config: { dtype: "float16", hq: 3, hkv: 1, qDim: 40, vDim: 24, blockSize: [16, 32] },
    mods: softcapShiftedMods,
  },
  /* one query row per kv head at q_len 1, too long a row for 16 registers: the one-row block reads it from L1 on AVX2 */
  {
    name: "fp32 D 100 -> V 36, G 1",
    config: { dtype: "float32", hq: 2, hkv: 2, qDim: 100, vDim: 36, blockSize: [16, 32] },
    mods: softcapShiftedMods,
  },
  {
    name: "bf16 D 88 -> V 24, G 1",
    config: { dtype: "bfloat16", hq: 2, hkv: 2, qDim: 88, vDim: 24, blockSize: [8, 16] },
    mods: softcapShiftedMods,
  },
  {
    name: "fp32 tiny dims D 5 -> V 3, G 2, odd blocks",
    config: { dtype: "float32", hq: 4, hkv: 2, qDim: 5, vDim: 3, blockSize: [5, 11] },
    mods: softcapShiftedMods,
  },
];

// Every build starts now, one g++ per core; each test waits for its own.
const builds = new Map(
  Object.entries(TARGETS).flatMap(([target, flags]) => cases.map((c) => [`${target}/${c.name}`, buildKernel(c.config, c.mods.cpp, flags)] as const)),
);
for (const build of builds.values()) build.catch(() => {});

describe.each(Object.entries(TARGETS))("flash decoding built for %s", (target) => {
  it.each(cases)("$name matches the reference", async ({ name, config, mods, paged }) => {
    const lib = openKernel(await builds.get(`${target}/${name}`)!);
    for (const qLen of [1, 6]) {
      const kvLen = 150;
      const seqLens = paged ? [150, 61] : undefined;
      const buffers = config.buffers
        ? [Float32Array.from({ length: config.hq }, (_, h) => 2 ** -(h + 3)), BigInt64Array.from(seqLens ?? [kvLen, kvLen], (l) => BigInt(l - qLen))]
        : undefined;
      const p = makeProblem(config, { batch: 2, qLen, kvLen, seed: qLen, seqLens, buffers });
      const [QB, KVB] = config.blockSize;
      const kvBlocks = Math.ceil(kvLen / KVB);
      // per-head lists: every third (head, block) absent, every other one full
      const mask = blockMaskFromKinds({ maskBatch: 1, maskHeads: config.hq, qBlocks: Math.ceil(qLen / QB), kvBlocks }, (row, kb) =>
        (row + kb) % 3 === 0 ? "absent" : (row + kb) % 2 === 0 ? "full" : "partial",
      );
      const want = referenceAttention(config, p, mods, mask);
      const n = p.batch * config.hq * qLen;
      const out = config.dtype === "float32" ? new Float32Array(n * config.vDim) : new Uint16Array(n * config.vDim);
      const lse = new Float32Array(n);
      const args = argsFor(p, {
        out, lse, partition_size: 2 * KVB,
        kv_num_blocks: mask.kvNumBlocks, kv_indices: mask.kvIndices, full_kv_num_blocks: mask.fullKvNumBlocks, full_kv_indices: mask.fullKvIndices,
        mask_batch: mask.maskBatch, mask_heads: mask.maskHeads, q_blocks: mask.qBlocks, kv_blocks: mask.kvBlocks,
      });
      const status = lib.call("md_flash_decoding", args);
      expectAttention({ status, out: decode(out, config.dtype), lse }, want, config.dtype, `q_len ${qLen}`);
    }
  });
});
