/**
 * AMX-BF16 tiles in prefill (Intel Sapphire Rapids and later): S = Q K^T and P V of the bf16 path on TDPBF16PS, from
 * the operands the VDPBF16PS path packs (P rounded to bf16 as there, so the bound of docs/spec.md, "bfloat16 dot
 * products", is the same). Against the float64 reference: whole and partial tiles, GQA, a causal diagonal (whose row
 * blocks the tiles compute whole), a 16-wide V panel, mods, fully masked rows, 8-bit K/V with a bf16 query, and inf
 * and NaN in V (those tiles take the fp32 path). Proof that the tiles run: the library's prefill holds TDPBF16PS, the
 * build with -DMD_NO_AMX holds none, and their outputs differ; a head dim the tiles do not take (72) gives exactly the
 * -DMD_NO_AMX output. Decoding with GQA on such a CPU keeps fp32 FMA instead of VDPBF16PS (no faster there than
 * FMA): its decode functions hold none, -DMD_DEC_BF16_DOT puts them back, and both stay within the bound. Runs only
 * where the CPU has amx_bf16 and amx_tile; elsewhere each test is skipped with that reason.
 */
import { readFileSync } from "node:fs";
import { describe, expect, it } from "vitest";
import type { Kernel } from "../../src/index.js";
import { compareOutputs, TOLERANCE } from "../../src/reference/compareOutputs.js";
import { referenceAttention } from "../../src/reference/referenceAttention.js";
import type { QuantizedDType } from "../../src/ir/graph.js";
import { fromBfloat16, toBfloat16 } from "../../src/runtime/dtypes.js";
import { quantizeKv } from "../../src/runtime/quantize.js";
import { tensor, toFloat64 } from "../../src/runtime/tensor.js";
import type { KernelInputs } from "../../src/runtime/validateInputs.js";
import { FAST_BUILD_CXXFLAGS } from "../helpers/fastBuilds.js";
import { instructionsPerFunction } from "../helpers/objdump.js";
import { type Bf16Case, bf16InputsOf, bf16Kernels, expectWithinBf16Bound } from "../helpers/bf16Bound.js";

const CPU_FLAGS = new Set(readFileSync("/proc/cpuinfo", "utf8").match(/^flags\s*:(.*)$/m)?.[1].trim().split(/\s+/) ?? []);
const SKIP = CPU_FLAGS.has("amx_bf16") && CPU_FLAGS.has("amx_tile") ? undefined : "this CPU has no amx_bf16 and amx_tile (/proc/cpuinfo), so no build here takes the AMX tile path";

const FLAGS = FAST_BUILD_CXXFLAGS;
const NO_AMX = [...FLAGS, "-DMD_NO_AMX"];
const DEC_DOT = [...FLAGS, "-DMD_DEC_BF16_DOT"];
/** The decode functions, with the helpers -DMD_NO_FORCED_INLINE may leave apart. */
const DECODE_FUNCTIONS = /md_dec_task|md_dot_rows|md_dot_block|md_axpy/;
/** Functions of the prefill path, by (mangled) name. */
const PREFILL_FUNCTIONS = /md_flash_attention|md_fa_|md_amx_gemm|md_amx_block/;

type Case = Bf16Case;

const WHOLE: Case = { name: "D 128, GQA 2, whole tiles and a partial last tile, |v| <= 4", hq: 4, hkv: 2, d: 128, dv: 128, lq: 150, lkv: 300, block: [128, 128], vmax: 4 };
const CASES: Case[] = [
  WHOLE,
  { name: "D 64, causal, odd lengths (diagonal tiles computed whole)", hq: 2, hkv: 1, d: 64, dv: 64, lq: 131, lkv: 131, block: [64, 64], vmax: 1, maskMod: "q_idx >= kv_idx" },
  { name: "D 96 -> Dv 40 (a V panel 16 wide), kv tiles of 32, softcap score_mod", hq: 3, hkv: 1, d: 96, dv: 40, lq: 37, lkv: 45, block: [32, 32], vmax: 2, scoreMod: "20 * tanh(score / 20)" },
  { name: "D 64, a sparse mask with fully masked rows", hq: 2, hkv: 2, d: 64, dv: 64, lq: 70, lkv: 90, block: [32, 32], vmax: 1, maskMod: "(q_idx + 2 * kv_idx) % 7 != 0 && q_idx % 11 != 3" },
];
/** A head dim that is not a multiple of 32: k of Q K^T is not whole tiles, so the build keeps VDPBF16PS. */
const UNTILED: Case = { name: "D 72", hq: 2, hkv: 1, d: 72, dv: 72, lq: 40, lkv: 70, block: [32, 32], vmax: 1 };
const NONFINITE: Case = { name: "nonfinite", hq: 2, hkv: 1, d: 32, dv: 32, lq: 40, lkv: 70, block: [32, 32], vmax: 1, maskMod: "kv_idx % 9 != 4" };
const EIGHT_BIT: Case = { name: "8-bit", hq: 4, hkv: 2, d: 64, dv: 64, lq: 131, lkv: 131, block: [64, 64], vmax: 1, maskMod: "q_idx >= kv_idx" };
/** Decoding with GQA (G 4): on fp32 FMA where the CPU has AMX; G 1 keeps VDPBF16PS. */
const DECODE_G4: Case = { name: "decode G 4", hq: 8, hkv: 2, d: 64, dv: 64, lq: 1, lkv: 300, block: [32, 32], vmax: 1 };
const DECODE_G1: Case = { name: "decode G 1", hq: 2, hkv: 2, d: 64, dv: 64, lq: 1, lkv: 300, block: [32, 32], vmax: 1 };
const FORMATS: QuantizedDType[] = ["int8", "float8_e4m3fn"];

