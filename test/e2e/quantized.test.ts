/**
 * 8-bit key/value caches (DESIGN "Quantized KV"): the conversions of every code, the quantizer (TypeScript and the
 * engine's md_quantize_kv, bit for bit), its round-trip error, and every example spec with int8 and both fp8 formats,
 * both templates, against the float64 reference (which dequantizes exactly).
 */
import koffi from "koffi";
import { describe, expect, it } from "vitest";
import { compile, type Kernel } from "../../src/index.js";
import type { AttentionGraph, QuantizedDType } from "../../src/ir/graph.js";
import { generateInputs } from "../../src/io/generateInputs.js";
import { rng } from "../../src/io/random.js";
import { compareOutputs, TOLERANCE } from "../../src/reference/compareOutputs.js";
import { referenceAttention } from "../../src/reference/referenceAttention.js";
import { e4m3fnToF32, e5m2ToF32, f32ToE4m3fn, f32ToE5m2 } from "../../src/runtime/dtypes.js";
import { quantizeKv } from "../../src/runtime/quantize.js";
import { tensor, toFloat64 } from "../../src/runtime/tensor.js";
import type { KernelInputs } from "../../src/runtime/validateInputs.js";
import { cxxflagsFor, EXAMPLE_CASES, EXAMPLES, identity, ISAS, QUANTIZED, quantizedGraph } from "./quantizedKernels.js";

const kernels = new Map<string, Promise<Kernel>>();
function kernelOf(graph: AttentionGraph, isa = "native"): Promise<Kernel> {
  const key = JSON.stringify([isa, graph.name, graph.key.dtype, graph.query, graph.key.shape, graph.value.shape, graph.blockSize, graph.kvCache]);
  let k = kernels.get(key);
  if (!k) kernels.set(key, (k = compile(graph, { cxxflags: cxxflagsFor(isa) })));
  return k;
}

/** Quantized inputs from float ones: int8 per (token, head) scales; fp8 with uneven per-head scales. */
function quantizeInputs(graph: AttentionGraph, inputs: KernelInputs, dtype: QuantizedDType): KernelInputs {
  const hkv = graph.key.shape[1];
  const headScales = Array.from({ length: hkv }, (_, h) => 0.5 + h * 0.75);
  const options = dtype === "int8" ? {} : { scale: headScales };
  const key = quantizeKv(inputs.key, dtype, options);
  const value = quantizeKv(inputs.value, dtype, options);
  return { ...inputs, key: key.codes, value: value.codes, keyScale: key.scale, valueScale: value.scale };
}

