/**
 * bf16 dot products (VDPBF16PS, AVX512-BF16). Prefill: bf16 K/V, P rounded to bf16 for P V; the bound of
 * docs/spec.md ("bfloat16 dot products") against the float64 reference, for shapes that cover the odd pair at the end
 * of a head dim and of a kv tile, GQA, causal diagonal tiles and mods on the fp32 scores; and proof that the path runs:
 * its library holds VDPBF16PS, the build with -DMD_NO_BF16_DOT (the fp32 path) does not, and their outputs differ.
 * Decode: q . k and P V on VDPBF16PS, P rounded to bf16 as in prefill: the same bound, an output that differs from the
 * fp32 path's, and V's inf and NaN kept away from weights that round to 0 (zero, or below 2^-126).
 * 8-bit K/V with a bf16 query: the codes packed as bf16 (exactly), the scales on the score columns and on P; the same
 * bound with max |v| of the dequantized values, inf and NaN codes at masked positions kept out. In decode, where the
 * CPU also has AVX512-VBMI, the codes become bf16 by byte lookups as they are read (fp8: q . k and P V; int8: P V):
 * the same bound, int8's -128, an output that differs from the fp32 path's, and e5m2's inf under a subnormal weight.
 * Runs only where the CPU has avx512_bf16 (and avx512vbmi for the decode of 8-bit K/V); elsewhere each test is skipped
 * with that reason.
 */
import { readFileSync } from "node:fs";
import { describe, expect, it } from "vitest";
import type { Kernel } from "../../src/index.js";
import { compareOutputs, TOLERANCE } from "../../src/reference/compareOutputs.js";
import { referenceAttention } from "../../src/reference/referenceAttention.js";
import type { QuantizedDType, TemplateName } from "../../src/ir/graph.js";
import { fromBfloat16, toBfloat16 } from "../../src/runtime/dtypes.js";
import { quantizeKv } from "../../src/runtime/quantize.js";
import { tensor, toFloat64 } from "../../src/runtime/tensor.js";
import type { KernelInputs } from "../../src/runtime/validateInputs.js";
import { FAST_BUILD_CXXFLAGS } from "../helpers/fastBuilds.js";
import { instructionsPerFunction } from "../helpers/objdump.js";
import { type Bf16Case, bf16InputsOf, bf16Kernels, expectWithinBf16Bound } from "../helpers/bf16Bound.js";

const CPU_FLAGS = new Set(readFileSync("/proc/cpuinfo", "utf8").match(/^flags\s*:(.*)$/m)?.[1].trim().split(/\s+/) ?? []);
const SKIP = CPU_FLAGS.has("avx512_bf16") ? undefined : "this CPU has no avx512_bf16 (/proc/cpuinfo), so no build here takes the bf16 dot-product path";
const SKIP_LOOKUPS = SKIP ?? (CPU_FLAGS.has("avx512vbmi") ? undefined : "this CPU has no avx512vbmi (/proc/cpuinfo), so decode keeps 8-bit K/V on the fp32 path");

/*
 * The suite's fast builds (-O0, the helpers left to the compiler's inlining; test/helpers/fastBuilds.ts): the same arithmetic, built faster.
 * A helper that is not inlined keeps its own name, so the instruction counts below look in the helpers of each path too.
 * -DMD_DEC_BF16_DOT keeps decoding on the dot products on a CPU with AMX too, which otherwise decodes with GQA on fp32
 * FMA (test/kernel/amxTiles.test.ts checks that choice): the paths below are tested wherever the CPU has them.
 */
const FLAGS = [...FAST_BUILD_CXXFLAGS, "-DMD_DEC_BF16_DOT"];
/** Functions of the prefill path (its tile products) and of the decode path (its dot products), by (mangled) name. */
const PREFILL_FUNCTIONS = /md_flash_attention|md_fa_|md_gemm|md_micro_gemm/;
const DECODE_FUNCTIONS = /md_dec_task|md_dot_rows|md_dot_block/;
const FP32_PATH = [...FLAGS, "-DMD_NO_BF16_DOT"];
/** Without the byte lookups: 8-bit K/V decode on fp32 FMA (8-bit prefill keeps its bf16 path). */
const NO_LOOKUPS = [...FLAGS, "-DMD_NO_FP8_BYTE_LOOKUP"];
/** The decode functions, with the P V helpers that -DMD_NO_FORCED_INLINE may leave apart. */
const DECODE_PV_FUNCTIONS = /md_dec_task|md_dot_rows|md_dot_block|md_axpy/;

