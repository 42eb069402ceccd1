import { describe, expect, it } from "vitest";
import { compile } from "../../src/index.js";
import { compareOutputs, TOLERANCE } from "../../src/reference/compareOutputs.js";
import { referenceAttention } from "../../src/reference/referenceAttention.js";
import type { KernelInputs } from "../../src/runtime/validateInputs.js";
import { tensor, toFloat64 } from "../../src/runtime/tensor.js";
import { FUZZ_CXXFLAGS } from "./runFuzz.js";

/*
 * Shrunk cases of differences the fuzzer (or probing next to it) found. Each is marked as a known bug and
 * expected to fail (as test/e2e/ieee.test.ts does), naming the component at fault: fixing it flips the test,
 * and then `.fails` goes.
 */

const cxxflags = FUZZ_CXXFLAGS;
const ones = (shape: number[], value = 1) => tensor("float32", shape, new Float32Array(shape.reduce((a, b) => a * b, 1)).fill(value));

describe("a call with no kv positions at all (kv_len 0)", () => {
  // Found by the fuzzer as a paged call whose only sequence is empty: koffi passes NULL for the empty kv_indices of
  // a mask over zero kv blocks, which the native argument check refused (status 2) until it allowed that case.
  const spec = (paged: boolean) => ({
    name: "empty_kv",
    query: { shape: [1, 1, 1, 16], dtype: "float32" },
    key: { shape: paged ? [1, 1, 16, 16] : [1, 1, 1, 16], dtype: "float32" },
    value: { shape: paged ? [1, 1, 16, 16] : [1, 1, 1, 16], dtype: "float32" },
    blockSize: [16, 16],
    ...(paged ? { kvCache: { pageSize: 16 } } : {}),
    returnLse: true,
  });
  const inputs = (paged: boolean): KernelInputs => ({
    query: ones([1, 1, 1, 16]),
    key: ones(paged ? [1, 1, 16, 16] : [1, 1, 0, 16]),
    value: ones(paged ? [1, 1, 16, 16] : [1, 1, 0, 16]),
    ...(paged ? { pageTable: tensor("int32", [1, 1], Int32Array.of(0)), seqLens: tensor("int32", [1], Int32Array.of(0)) } : {}),
  });

  it.each([
    ["unpaged, Lkv = 0", "flash_attention", false],
    ["unpaged, Lkv = 0", "flash_decoding", false],
    ["paged, every sequence empty", "flash_attention", true],
    ["paged, every sequence empty", "flash_decoding", true],
  ] as const)("%s, %s: zeros and lse = -inf, like the naive template and the reference", async (_what, template, paged) => {
    const kernel = await compile(spec(paged), { cxxflags });
    const ref = referenceAttention(kernel.graph, inputs(paged));
    expect([...ref.out]).toEqual(new Array(16).fill(0));
    expect([...ref.lse]).toEqual([-Infinity]);
    const result = kernel.run(inputs(paged), { template });
    expect([...toFloat64(result.out)]).toEqual([...ref.out]);
    expect([...toFloat64(result.lse!)]).toEqual([...ref.lse]);
  });
});

describe("int64 beyond 2^53 in the reference", () => {
  // The kernel computes int64 as docs/expressions.md says (exact, wrapping on overflow). The reference interpreter
  // (src/ir/evalExpr.ts) used to widen int64 buffer values to doubles and compute + - * // abs neg in doubles, so
  // beyond 2^53 it rounded and never wrapped, and kept positions the kernel masked. It now reads int64 buffers as
  // bigints and computes int64 exactly with the kernel's wrapping (numbers while safe, BigInt beyond), and rounds
  // an int64 converted to float32 once, from the exact value. `masked`: the comparison is false, so every position is
  // masked and lse = -inf; otherwise every position is kept.
  it.each([
    ["lb[0] == lb[1]", [2n ** 53n, 2n ** 53n + 1n], true],
    ["lb[0] + lb[0] > 0", [2n ** 62n, 0n], true],
    ["lb[0] // (-1) > 0", [-(2n ** 63n), 0n], true],
    ["abs(lb[0]) >= 0", [-(2n ** 63n), 0n], true],
    ["lb[0] * lb[1] < 0", [2n ** 62n + 3n, 2n], false],
    ["lb[0] // lb[1] == lb[0] && lb[0] % lb[1] == 0", [-(2n ** 63n), -1n], false],
    // int64 -> float32: 2^24 + 1 rounds to 2^24; 2^60 + 2^36 + 1 to 2^60 + 2^37 (through a double first, to 2^60).
    ["lb[0] * 1.0 == lb[1] * 1.0", [2n ** 24n + 1n, 2n ** 24n], false],
    ["lb[0] * 1.0 == lb[1] * 1.0", [2n ** 60n + 2n ** 36n + 1n, 2n ** 60n + 2n ** 37n], false],
  ] as const)("mask %s with lb = %s (masked everywhere: %s): kernel and reference agree", async (maskMod, values, masked) => {
    const kernel = await compile({
      name: "int64_edges",
      query: { shape: [1, 1, 1, 16], dtype: "float32" },
      key: { shape: [1, 1, 4, 16], dtype: "float32" },
      value: { shape: [1, 1, 4, 16], dtype: "float32" },
      blockSize: [16, 16],
      maskMod,
      buffers: { lb: { shape: [2], dtype: "int64" } },
      returnLse: true,
    }, { cxxflags });
    const inputs: KernelInputs = {
      query: ones([1, 1, 1, 16], 0.1),
      key: ones([1, 1, 4, 16], 0.2),
      value: ones([1, 1, 4, 16]),
      buffers: { lb: tensor("int64", [2], BigInt64Array.from(values)) },
    };
    const result = kernel.run(inputs);
    const ref = referenceAttention(kernel.graph, inputs);
    const lse = toFloat64(result.lse!)[0];
    // Kept: four equal scores 0.25 * 16 * 0.02 = 0.08, so lse = 0.08 + ln 4 and the output is the value row (ones).
    if (masked) expect(lse).toBe(-Infinity);
    else expect(lse).toBeCloseTo(0.08 + Math.log(4), 5);
    toFloat64(result.out).forEach((x) => expect(x).toBeCloseTo(masked ? 0 : 1, 5));
    expect(compareOutputs(toFloat64(result.lse!), ref.lse, TOLERANCE.float32).ok).toBe(true);
    expect(compareOutputs(toFloat64(result.out), ref.out, TOLERANCE.float32).ok).toBe(true);
    // The public createBlockMask evaluates the mask in TypeScript with the same interpreter: the same blocks.
    const viaMask = kernel.run({ ...inputs, blockMask: kernel.createBlockMask(1, 1, 4, { buffers: inputs.buffers }) });
    expect([...toFloat64(viaMask.lse!)]).toEqual([lse]);
  });
});
