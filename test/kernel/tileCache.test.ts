/**
 * Prefill's per-thread cache of packed K/V tiles (flash_attention.cpp.njk, md_fa_tile_cache) changes no output: every
 * path, on every machine (fp32 panels, or bf16 pairs where the CPU has AVX512-BF16, on AMX tiles where it has those),
 * against a build without it (-DMD_NO_TILE_CACHE), bit for bit, on one and two threads, and within the dtype's
 * tolerance of the float64 reference. B 2 (the cache's owner changes with the sequence), GQA 4 and 3 q blocks (tiles
 * shared across heads and q blocks), a partial last tile; int8 K/V with a bf16 query (cached scales). Two masks: causal,
 * whose diagonal tiles keep every position (packed whole, so cached), and causal shifted by 4, whose diagonal tiles
 * keep fewer positions than the tile holds (packed apart, not cached), and whose first query rows keep none.
 */
import { describe, expect, it } from "vitest";
import { compile } from "../../src/index.js";
import { compareOutputs, TOLERANCE } from "../../src/reference/compareOutputs.js";
import { referenceAttention } from "../../src/reference/referenceAttention.js";
import { generateInputs } from "../../src/io/generateInputs.js";
import { toFloat64 } from "../../src/runtime/tensor.js";
import type { KernelInputs } from "../../src/runtime/validateInputs.js";
import { FAST_BUILD_CXXFLAGS } from "../helpers/fastBuilds.js";

const CASES = [
  { dtype: "float32", kv: "float32" },
  { dtype: "float16", kv: "float16" },
  { dtype: "bfloat16", kv: "bfloat16" },
  { dtype: "bfloat16", kv: "int8" },
] as const;

const MASKS = ["q_idx >= kv_idx", "q_idx >= kv_idx + 4"];

function specOf(dtype: string, kv: string, maskMod: string): Record<string, unknown> {
  return {
    name: "tile_cache",
    query: { shape: [2, 8, 80, 64], dtype },
    key: { shape: [2, 2, 80, 64], dtype: kv },
    value: { shape: [2, 2, 80, 64], dtype: kv },
    blockSize: [32, 32],
    maskMod,
    returnLse: true,
  };
}

describe.each(CASES)("prefill's cache of packed tiles, $dtype query, $kv K/V", ({ dtype, kv }) => {
  it.each(MASKS)("gives the outputs of a build without it (-DMD_NO_TILE_CACHE), bit for bit, on 1 and 2 threads: %s", async (maskMod) => {
    const [cached, uncached] = await Promise.all([
      compile(specOf(dtype, kv, maskMod), { cxxflags: FAST_BUILD_CXXFLAGS, tuning: false }),
      compile(specOf(dtype, kv, maskMod), { cxxflags: [...FAST_BUILD_CXXFLAGS, "-DMD_NO_TILE_CACHE"], tuning: false }),
    ]);
    // int8 K/V come quantized from random values, with per-(token, head) scales
    const inputs: KernelInputs = generateInputs(cached.graph, 23);
    const want = referenceAttention(cached.graph, inputs);
    for (const numThreads of [1, 2]) {
      const a = cached.run(inputs, { template: "flash_attention", numThreads });
      const b = uncached.run(inputs, { template: "flash_attention", numThreads });
      expect(Array.from(a.out.data), `${numThreads} thread(s)`).toEqual(Array.from(b.out.data));
      expect(Array.from(a.lse!.data), `${numThreads} thread(s), lse`).toEqual(Array.from(b.lse!.data));
      const cmp = compareOutputs(toFloat64(a.out), want.out, TOLERANCE[dtype]);
      expect(cmp.ok, JSON.stringify(cmp.firstFailure)).toBe(true);
    }
  });
});
