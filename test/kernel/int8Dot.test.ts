/**
 * int8 keys on integer dot products (decoding with a bfloat16 or float16 query): each query row rounded to int16 times
 * a power-of-two scale, q . k as 16-bit multiply-adds (VPDPWSSD with AVX512-VNNI or AVX-VNNI, VPMADDWD elsewhere).
 * Against the float64 reference within the query dtype's tolerance, at a head dim that ends in a partial vector;
 * proof that the path runs (the decode functions hold the instructions, a build with -DMD_NO_INT8_DOT does not, and
 * their outputs differ); the 256-bit form, built for -march=haswell, with a float16 query at G 3 (its blocks of four
 * query rows and of one, which reads the row from L1 on 16 registers); the 512-bit form without
 * VNNI (-march=skylake-avx512); and query rows with NaN or inf, whose kv head keeps the float32 path, against the
 * reference's NaN and inf rows.
 * Runs on x86 CPUs with AVX2; elsewhere each test is skipped with that reason.
 */
import { readFileSync } from "node:fs";
import { describe, expect, it } from "vitest";
import { compile, type Kernel } from "../../src/index.js";
import { TOLERANCE } from "../../src/reference/compareOutputs.js";
import { referenceAttention } from "../../src/reference/referenceAttention.js";
import { rng } from "../../src/io/random.js";
import { quantizeKv } from "../../src/runtime/quantize.js";
import { fromFloat64, tensor, toFloat64 } from "../../src/runtime/tensor.js";
import type { KernelInputs } from "../../src/runtime/validateInputs.js";
import { FAST_BUILD_CXXFLAGS } from "../helpers/fastBuilds.js";
import { instructionsPerFunction } from "../helpers/objdump.js";

const CPU_FLAGS = new Set(readFileSync("/proc/cpuinfo", "utf8").match(/^flags\s*:(.*)$/m)?.[1].trim().split(/\s+/) ?? []);
const SKIP = CPU_FLAGS.has("avx2") ? undefined : "this CPU has no avx2 (/proc/cpuinfo), so no build here takes the int8 dot-product path";

const NATIVE = FAST_BUILD_CXXFLAGS;
const FP32_PATH = [...NATIVE, "-DMD_NO_INT8_DOT"];
const HASWELL = NATIVE.map((f) => (f === "-march=native" ? "-march=haswell" : f));
/** AVX-512BW without VNNI: VPMADDWD and an add on 512-bit vectors. */
const SKYLAKE = NATIVE.map((f) => (f === "-march=native" ? "-march=skylake-avx512" : f));
const SKIP_SKYLAKE = SKIP ?? (CPU_FLAGS.has("avx512bw") && CPU_FLAGS.has("avx512vl") ? undefined : "this CPU has no avx512bw/avx512vl (/proc/cpuinfo) to run a -march=skylake-avx512 build");
/** The decode functions, with md_vi_dot (the multiply-add itself), which an -O0 build keeps apart. */
const DECODE_FUNCTIONS = /md_dec_task|md_dot_rows|md_dot_block|md_vi_dot/;
const INT16_DOTS = /\bvpdpwssd\b|\bvpmaddwd\b/;

/** G 4, D 136 (four whole 32-lane vectors and a partial one; eight 16-lane and a partial one: on AVX2 a query row no
 * longer fits in registers beside the accumulators), q_len 3, 333 positions. */
const HQ = 8, HKV = 2, D = 136, DV = 40, LQ = 3, LKV = 333;
/** G 3 for the 256-bit form: nine rows a kv head, blocks of four, four and one (md_dot_block's one-row form too). */
const HQ_G3 = 6;

function specOf(dtype: "bfloat16" | "float16", hq = HQ) {
  return {
    name: "int8_dot",
    query: { shape: [1, hq, LQ, D], dtype },
    key: { shape: [1, HKV, LKV, D], dtype: "int8" },
    value: { shape: [1, HKV, LKV, DV], dtype: "int8" },
    blockSize: [16, 32],
    maskMod: "q_idx + 330 >= kv_idx",
    returnLse: true,
  };
}

const kernels = new Map<string, Promise<Kernel>>();
function kernelOf(dtype: "bfloat16" | "float16", flags: string[], hq = HQ): Promise<Kernel> {
  const key = `${dtype}|${flags.join(" ")}|${hq}`;
  let k = kernels.get(key);
  if (!k) kernels.set(key, (k = compile(specOf(dtype, hq), { cxxflags: flags, tuning: false })));
  return k;
}
if (SKIP === undefined) {
  for (const [dtype, flags] of [["bfloat16", NATIVE], ["bfloat16", FP32_PATH]] as const) kernelOf(dtype, flags).catch(() => {});
  kernelOf("float16", HASWELL, HQ_G3).catch(() => {});
}
if (SKIP_SKYLAKE === undefined) kernelOf("bfloat16", SKYLAKE).catch(() => {});

/** Query values over [-1, 1] with every fifth element 8x larger (int16 steps then matter for the small ones). */
function inputsOf(dtype: "bfloat16" | "float16", seed: number, hq = HQ): KernelInputs {
  const r = rng(seed);
  const values = (n: number, f: (i: number) => number) => Float64Array.from({ length: n }, (_, i) => f(i));
  const query = fromFloat64(values(hq * LQ * D, (i) => (r.float() * 2 - 1) * (i % 5 === 0 ? 8 : 1)), dtype, [1, hq, LQ, D]);
  const key = quantizeKv(fromFloat64(values(HKV * LKV * D, () => r.normal()), "float32", [1, HKV, LKV, D]), "int8");
  const value = quantizeKv(fromFloat64(values(HKV * LKV * DV, () => r.normal()), "float32", [1, HKV, LKV, DV]), "int8");
  return { query, key: key.codes, value: value.codes, keyScale: key.scale, valueScale: value.scale };
}