const inputsOf = bf16InputsOf;
const expectWithinBound = expectWithinBf16Bound;
const kernelOf = bf16Kernels("amx_tiles");

/* Every kernel of the file starts building at import (compile() runs one g++ per core), only where the tests run. */
if (SKIP === undefined) {
  const builds = [
    ...CASES.map((c) => kernelOf(c, FLAGS)),
    kernelOf(WHOLE, NO_AMX),
    kernelOf(UNTILED, FLAGS),
    kernelOf(UNTILED, NO_AMX),
    kernelOf(NONFINITE, FLAGS),
    ...FORMATS.map((dtype) => kernelOf(EIGHT_BIT, FLAGS, dtype)),
    kernelOf(DECODE_G4, FLAGS),
    kernelOf(DECODE_G4, DEC_DOT),
    kernelOf(DECODE_G1, FLAGS),
    kernelOf(DECODE_G4, FLAGS, "int8"),
    kernelOf(DECODE_G4, DEC_DOT, "int8"),
  ];
  for (const build of builds) build.catch(() => {});
}

const bf16Out = (k: Kernel, inputs: KernelInputs) => {
  const got = k.run(inputs, { template: "flash_attention" });
  return { out: fromBfloat16(got.out.data as Uint16Array), lse: got.lse! };
};

describe("prefill on AMX tiles", () => {
  it("the engine's prefill holds TDPBF16PS, the build with -DMD_NO_AMX none, and their outputs differ", async (ctx) => {
    ctx.skip(SKIP !== undefined, SKIP);
    const [amx, noAmx] = await Promise.all([kernelOf(WHOLE, FLAGS), kernelOf(WHOLE, NO_AMX)]);
    const tiles = [...instructionsPerFunction(amx.library.engine.soPath, /\btdpbf16ps\b/)];
    expect(tiles.filter(([fn]) => PREFILL_FUNCTIONS.test(fn)).length, `functions with TDPBF16PS: ${tiles.map(([fn]) => fn).join(", ")}`).toBeGreaterThan(0);
    expect(instructionsPerFunction(noAmx.library.engine.soPath, /\btdpbf16ps\b/).size).toBe(0);
    // the tiles sum the pairs in another order than VDPBF16PS: equal outputs would mean Linux refused the tiles
    const inputs = inputsOf(WHOLE, 11);
    const a = bf16Out(amx, inputs).out;
    const b = bf16Out(noAmx, inputs).out;
    expect(a.some((x, i) => x !== b[i]), "outputs identical to the -DMD_NO_AMX build's").toBe(true);
  });

  it("a head dim the tiles do not take (D 72) keeps the VDPBF16PS path: the -DMD_NO_AMX build's output exactly", async (ctx) => {
    ctx.skip(SKIP !== undefined, SKIP);
    const [amx, noAmx] = await Promise.all([kernelOf(UNTILED, FLAGS), kernelOf(UNTILED, NO_AMX)]);
    const inputs = inputsOf(UNTILED, 5);
    const want = referenceAttention(amx.graph, inputs);
    const a = bf16Out(amx, inputs).out;
    expectWithinBound(a, want.out, UNTILED.vmax, "D 72");
    expect(Array.from(a)).toEqual(Array.from(bf16Out(noAmx, inputs).out));
  });
});