type Case = Bf16Case;

const CASES: Case[] = [
  { name: "D 128, GQA 2, whole tiles and a partial last tile, |v| <= 8", hq: 4, hkv: 2, d: 128, dv: 128, lq: 150, lkv: 300, block: [128, 128], vmax: 8 },
  { name: "D 72 -> Dv 40, causal (diagonal tiles computed in part), odd lengths", hq: 2, hkv: 1, d: 72, dv: 40, lq: 131, lkv: 131, block: [64, 64], vmax: 1, maskMod: "q_idx >= kv_idx" },
  { name: "D 5 -> Dv 3 (an odd pair in every row), an odd last kv tile, softcap score_mod", hq: 3, hkv: 1, d: 5, dv: 3, lq: 37, lkv: 45, block: [16, 16], vmax: 2, scoreMod: "20 * tanh(score / 20)" },
  { name: "D 64, a sparse mask with fully masked rows", hq: 2, hkv: 2, d: 64, dv: 64, lq: 70, lkv: 90, block: [32, 32], vmax: 1, maskMod: "(q_idx + 2 * kv_idx) % 7 != 0 && q_idx % 11 != 3" },
];

const inputsOf = bf16InputsOf;
const expectWithinBound = expectWithinBf16Bound;

/** Count of VDPBF16PS instructions in each function of a shared library that has any. */
const vdpbf16psPerFunction = (so: string) => instructionsPerFunction(so, /\bvdpbf16ps\b/);

const DECODE_CASE: Case = { name: "decode", hq: 8, hkv: 2, d: 72, dv: 72, lq: 3, lkv: 333, block: [16, 32], vmax: 1, maskMod: "q_idx + 330 >= kv_idx" };
const NONFINITE_CASE: Case = { name: "nonfinite", hq: 2, hkv: 1, d: 32, dv: 32, lq: 40, lkv: 70, block: [32, 32], vmax: 1, maskMod: "kv_idx % 9 != 4" };
/**
 * Decode over V with inf and NaN: masked positions (weight 0) in the second and third tiles, and in the first tile,
 * which has none, position 7 pushed 93 below the other scores (which stay within about +-2 here), so that its weight,
 * about e^-93, is a float32 subnormal: the bf16 rounding of P makes it 0, and 0 * inf would be NaN where the exact
 * result is inf.
 */
const DECODE_NONFINITE_CASE: Case = {
  name: "decode nonfinite", hq: 4, hkv: 1, d: 32, dv: 32, lq: 2, lkv: 70, block: [32, 32], vmax: 1,
  maskMod: "kv_idx < 32 || kv_idx % 9 != 4", scoreMod: "where(kv_idx == 7, score - 93, score)",
};
/**
 * 8-bit K/V: D 72 -> Dv 40, whole 16-element loads and a 4-word tail in K, a partial 16-lane group in V; 131 positions,
 * an odd last tile; causal with every ninth position masked (where the inf and NaN codes go).
 */
const EIGHT_BIT_CASE: Case = { name: "8-bit", hq: 4, hkv: 2, d: 72, dv: 40, lq: 131, lkv: 131, block: [64, 64], vmax: 1, maskMod: "q_idx >= kv_idx && kv_idx % 9 != 4" };
const FORMATS: QuantizedDType[] = ["int8", "float8_e4m3fn", "float8_e5m2"];

const kernelOf = bf16Kernels("bf16_dot");

/** bf16 inputs of case `of` with K and V quantized: int8 per (token, head) scales, fp8 uneven per-head scales. */
function quantizedInputs(dtype: QuantizedDType, seed: number, of: Case = EIGHT_BIT_CASE): KernelInputs {
  const inputs = inputsOf(of, seed);
  const options = dtype === "int8" ? {} : { scale: [0.5, 1.25].slice(0, of.hkv) };
  const key = quantizeKv(inputs.key, dtype, options);
  const value = quantizeKv(inputs.value, dtype, options);
  return { ...inputs, key: key.codes, value: value.codes, keyScale: key.scale, valueScale: value.scale };
}

/*
 * Every kernel of the file starts building at import, so the builds run side by side (compile() runs one g++ per core)
 * instead of one after another as the tests reach them; a failed build surfaces in its test. Only where the tests run.
 */