describe("fp8 conversions", () => {
  it("decode the OCP formats' landmark codes", () => {
    // e4m3fn: bias 7, no infinities, S.1111.111 NaN, max 448; e5m2: bias 15, IEEE-like
    const e4m3: Array<[number, number]> = [[0x00, 0], [0x01, 2 ** -9], [0x07, 7 * 2 ** -9], [0x08, 2 ** -6], [0x38, 1], [0x3c, 1.5], [0x7e, 448], [0xfe, -448], [0x80, -0]];
    for (const [code, value] of e4m3) expect(e4m3fnToF32(code), `e4m3fn 0x${code.toString(16)}`).toBe(value);
    expect(e4m3fnToF32(0x7f)).toBeNaN();
    expect(e4m3fnToF32(0xff)).toBeNaN();
    const e5m2: Array<[number, number]> = [[0x01, 2 ** -16], [0x04, 2 ** -14], [0x3c, 1], [0x7b, 57344], [0x7c, Infinity], [0xfc, -Infinity]];
    for (const [code, value] of e5m2) expect(e5m2ToF32(code), `e5m2 0x${code.toString(16)}`).toBe(value);
    for (const code of [0x7d, 0x7e, 0x7f, 0xfd]) expect(e5m2ToF32(code)).toBeNaN();
  });

  it("decode every code to a distinct value, ordered like the codes (an independent enumeration of the formats)", () => {
    for (const [decode, expBits, manBits, bias, nanCodes] of [
      [e4m3fnToF32, 4, 3, 7, [0x7f]],
      [e5m2ToF32, 5, 2, 15, [0x7d, 0x7e, 0x7f]],
    ] as const) {
      // the positive values, built from the definition: subnormals m * 2^(1 - bias - manBits), then normals
      const want: number[] = [];
      for (let e = 0; e < 2 ** expBits; e++)
        for (let m = 0; m < 2 ** manBits; m++)
          want.push(e === 0 ? m * 2 ** (1 - bias - manBits) : (1 + m / 2 ** manBits) * 2 ** (e - bias));
      for (let code = 0; code < 128; code++) {
        if ((nanCodes as readonly number[]).includes(code)) continue;
        const isInf = expBits === 5 && code === 0x7c;
        expect(decode(code), `code ${code}`).toBe(isInf ? Infinity : want[code]);
        expect(decode(code | 0x80)).toBe(-decode(code));
      }
    }
  });

  it("encode: round to nearest even, saturate finite overflow, keep NaN (and e5m2's infinities)", () => {
    expect(f32ToE4m3fn(1)).toBe(0x38);
    expect(f32ToE4m3fn(1 + 1 / 16)).toBe(0x38); // a tie between 1 and 1.125: to the even mantissa
    expect(f32ToE4m3fn(1 + 3 / 16)).toBe(0x3a); // a tie between 1.125 and 1.25: to 1.25 (even)
    expect(f32ToE4m3fn(2 ** -10)).toBe(0x00); // half the smallest subnormal: to even (0)
    expect(f32ToE4m3fn(3 * 2 ** -10)).toBe(0x02); // 1.5 subnormal units: to 2
    expect(f32ToE4m3fn(464)).toBe(0x7e); // between 448 and the NaN code: saturates
    expect(f32ToE4m3fn(1e6)).toBe(0x7e);
    expect(f32ToE4m3fn(-1e6)).toBe(0xfe);
    expect(f32ToE4m3fn(Infinity)).toBe(0x7e);
    expect(e4m3fnToF32(f32ToE4m3fn(NaN))).toBeNaN();
    expect(f32ToE5m2(1e6)).toBe(0x7b);
    expect(f32ToE5m2(-Infinity)).toBe(0xfc);
    expect(e5m2ToF32(f32ToE5m2(NaN))).toBeNaN();
    // every finite code survives a round trip
    for (let code = 0; code < 256; code++) {
      if (!Number.isNaN(e4m3fnToF32(code))) expect(f32ToE4m3fn(e4m3fnToF32(code))).toBe(code === 0x80 ? 0x80 : code);
      if (Number.isFinite(e5m2ToF32(code))) expect(f32ToE5m2(e5m2ToF32(code))).toBe(code);
    }
  });

  const codeCases = QUANTIZED.flatMap((dtype) => Object.keys(ISAS).map((isa) => ({ dtype, isa })));
  it.each(codeCases)("the kernel decodes every $dtype code as TypeScript does (every template, $isa)", async ({ dtype, isa }) => {
    // The identity spec's engine (native: shared with the example cases below). One kv position: the output row is
    // that position's value row, i.e. its decoded codes (scale 1); four calls of 64 codes cover all 256.
    const kernel = await kernelOf(quantizedGraph(identity, dtype), isa);
    const ones = (n: number) => tensor("float32", [1, 8, n], new Float32Array(8 * n).fill(1));
    const scales = dtype === "int8" ? { keyScale: ones(1), valueScale: ones(1) } : {};
    // -0 comes out as +0 (the accumulator starts at +0); NaN codes as NaN, which toEqual matches
    const unsigned = (x: Float64Array) => Array.from(x, (v) => (v === 0 ? 0 : v));
    for (let first = 0; first < 256; first += 64) {
      const codes = Uint8Array.from({ length: 8 * 64 }, (_, i) => first + (i % 64));
      const value = dtype === "int8" ? tensor("int8", [1, 8, 1, 64], new Int8Array(codes.buffer)) : tensor(dtype, [1, 8, 1, 64], codes);
      const key = tensor(dtype, [1, 8, 1, 64]);
      const want = unsigned(toFloat64(value));
      for (const template of ["flash_attention", "flash_decoding", "naive"] as const) {
        const { out } = kernel.run({ query: tensor("float32", [1, 8, 1, 64]), key, value, ...scales }, { template });
        expect(unsigned(toFloat64(out)), `${template} codes ${first}..${first + 63}`).toEqual(want);
      }
    }
  });
});