describe("decoding on a CPU with AMX", () => {
  const vdpbf16psIn = (k: Kernel) =>
    [...instructionsPerFunction(k.library.engine.soPath, /\bvdpbf16ps\b/)].filter(([fn]) => DECODE_FUNCTIONS.test(fn)).reduce((n, [, c]) => n + c, 0);

  it("with GQA keeps fp32 FMA (bf16 and int8 K/V), -DMD_DEC_BF16_DOT keeps VDPBF16PS, G 1 keeps it: all within the bound", async (ctx) => {
    ctx.skip(SKIP !== undefined, SKIP);
    const [fma, dot, g1, int8Fma, int8Dot] = await Promise.all([
      kernelOf(DECODE_G4, FLAGS), kernelOf(DECODE_G4, DEC_DOT), kernelOf(DECODE_G1, FLAGS), kernelOf(DECODE_G4, FLAGS, "int8"), kernelOf(DECODE_G4, DEC_DOT, "int8"),
    ]);
    expect(vdpbf16psIn(fma), "VDPBF16PS in the decode functions of bf16 G 4").toBe(0);
    expect(vdpbf16psIn(int8Fma), "VDPBF16PS in the decode functions of int8 G 4").toBe(0);
    expect(vdpbf16psIn(dot), "bf16 G 4 with -DMD_DEC_BF16_DOT").toBeGreaterThan(0);
    expect(vdpbf16psIn(int8Dot), "int8 G 4 with -DMD_DEC_BF16_DOT").toBeGreaterThan(0);
    expect(vdpbf16psIn(g1), "bf16 G 1").toBeGreaterThan(0);
    for (const [k, c] of [[fma, DECODE_G4], [dot, DECODE_G4], [g1, DECODE_G1]] as const) {
      const inputs = inputsOf(c, 9);
      const want = referenceAttention(k.graph, inputs);
      expectWithinBound(fromBfloat16(k.run(inputs, { template: "flash_decoding" }).out.data as Uint16Array), want.out, c.vmax, c.name);
    }
    // on fp32 FMA the weights are not rounded to bf16: the two builds' outputs differ
    const inputs = inputsOf(DECODE_G4, 9);
    const a = fromBfloat16(fma.run(inputs, { template: "flash_decoding" }).out.data as Uint16Array);
    const b = fromBfloat16(dot.run(inputs, { template: "flash_decoding" }).out.data as Uint16Array);
    expect(a.some((x, i) => x !== b[i]), "outputs identical to the dot-product build's").toBe(true);
  });
});

describe.each(CASES)("AMX tiles: $name", (c) => {
  it("stays within the stated bound of the float64 reference", async (ctx) => {
    ctx.skip(SKIP !== undefined, SKIP);
    const k = await kernelOf(c, FLAGS);
    const inputs = inputsOf(c, c.lq * 3 + c.lkv);
    const want = referenceAttention(k.graph, inputs);
    const got = bf16Out(k, inputs);
    expectWithinBound(got.out, want.out, c.vmax, "AMX path");
    // lse comes from the unrounded fp32 weights: float32's tolerance
    const lse = compareOutputs(toFloat64(got.lse), want.lse, TOLERANCE.float32);
    expect(lse.ok, `lse: ${JSON.stringify(lse.firstFailure)}`).toBe(true);
  });
});

describe("AMX tiles: inf and NaN in V, 8-bit K/V", () => {
  it("a masked position's inf or NaN adds nothing; an attended inf reaches the row as IEEE arithmetic says", async (ctx) => {
    ctx.skip(SKIP !== undefined, SKIP);
    const c = NONFINITE;
    const k = await kernelOf(c, FLAGS);
    const inputs = inputsOf(c, 3);
    const v = fromBfloat16(inputs.value.data as Uint16Array);
    // one element of every ninth position from 4 on (positions the mask drops), and +inf at column 3 of position 20
    for (let pos = 4; pos < c.lkv; pos += 9) v[pos * c.dv + (pos % c.dv)] = pos % 2 ? NaN : Infinity;
    v[20 * c.dv + 3] = Infinity;
    const withGarbage = { ...inputs, value: tensor("bfloat16", inputs.value.shape, toBfloat16(v)) };
    const want = referenceAttention(k.graph, withGarbage).out;
    expect(want.some((x) => x === Infinity)).toBe(true);
    const cmp = compareOutputs(toFloat64(k.run(withGarbage, { template: "flash_attention" }).out), want, TOLERANCE.bfloat16);
    expect(cmp.nonFiniteMismatches).toBe(0);
    expect(cmp.ok, JSON.stringify(cmp.firstFailure)).toBe(true);
  });

  it.for(FORMATS)("%s K/V with a bf16 query, causal: within the bound with max |v| of the dequantized values", async (dtype, ctx) => {
    ctx.skip(SKIP !== undefined, SKIP);
    const c = EIGHT_BIT;
    const k = await kernelOf(c, FLAGS, dtype);
    const inputs = inputsOf(c, 7);
    const options = dtype === "int8" ? {} : { scale: [0.5, 1.25] };
    const key = quantizeKv(inputs.key, dtype, options);
    const value = quantizeKv(inputs.value, dtype, options);
    const quantized = { ...inputs, key: key.codes, value: value.codes, keyScale: key.scale, valueScale: value.scale };
    // the largest dequantized |v|: every code times its scale (int8: per (head, position); fp8: per head)
    const codes = toFloat64(value.codes);
    const scales = toFloat64(value.scale);
    let vmax = 0;
    for (let i = 0; i < codes.length; i++) {
      const row = Math.floor(i / c.dv);
      vmax = Math.max(vmax, Math.abs(codes[i] * (dtype === "int8" ? scales[row] : scales[Math.floor(row / c.lkv)])));
    }
    const want = referenceAttention(k.graph, quantized);
    expectWithinBound(bf16Out(k, quantized).out, want.out, vmax, dtype);
  });
});