if (SKIP === undefined) {
  const builds = [
    ...CASES.flatMap((c) => [kernelOf(c, FLAGS), kernelOf(c, FP32_PATH)]),
    kernelOf(DECODE_CASE, FLAGS),
    kernelOf(DECODE_CASE, FP32_PATH),
    kernelOf(NONFINITE_CASE, FLAGS),
    kernelOf(DECODE_NONFINITE_CASE, FLAGS),
    ...FORMATS.map((dtype) => kernelOf(EIGHT_BIT_CASE, FLAGS, dtype)),
    kernelOf(EIGHT_BIT_CASE, FP32_PATH, "int8"),
    ...(SKIP_LOOKUPS === undefined ? [kernelOf(EIGHT_BIT_CASE, NO_LOOKUPS, "float8_e5m2"), kernelOf(DECODE_NONFINITE_CASE, FLAGS, "float8_e5m2")] : []),
  ];
  for (const build of builds) build.catch(() => {});
}

describe("prefill on bf16 dot products (AVX512-BF16)", () => {
  it("the engine's prefill and decode functions hold VDPBF16PS, and the build with -DMD_NO_BF16_DOT has none", async (ctx) => {
    ctx.skip(SKIP !== undefined, SKIP);
    const [dot, fp32] = await Promise.all([kernelOf(CASES[0], FLAGS), kernelOf(CASES[0], FP32_PATH)]);
    const perFunction = vdpbf16psPerFunction(dot.library.engine.soPath);
    const inFunctions = (name: RegExp) => [...perFunction].filter(([fn]) => name.test(fn)).reduce((n, [, c]) => n + c, 0);
    expect(inFunctions(PREFILL_FUNCTIONS), "prefill").toBeGreaterThan(0);
    expect(inFunctions(DECODE_FUNCTIONS), "decode").toBeGreaterThan(0);
    expect(vdpbf16psPerFunction(fp32.library.engine.soPath).size).toBe(0);
  });

  it("decode (q . k and P V on VDPBF16PS) stays within the bound and differs from the fp32 path, GQA 4, D 72, q_len 1 and 3", async (ctx) => {
    ctx.skip(SKIP !== undefined, SKIP);
    const c = DECODE_CASE;
    const [dot, fp32] = await Promise.all([kernelOf(c, FLAGS), kernelOf(c, FP32_PATH)]);
    for (const qLen of [1, 3]) {
      const full = inputsOf({ ...c, lq: qLen }, qLen);
      const want = referenceAttention(dot.graph, full);
      const got = dot.run(full, { template: "flash_decoding" });
      const out = fromBfloat16(got.out.data as Uint16Array);
      expectWithinBound(out, want.out, c.vmax, `q_len ${qLen}`);
      const lse = compareOutputs(toFloat64(got.lse!), want.lse, TOLERANCE.float32);
      expect(lse.ok, `q_len ${qLen} lse: ${JSON.stringify(lse.firstFailure)}`).toBe(true);
      // q . k is exact on either path; P rounded to bf16 is what moves outputs
      const outFp32 = fromBfloat16(fp32.run(full, { template: "flash_decoding" }).out.data as Uint16Array);
      expectWithinBound(outFp32, want.out, c.vmax, `q_len ${qLen}, fp32 path`);
      expect(out.some((x, i) => x !== outFp32[i]), `q_len ${qLen}: outputs identical to the fp32 path's`).toBe(true);
    }
  });

});

describe.each(CASES)("bf16 dot products: $name", (c) => {
  it("stays within the stated bound of the float64 reference and differs from the fp32 path", async (ctx) => {
    ctx.skip(SKIP !== undefined, SKIP);
    const inputs = inputsOf(c, c.lq * 7 + c.lkv);
    const [dot, fp32] = await Promise.all([kernelOf(c, FLAGS), kernelOf(c, FP32_PATH)]);
    const want = referenceAttention(dot.graph, inputs);
    const got = dot.run(inputs, { template: "flash_attention" });
    const gotFp32 = fp32.run(inputs, { template: "flash_attention" });
    const out = fromBfloat16(got.out.data as Uint16Array);
    expectWithinBound(out, want.out, c.vmax, "bf16 dot path");
    // lse comes from the unrounded fp32 weights: float32's tolerance
    const lse = compareOutputs(toFloat64(got.lse!), want.lse, TOLERANCE.float32);
    expect(lse.ok, `lse: ${JSON.stringify(lse.firstFailure)}`).toBe(true);
    // P rounded to bf16 moves some outputs by an ulp: equal outputs would mean the fp32 path ran
    const outFp32 = fromBfloat16(gotFp32.out.data as Uint16Array);
    expectWithinBound(outFp32, want.out, c.vmax, "fp32 path");
    expect(out.some((x, i) => x !== outFp32[i]), "outputs identical to the fp32 path's").toBe(true);
  });
});

