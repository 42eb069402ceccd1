import { expect } from "vitest";
import { compile, type Kernel } from "../../src/index.js";
import { rng } from "../../src/io/random.js";
import { TOLERANCE } from "../../src/reference/compareOutputs.js";
import { toBfloat16 } from "../../src/runtime/dtypes.js";
import { tensor } from "../../src/runtime/tensor.js";
import type { KernelInputs } from "../../src/runtime/validateInputs.js";

/**
 * Cases, inputs and the error bound of the tests of bf16 products (test/kernel/bf16Dot.test.ts on VDPBF16PS,
 * test/kernel/amxTiles.test.ts on AMX tiles): a bf16 query, bf16 or 8-bit K/V, [1, H, L, D] tensors.
 */
export interface Bf16Case {
  name: string;
  hq: number;
  hkv: number;
  d: number;
  dv: number;
  lq: number;
  lkv: number;
  block: [number, number];
  /** Values are uniform in [-vmax, vmax]: the bound scales with max |v|. */
  vmax: number;
  scoreMod?: string;
  maskMod?: string;
}

/** The spec of a case, named `name`, with K/V of `kvDtype`. */
export function bf16SpecOf(c: Bf16Case, name: string, kvDtype: string = "bfloat16"): Record<string, unknown> {
  return {
    name,
    query: { shape: [1, c.hq, c.lq, c.d], dtype: "bfloat16" },
    key: { shape: [1, c.hkv, c.lkv, c.d], dtype: kvDtype },
    value: { shape: [1, c.hkv, c.lkv, c.dv], dtype: kvDtype },
    blockSize: c.block,
    returnLse: true,
    ...(c.scoreMod ? { scoreMod: c.scoreMod } : {}),
    ...(c.maskMod ? { maskMod: c.maskMod } : {}),
  };
}

/** Seeded bf16 inputs: q and k uniform in [-1, 1], v in [-vmax, vmax]. */
export function bf16InputsOf(c: Bf16Case, seed: number): KernelInputs {
  const r = rng(seed);
  const uniform = (shape: number[], max: number) =>
    tensor("bfloat16", shape, toBfloat16(Float32Array.from({ length: shape.reduce((x, y) => x * y) }, () => (r.float() * 2 - 1) * max)));
  return { query: uniform([1, c.hq, c.lq, c.d], 1), key: uniform([1, c.hkv, c.lkv, c.d], 1), value: uniform([1, c.hkv, c.lkv, c.dv], c.vmax) };
}

/**
 * The bound of docs/spec.md ("bfloat16 dot products"): |out - exact| <= 2^-8 max|v| (P rounded to bf16, relative 2^-8
 * per weight: half an ulp of 8 significant bits; the sum of weights from the unrounded fp32 P) + 2^-8 |exact| (the
 * output rounded to bf16) + the fp32 accumulation, taken as float32's tolerance times max|v|.
 */
export function expectWithinBf16Bound(got: Float32Array, want: Float64Array, vmax: number, what: string): void {
  const fp32 = TOLERANCE.float32.atol * vmax;
  for (let i = 0; i < want.length; i++) {
    const bound = 2 ** -8 * vmax + 2 ** -8 * Math.abs(want[i]) + fp32;
    if (!(Math.abs(got[i] - want[i]) <= bound)) expect.fail(`${what}: out[${i}] = ${got[i]}, reference ${want[i]}, bound ${bound}`);
  }
}

/**
 * A memoised compile() of a file's cases (spec name `name`): one build per case, K/V dtype and flags, started when first
 * asked for, so a file can start all its builds at import and its tests share them.
 */
export function bf16Kernels(name: string): (c: Bf16Case, flags: string[], kvDtype?: string) => Promise<Kernel> {
  const kernels = new Map<string, Promise<Kernel>>();
  return (c, flags, kvDtype = "bfloat16") => {
    const key = `${c.name}|${kvDtype}|${flags.join(" ")}`;
    let k = kernels.get(key);
    if (!k) kernels.set(key, (k = compile(bf16SpecOf(c, name, kvDtype), { cxxflags: flags, tuning: false })));
    return k;
  };
}