/** Every element within the tolerance of the reference's, NaN where it is NaN and the same infinity where it is one. */
function expectLikeReference(got: Float64Array, want: Float64Array, dtype: "bfloat16" | "float16", what: string): void {
  const { atol, rtol } = TOLERANCE[dtype];
  for (let i = 0; i < want.length; i++) {
    const ok = Number.isNaN(want[i]) ? Number.isNaN(got[i]) : Number.isFinite(want[i]) ? Math.abs(got[i] - want[i]) <= atol + rtol * Math.abs(want[i]) : got[i] === want[i];
    if (!ok) expect.fail(`${what}: out[${i}] = ${got[i]}, reference ${want[i]}`);
  }
}

function decodeOut(k: Kernel, inputs: KernelInputs): Float64Array {
  return toFloat64(k.run(inputs, { template: "flash_decoding", partitionSize: 128 }).out);
}

describe("int8 keys on integer dot products (decode)", () => {
  it("a bf16 query: the decode functions hold 16-bit multiply-adds, the output is within tolerance and differs from the fp32 path's", async (ctx) => {
    ctx.skip(SKIP !== undefined, SKIP);
    const [dot, fp32] = await Promise.all([kernelOf("bfloat16", NATIVE), kernelOf("bfloat16", FP32_PATH)]);
    const count = (k: Kernel) => [...instructionsPerFunction(k.library.engine.soPath, INT16_DOTS)].filter(([fn]) => DECODE_FUNCTIONS.test(fn)).reduce((n, [, c]) => n + c, 0);
    expect(count(dot), "integer dot products in the decode functions").toBeGreaterThan(0);
    expect(count(fp32), "integer dot products with -DMD_NO_INT8_DOT").toBe(0);
    const inputs = inputsOf("bfloat16", 1);
    const want = referenceAttention(dot.graph, inputs).out;
    const out = decodeOut(dot, inputs);
    expectLikeReference(out, want, "bfloat16", "integer path");
    const outFp32 = decodeOut(fp32, inputs);
    expectLikeReference(outFp32, want, "bfloat16", "fp32 path");
    expect(out.some((x, i) => x !== outFp32[i]), "outputs identical to the fp32 path's").toBe(true);
  });

  const targets = [
    { name: "AVX2 (-march=haswell) with an fp16 query, G 3", dtype: "float16", flags: HASWELL, hq: HQ_G3, mnemonic: /\bvpmaddwd\b/, skip: SKIP, seed: 2 },
    { name: "AVX-512BW without VNNI (-march=skylake-avx512)", dtype: "bfloat16", flags: SKYLAKE, hq: HQ, mnemonic: /\bvpmaddwd\b.*%zmm/, skip: SKIP_SKYLAKE, seed: 4 },
  ] as const;
  it.for(targets)("$name: VPMADDWD (on its vector width) in the decode functions, within tolerance", async (t, ctx) => {
    ctx.skip(t.skip !== undefined, t.skip);
    const k = await kernelOf(t.dtype, [...t.flags], t.hq);
    const madds = [...instructionsPerFunction(k.library.engine.soPath, t.mnemonic)].filter(([fn]) => DECODE_FUNCTIONS.test(fn));
    expect(madds.length, "VPMADDWD in the decode functions").toBeGreaterThan(0);
    const inputs = inputsOf(t.dtype, t.seed, t.hq);
    expectLikeReference(decodeOut(k, inputs), referenceAttention(k.graph, inputs).out, t.dtype, t.name);
  });

  it("query rows with NaN or inf keep the fp32 path for their kv head and come out as the reference's", async (ctx) => {
    ctx.skip(SKIP !== undefined, SKIP);
    const k = await kernelOf("bfloat16", NATIVE);
    const inputs = inputsOf("bfloat16", 3);
    const q = toFloat64(inputs.query);
    q[(1 * LQ + 0) * D + 5] = NaN; // head 1 (kv head 0), row 0
    q[(6 * LQ + 2) * D + 70] = Infinity; // head 6 (kv head 1), row 2
    q[(4 * LQ + 1) * D + 70] = -Infinity; // head 4 (kv head 1), row 1: every score -inf, a row that attends nothing
    // key element 70 positive at every position of kv head 1, so that row's scores are all -inf (not NaN)
    const codes = Int8Array.from(inputs.key.data as Int8Array);
    for (let pos = 0; pos < LKV; pos++) codes[(1 * LKV + pos) * D + 70] = 5;
    const withSpecials = {
      ...inputs,
      query: fromFloat64(q, "bfloat16", [1, HQ, LQ, D]),
      key: tensor("int8", [1, HKV, LKV, D], codes),
    };
    const want = referenceAttention(k.graph, withSpecials).out;
    const row = (h: number, i: number) => want.subarray((h * LQ + i) * DV, (h * LQ + i + 1) * DV);
    expect(row(1, 0).every(Number.isNaN) && row(6, 2).every(Number.isNaN), "the reference's NaN rows").toBe(true);
    expect(row(4, 1).every((x) => x === 0), "the reference's row of -inf scores is zeros").toBe(true);
    expectLikeReference(decodeOut(k, withSpecials), want, "bfloat16", "non-finite query rows");
  });
});