describe("bf16 prefill: P rounded in the softmax's pass", () => {
  /*
   * Rows that call no mod get their weights rounded to bf16 pairs as the softmax computes them (md_fa_softmax_pairs);
   * rows whose score_mod runs are rounded from S afterwards (md_round_pairs). A score_mod that changes no value but is
   * not the identity sends every tile the second way: the outputs must be the same bits. No mask_mod, so that every
   * tile is full (a causal diagonal's prefix rows sum their weights in another order than a row of the whole tile).
   */
  const plain: Case = { name: "plain", hq: 4, hkv: 2, d: 72, dv: 40, lq: 150, lkv: 173, block: [64, 64], vmax: 2 };
  const throughMods: Case = { ...plain, name: "through mods", scoreMod: "where(kv_idx < 1000000, score, 0.0)" };
  it.for(["bfloat16", "int8"])("gives the bits of rounding after the softmax, %s K/V", async (kvDtype, ctx) => {
    ctx.skip(SKIP !== undefined, SKIP);
    const [fused, after] = await Promise.all([kernelOf(plain, FLAGS, kvDtype), kernelOf(throughMods, FLAGS, kvDtype)]);
    const inputs = kvDtype === "int8" ? quantizedInputs("int8", 5, plain) : inputsOf(plain, 5);
    const a = fused.run(inputs, { template: "flash_attention" });
    const b = after.run(inputs, { template: "flash_attention" });
    expect(Array.from(a.out.data)).toEqual(Array.from(b.out.data));
    expect(Array.from(a.lse!.data)).toEqual(Array.from(b.lse!.data));
    expectWithinBound(fromBfloat16(a.out.data as Uint16Array), referenceAttention(fused.graph, inputs).out, plain.vmax, kvDtype);
  });
});

/**
 * Case c against the reference with inf and NaN written into V: one element of every ninth position from `masked` on
 * (positions the mask drops) and +inf at column 3 of position `attended`; checks the kernel's output, returns the
 * reference's.
 */
async function checkNonfiniteV(c: Case, seed: number, masked: number, attended: number, template: TemplateName): Promise<Float64Array> {
  const k = await kernelOf(c, FLAGS);
  const inputs = inputsOf(c, seed);
  const v = fromBfloat16(inputs.value.data as Uint16Array);
  for (let pos = masked; pos < c.lkv; pos += 9) v[pos * c.dv + (pos % c.dv)] = pos % 2 ? NaN : Infinity;
  v[attended * c.dv + 3] = Infinity;
  const withGarbage = { ...inputs, value: tensor("bfloat16", inputs.value.shape, toBfloat16(v)) };
  const want = referenceAttention(k.graph, withGarbage).out;
  const cmp = compareOutputs(toFloat64(k.run(withGarbage, { template }).out), want, TOLERANCE.bfloat16);
  expect(cmp.nonFiniteMismatches).toBe(0);
  expect(cmp.ok, JSON.stringify(cmp.firstFailure)).toBe(true);
  return want;
}

describe("bf16 dot products: inf and NaN in V", () => {
  it("a masked position's inf or NaN adds nothing; an attended inf reaches the row as IEEE arithmetic says", async (ctx) => {
    ctx.skip(SKIP !== undefined, SKIP);
    // position 20 is attended by every query row: column 3 is inf everywhere
    const want = await checkNonfiniteV(NONFINITE_CASE, 3, 4, 20, "flash_attention");
    expect(want.some((x) => x === Infinity)).toBe(true);
  });

  it("decode: the same, and an inf under a subnormal weight reaches the row as inf, not NaN", async (ctx) => {
    ctx.skip(SKIP !== undefined, SKIP);
    const c = DECODE_NONFINITE_CASE;
    // masked positions from 40 on; position 7 weighs about e^-93 in every row
    const want = await checkNonfiniteV(c, 5, 40, 7, "flash_decoding");
    expect(want.every((x, i) => (i % c.dv === 3 ? x === Infinity : Number.isFinite(x))), "reference: column 3 inf, the rest finite").toBe(true);
  });
});

