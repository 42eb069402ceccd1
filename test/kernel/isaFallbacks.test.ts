import { describe, it } from "vitest";
import { buildKernel, type KernelConfig, TEST_OPT } from "./harness/buildKernel.js";
import { expectAttention } from "./harness/compare.js";
import { alibiCausalMods, type Mods, softcapShiftedMods } from "./harness/mods.js";
import { openKernel, runAttention } from "./harness/native.js";
import { makeProblem } from "./harness/problem.js";
import { referenceAttention, referenceBlockMask } from "./harness/reference.js";

/**
 * The same kernels built for targets other than this machine's best: the scalar fallback (x86-64 baseline: no
 * AVX, no FMA, no F16C, so the exact fp16 conversion) and AVX2 without F16C. Both must give the reference answer.
 */
const TARGETS: Record<string, string[]> = {
  scalar: [TEST_OPT, "-march=x86-64"],
  "avx2 without f16c": [TEST_OPT, "-march=haswell", "-mno-f16c"],
};

const cases: Array<{ name: string; config: KernelConfig; mods: Mods; paged?: boolean }> = [
  {
    name: "fp32 alibi",
    config: { dtype: "float32", hq: 4, hkv: 2, qDim: 72, vDim: 72, blockSize: [32, 32], scale: 0.5, buffers: ["float32"] },
    mods: alibiCausalMods,
  },
  {
    name: "fp16 softcap",
    config: { dtype: "float16", hq: 4, hkv: 1, qDim: 64, vDim: 40, blockSize: [16, 32] },
    mods: softcapShiftedMods,
  },
  {
    name: "fp32 tiny head dims and odd block sizes",
    config: { dtype: "float32", hq: 3, hkv: 1, qDim: 5, vDim: 3, blockSize: [5, 11] },
    mods: softcapShiftedMods,
  },
  {
    name: "bf16 paged",
    config: { dtype: "bfloat16", hq: 2, hkv: 2, qDim: 24, vDim: 24, blockSize: [16, 16], pageSize: 8 },
    mods: softcapShiftedMods,
    paged: true,
  },
];

// Every build starts now, one g++ per core; each test waits for its own.
const builds = new Map(
  Object.entries(TARGETS).flatMap(([target, flags]) => cases.map((c) => [`${target}/${c.name}`, buildKernel(c.config, c.mods.cpp, flags)] as const)),
);
for (const build of builds.values()) build.catch(() => {});

describe.each(Object.entries(TARGETS))("built for %s", (target) => {
  it.each(cases)("$name matches the reference", async ({ name, config, mods, paged }) => {
    const lib = openKernel(await builds.get(`${target}/${name}`)!);
    const p = makeProblem(config, {
      batch: 2,
      qLen: 37,
      kvLen: 45,
      seed: 21,
      seqLens: paged ? [45, 20] : undefined,
      buffers: config.buffers ? [Float32Array.from({ length: config.hq }, (_, h) => 2 ** -(h + 1))] : undefined,
    });
    const mask = referenceBlockMask(config, p, mods, { maskBatch: 2, maskHeads: config.hq });
    const want = referenceAttention(config, p, mods, mask);
    for (const entry of ["md_flash_attention", "md_naive_attention"] as const)
      expectAttention(runAttention(lib, entry, config, p, { mask }), want, config.dtype, entry);
  });
});