describe("the quantizer", () => {
  const r = rng(17);
  const values = tensor("float32", [2, 3, 5, 32], Float32Array.from({ length: 2 * 3 * 5 * 32 }, (_, i) => (i % 97 === 0 ? 0 : r.normal(0, 3))));

  it("int8: scale max|row| / 127, codes within half a step of the values", () => {
    const { codes, scale } = quantizeKv(values, "int8");
    expect(scale.shape).toEqual([2, 3, 5]);
    const x = toFloat64(values);
    const c = toFloat64(codes);
    const s = toFloat64(scale);
    for (let row = 0; row < 30; row++) {
      let amax = 0;
      for (let d = 0; d < 32; d++) amax = Math.max(amax, Math.abs(x[row * 32 + d]));
      expect(s[row]).toBe(Math.fround(amax / 127));
      for (let d = 0; d < 32; d++) {
        expect(Math.abs(c[row * 32 + d])).toBeLessThanOrEqual(127);
        // half a step, plus the float32 rounding of x / scale
        expect(Math.abs(x[row * 32 + d] - s[row] * c[row * 32 + d])).toBeLessThanOrEqual(s[row] * (0.5 + 1e-6));
      }
    }
  });

  it.each(["float8_e4m3fn", "float8_e5m2"] as const)("%s: relative error at most half an ulp of the format", (dtype) => {
    const { codes, scale } = quantizeKv(values, dtype, { scale: [0.5, 1, 4] });
    expect(Array.from(toFloat64(scale))).toEqual([0.5, 1, 4]);
    const x = toFloat64(values);
    const c = toFloat64(codes);
    const bound = dtype === "float8_e4m3fn" ? 2 ** -4 : 2 ** -3;
    for (let i = 0; i < x.length; i++) {
      const head = Math.floor(i / (5 * 32)) % 3;
      const s = [0.5, 1, 4][head];
      const back = s * c[i];
      // normal range: relative; near zero: half the smallest subnormal step
      const tiny = s * (dtype === "float8_e4m3fn" ? 2 ** -10 : 2 ** -17);
      expect(Math.abs(x[i] - back)).toBeLessThanOrEqual(Math.max(bound * Math.abs(x[i]) * (1 + 1e-6), tiny * (1 + 1e-6)));
    }
  });

  it("writes a [Hkv, D] token into a view of a pool without allocating codes", () => {
    const pool = tensor("int8", [4, 3, 8, 32]);
    const scales = tensor("float32", [4, 3, 8]);
    const token = tensor("float32", [3, 32], Float32Array.from({ length: 96 }, (_, i) => i - 40));
    // page 2, slot 5 of a head-major pool
    const out = { ...pool, shape: [3, 32], strides: [8 * 32, 1], offset: (2 * 3 * 8 + 5) * 32 };
    const outScale = { ...scales, shape: [3], strides: [8], offset: 2 * 3 * 8 + 5 };
    const q = quantizeKv(token, "int8", { out, outScale });
    expect(q.codes).toBe(out);
    const want = quantizeKv(token, "int8");
    for (let h = 0; h < 3; h++) {
      expect((scales.data as Float32Array)[(2 * 3 + h) * 8 + 5]).toBe((want.scale.data as Float32Array)[h]);
      for (let d = 0; d < 32; d++) expect((pool.data as Int8Array)[((2 * 3 + h) * 8 + 5) * 32 + d]).toBe((want.codes.data as Int8Array)[h * 32 + d]);
    }
  });

  it.each(QUANTIZED)("the engine's md_quantize_kv gives the TypeScript quantizer's bits (%s)", async (dtype) => {
    const kernel = await kernelOf(quantizedGraph(identity, dtype));
    const lib = koffi.load(kernel.library.engine.soPath);
    const quantize = lib.func("md_quantize_kv", "int32_t", ["const float *", "int64_t", "int64_t", "void *", "float *"]);
    // 2 * 3 * 5 rows of 32: for fp8, row r belongs to head r % 3 (a [.., Hkv, D] layout)
    const flat = tensor("float32", [10, 3, 32], values.data as Float32Array);
    const want = quantizeKv(flat, dtype, dtype === "int8" ? {} : { scale: [0.5, 1, 4] });
    const codes = dtype === "int8" ? new Int8Array(960) : new Uint8Array(960);
    const scales = dtype === "int8" ? new Float32Array(30) : Float32Array.from({ length: 30 }, (_, r) => [0.5, 1, 4][r % 3]);
    expect(quantize(values.data, 30, 32, codes, scales)).toBe(0);
    expect(Array.from(codes)).toEqual(Array.from(want.codes.data as Int8Array | Uint8Array));
    if (dtype === "int8") expect(Array.from(scales)).toEqual(Array.from(want.scale.data as Float32Array));
  });
});