describe("bf16 dot products: 8-bit K/V with a bf16 query", () => {
  const c = EIGHT_BIT_CASE;

  /** max |scale * code| of a quantized value tensor [1, Hkv, L, Dv]. */
  function maxAbsValue(value: KernelInputs["value"], scale: KernelInputs["valueScale"], dtype: QuantizedDType, of: Case = c): number {
    const codes = toFloat64(value);
    const scales = toFloat64(scale!);
    let most = 0;
    for (let i = 0; i < codes.length; i++) {
      const row = Math.floor(i / of.dv); // (head, position) in [Hkv, L]
      const s = dtype === "int8" ? scales[row] : scales[Math.floor(row / of.lkv)];
      if (Number.isFinite(codes[i])) most = Math.max(most, Math.abs(codes[i] * s));
    }
    return most;
  }

  it.for(FORMATS)("%s: the engine's prefill holds VDPBF16PS, and its output is within the bound", async (dtype, ctx) => {
    ctx.skip(SKIP !== undefined, SKIP);
    const k = await kernelOf(c, FLAGS, dtype);
    const perFunction = vdpbf16psPerFunction(k.library.engine.soPath);
    expect([...perFunction].some(([fn, n]) => PREFILL_FUNCTIONS.test(fn) && n > 0), "prefill on VDPBF16PS").toBe(true);
    const inputs = quantizedInputs(dtype, 11);
    const want = referenceAttention(k.graph, inputs);
    const got = k.run(inputs, { template: "flash_attention" });
    expectWithinBound(fromBfloat16(got.out.data as Uint16Array), want.out, maxAbsValue(inputs.value, inputs.valueScale, dtype), dtype);
    const lse = compareOutputs(toFloat64(got.lse!), want.lse, TOLERANCE.float32);
    expect(lse.ok, `lse: ${JSON.stringify(lse.firstFailure)}`).toBe(true);
  });

  it("int8: differs from the fp32 path's output (-DMD_NO_BF16_DOT), both within the bound", async (ctx) => {
    ctx.skip(SKIP !== undefined, SKIP);
    const [dot, fp32] = await Promise.all([kernelOf(c, FLAGS, "int8"), kernelOf(c, FP32_PATH, "int8")]);
    const inputs = quantizedInputs("int8", 12);
    const want = referenceAttention(dot.graph, inputs);
    const vmax = maxAbsValue(inputs.value, inputs.valueScale, "int8");
    const out = fromBfloat16(dot.run(inputs, { template: "flash_attention" }).out.data as Uint16Array);
    const outFp32 = fromBfloat16(fp32.run(inputs, { template: "flash_attention" }).out.data as Uint16Array);
    expectWithinBound(out, want.out, vmax, "bf16 dot path");
    expectWithinBound(outFp32, want.out, vmax, "fp32 path");
    expect(out.some((x, i) => x !== outFp32[i]), "outputs identical to the fp32 path's").toBe(true);
  });

  it.for(["float8_e4m3fn", "float8_e5m2"] as const)("%s: NaN (and e5m2's inf) codes at masked positions add nothing", async (dtype, ctx) => {
    ctx.skip(SKIP !== undefined, SKIP);
    const k = await kernelOf(c, FLAGS, dtype);
    const inputs = quantizedInputs(dtype, 13);
    const codes = Uint8Array.from(inputs.value.data as Uint8Array);
    const garbage = dtype === "float8_e4m3fn" ? [0x7f, 0xff] : [0x7c, 0x7f, 0xfc];
    for (let h = 0; h < c.hkv; h++)
      for (let pos = 4; pos < c.lkv; pos += 9) codes[(h * c.lkv + pos) * c.dv + (pos % c.dv)] = garbage[pos % garbage.length];
    const withGarbage = { ...inputs, value: tensor(dtype, inputs.value.shape, codes) };
    const want = referenceAttention(k.graph, withGarbage);
    const got = k.run(withGarbage, { template: "flash_attention" });
    const out = fromBfloat16(got.out.data as Uint16Array);
    expect(out.every(Number.isFinite), "a masked inf or NaN reached the output").toBe(true);
    expectWithinBound(out, want.out, maxAbsValue(inputs.value, inputs.valueScale, dtype), dtype);
  });

  const decodeOut = (k: Kernel, inputs: KernelInputs) => fromBfloat16(k.run(inputs, { template: "flash_decoding" }).out.data as Uint16Array);

  it.for(FORMATS)("%s decode: the decode functions hold VDPBF16PS (codes made bf16 by byte lookups), within the bound at q_len 1 and 3", async (dtype, ctx) => {
    ctx.skip(SKIP_LOOKUPS !== undefined, SKIP_LOOKUPS);
    const k = await kernelOf(c, FLAGS, dtype);
    const dots = [...vdpbf16psPerFunction(k.library.engine.soPath)].filter(([fn]) => DECODE_PV_FUNCTIONS.test(fn));
    expect(dots.length, "VDPBF16PS in the decode functions").toBeGreaterThan(0);
    for (const qLen of [1, 3]) {
      const inputs = quantizedInputs(dtype, 20 + qLen, { ...c, lq: qLen });
      const want = referenceAttention(k.graph, inputs);
      expectWithinBound(decodeOut(k, inputs), want.out, maxAbsValue(inputs.value, inputs.valueScale, dtype), `${dtype}, q_len ${qLen}`);
    }
  });

  it("int8 decode: codes of -128 (whose magnitude does not fit the lookup's 7 bits) in K and V, within the bound", async (ctx) => {
    ctx.skip(SKIP_LOOKUPS !== undefined, SKIP_LOOKUPS);
    const k = await kernelOf(c, FLAGS, "int8");
    const inputs = quantizedInputs("int8", 24, { ...c, lq: 3 });
    const withMin = (t: KernelInputs["value"], every: number) => {
      const codes = Int8Array.from(t.data as Int8Array);
      for (let i = 0; i < codes.length; i += every) codes[i] = -128;
      return tensor("int8", t.shape, codes);
    };
    const extreme = { ...inputs, key: withMin(inputs.key, 5), value: withMin(inputs.value, 3) };
    const want = referenceAttention(k.graph, extreme);
    expectWithinBound(decodeOut(k, extreme), want.out, maxAbsValue(extreme.value, extreme.valueScale, "int8"), "int8 with -128");
  });

  it("e5m2 decode differs from the fp32 path's (-DMD_NO_FP8_BYTE_LOOKUP), both within the bound", async (ctx) => {
    ctx.skip(SKIP_LOOKUPS !== undefined, SKIP_LOOKUPS);
    const [lookups, fp32] = await Promise.all([kernelOf(c, FLAGS, "float8_e5m2"), kernelOf(c, NO_LOOKUPS, "float8_e5m2")]);
    expect([...vdpbf16psPerFunction(fp32.library.engine.soPath)].filter(([fn]) => DECODE_PV_FUNCTIONS.test(fn)).length, "VDPBF16PS in the fp32 path's decode").toBe(0);
    const inputs = quantizedInputs("float8_e5m2", 25, { ...c, lq: 2 });
    const want = referenceAttention(lookups.graph, inputs);
    const vmax = maxAbsValue(inputs.value, inputs.valueScale, "float8_e5m2");
    const out = decodeOut(lookups, inputs);
    const outFp32 = decodeOut(fp32, inputs);
    expectWithinBound(out, want.out, vmax, "byte lookups");
    expectWithinBound(outFp32, want.out, vmax, "fp32 path");
    expect(out.some((x, i) => x !== outFp32[i]), "outputs identical to the fp32 path's").toBe(true);
  });

  it("e5m2 decode: inf and NaN codes at masked positions add nothing, an inf under a subnormal weight reaches the row as inf", async (ctx) => {
    ctx.skip(SKIP_LOOKUPS !== undefined, SKIP_LOOKUPS);
    const d = DECODE_NONFINITE_CASE;
    const k = await kernelOf(d, FLAGS, "float8_e5m2");
    const inputs = quantizedInputs("float8_e5m2", 26, d);
    const codes = Uint8Array.from(inputs.value.data as Uint8Array);
    const garbage = [0x7c, 0x7f, 0xfc, 0xfe];
    for (let pos = 40; pos < d.lkv; pos += 9) codes[pos * d.dv + (pos % d.dv)] = garbage[pos % garbage.length]; // masked
    codes[7 * d.dv + 3] = 0x7c; // +inf at position 7, weighed about e^-93 by every row
    const withGarbage = { ...inputs, value: tensor("float8_e5m2", inputs.value.shape, codes) };
    const want = referenceAttention(k.graph, withGarbage).out;
    expect(want.every((x, i) => (i % d.dv === 3 ? x === Infinity : Number.isFinite(x))), "reference: column 3 inf, the rest finite").toBe(true);
    const cmp = compareOutputs(toFloat64(k.run(withGarbage, { template: "flash_decoding" }).out), want, TOLERANCE.bfloat16);
    expect(cmp.nonFiniteMismatches).toBe(0);
    expect(cmp.ok, JSON.stringify(cmp.firstFailure)).toBe(true);
  });
});
