import { expect } from "vitest";
import type { TensorDType } from "../../../src/ir/graph.js";

/** Tolerances: fp32 accumulation for fp32 outputs; for bf16/fp16 the output rounding (half an ulp near 1). */
const OUT_TOL: Record<TensorDType, number> = { float32: 2e-5, bfloat16: 6e-3, float16: 1e-3 };

/** Element-wise |actual - expected| <= tol * max(1, |expected|); reports the first offender's index. */
export function expectClose(actual: ArrayLike<number>, expected: ArrayLike<number>, tol: number, what: string): void {
  expect(actual.length, `${what}: length`).toBe(expected.length);
  for (let i = 0; i < expected.length; ++i) {
    const e = expected[i];
    const a = actual[i];
    if (e === -Infinity || e === Infinity) {
      if (a !== e) expect.fail(`${what}[${i}] = ${a}, expected ${e}`);
      continue;
    }
    if (!(Math.abs(a - e) <= tol * Math.max(1, Math.abs(e)))) expect.fail(`${what}[${i}] = ${a}, expected ${e} (tol ${tol})`);
  }
}

export function expectAttention(
  got: { status: number; out: ArrayLike<number>; lse: ArrayLike<number> },
  want: { out: ArrayLike<number>; lse: ArrayLike<number> },
  dtype: TensorDType,
  what: string,
): void {
  expect(got.status, `${what}: status`).toBe(0);
  expectClose(got.out, want.out, OUT_TOL[dtype], `${what} out`);
  expectClose(got.lse, want.lse, 1e-5, `${what} lse`);
}