describe("scales the kernel checks", () => {
  it("a negative, infinite or NaN scale in a scale tensor too large to scan per call is an InputError from the kernel's check, naming it", async () => {
    const graph = quantizedGraph(identity, "int8");
    const kernel = await kernelOf(graph);
    const kvLen = 40; // 8 heads x 40 > 256 scales: checked as the kernel reads them
    const base = generateInputs({ ...identity }, 3, { batch: 1, qLen: 1, kvLen });
    const inputs = quantizeInputs(graph, base, "int8");
    expect(() => kernel.run(inputs)).not.toThrow();
    for (const [tensor, at, bad] of [["valueScale", 5 * kvLen + 21, -1], ["keyScale", 2 * kvLen + 17, NaN], ["valueScale", 7 * kvLen + 39, Infinity]] as const) {
      const scales = inputs[tensor]!.data as Float32Array;
      const good = scales[at]!;
      scales[at] = bad;
      const message = new RegExp(`^${tensor} holds ${bad} \\(data index ${at}\\); scales must be finite and non-negative$`);
      for (const template of ["flash_attention", "flash_decoding"] as const) {
        expect(() => kernel.run(inputs, { template }), `${tensor}[${at}] = ${bad}, ${template}`).toThrow(message);
        await expect(kernel.runAsync(inputs, { template }), `${tensor}[${at}] = ${bad}, ${template}, async`).rejects.toThrow(message);
      }
      scales[at] = good;
    }
    expect(() => kernel.run(inputs)).not.toThrow();
  });

  it("a bad scale the call does not read (a page no sequence uses) does not fail it once the tensor is too large to scan; one it reads does", async () => {
    const graph = quantizedGraph(EXAMPLES.find(([name]) => name === "paged_decode")![1], "int8");
    const kernel = await kernelOf(graph);
    const base = generateInputs({ ...graph, key: { ...graph.key, dtype: graph.query.dtype }, value: { ...graph.value, dtype: graph.query.dtype } }, 4, { batch: 2, qLen: 1, kvLen: 150 });
    const inputs = quantizeInputs(graph, base, "int8");
    // scales [64 pages, 8 heads, 64 slots], 32768 > 256: left to the kernel; the two sequences use 6 of the pages
    const [, hkv, pageSize] = inputs.keyScale!.shape;
    const used = new Set(inputs.pageTable!.data as Int32Array);
    const unused = [...Array(inputs.keyScale!.shape[0]).keys()].find((p) => !used.has(p))!;
    const scales = inputs.keyScale!.data as Float32Array;
    scales[(unused * hkv + 5) * pageSize + 7] = NaN;
    for (const template of ["flash_attention", "flash_decoding"] as const) expect(() => kernel.run(inputs, { template }), template).not.toThrow();
    const read = (inputs.pageTable!.data as Int32Array)[0]; // the first page of the first sequence, position 3 of head 2
    scales[(read * hkv + 2) * pageSize + 3] = -1;
    for (const template of ["flash_attention", "flash_decoding"] as const) expect(() => kernel.run(inputs, { template }), template).toThrow(/^keyScale holds /);
  });
});

describe("every example spec with a quantized key/value", () => {
  const cases = EXAMPLE_CASES;
  // Start every build at once: g++ runs one per core while the first cases wait for theirs.
  for (const c of cases) kernelOf(c.graph).catch(() => {});

  it.concurrent.each(cases)("$name, $dtype: both templates match the float64 reference", async ({ name, graph, dtype }) => {
    const kernel = await kernelOf(graph);
    const decode = graph.query.shape[2] === 1;
    const base = generateInputs({ ...graph, key: { ...graph.key, dtype: graph.query.dtype }, value: { ...graph.value, dtype: graph.query.dtype } }, 5, {
      batch: 2,
      qLen: decode ? 3 : 37,
      kvLen: 150,
    });
    const inputs = quantizeInputs(graph, base, dtype);
    const ref = referenceAttention(graph, inputs);
    const tol = TOLERANCE[graph.query.dtype];
    for (const template of ["flash_attention", "flash_decoding"] as const) {
      const result = kernel.run(inputs, { template, partitionSize: graph.blockSize[1] });
      const out = compareOutputs(toFloat64(result.out), ref.out, tol);
      expect(out.ok, `${name} ${dtype} ${template} ${JSON.stringify(out)}`).toBe(true);
      if (result.lse) expect(compareOutputs(toFloat64(result.lse), ref.lse, TOLERANCE.float32).ok).toBe(true);
    }
  });
});
