import type { TensorDType } from "../ir/graph.js";

/**
 * Tolerances of a kernel against the float64 reference, per dtype: |got - want| <= atol + rtol * |want|.
 * fp32 accumulates in fp32 (about 1e-6 relative per dot product at D = 128); bf16 and fp16 add the rounding of
 * the output to 8 or 11 significant bits (at most 2^-8 and 2^-11 relative: half an ulp) on top of that.
 */
export const TOLERANCE: Readonly<Record<TensorDType, { atol: number; rtol: number }>> = {
  float32: { atol: 2e-5, rtol: 2e-5 },
  bfloat16: { atol: 1e-2, rtol: 1e-2 },
  float16: { atol: 2e-3, rtol: 2e-3 },
};

export interface Comparison {
  /** Largest |got - want|. */
  maxAbs: number;
  /** Largest |got - want| / |want| over elements with |want| > atol. */
  maxRel: number;
  /** Elements outside the tolerance. */
  failures: number;
  /** First element outside the tolerance, for the error message. */
  firstFailure?: { index: number; got: number; want: number };
  /** NaN or inf where the reference has the other, or a finite value. */
  nonFiniteMismatches: number;
  ok: boolean;
}

/** Compares outputs element by element; infinities and NaNs must match exactly (as lse = -inf for masked rows). */
export function compareOutputs(got: ArrayLike<number>, want: ArrayLike<number>, tol: { atol: number; rtol: number }): Comparison {
  if (got.length !== want.length) throw new Error(`length ${got.length} differs from the reference's ${want.length}`);
  let maxAbs = 0;
  let maxRel = 0;
  let failures = 0;
  let nonFiniteMismatches = 0;
  let firstFailure: Comparison["firstFailure"];
  for (let i = 0; i < got.length; i++) {
    const g = got[i];
    const w = want[i];
    if (!Number.isFinite(w) || !Number.isFinite(g)) {
      if (!(Object.is(g, w) || (Number.isNaN(g) && Number.isNaN(w)))) {
        nonFiniteMismatches++;
        failures++;
        firstFailure ??= { index: i, got: g, want: w };
      }
      continue;
    }
    const d = Math.abs(g - w);
    maxAbs = Math.max(maxAbs, d);
    if (Math.abs(w) > tol.atol) maxRel = Math.max(maxRel, d / Math.abs(w));
    if (d > tol.atol + tol.rtol * Math.abs(w)) {
      failures++;
      firstFailure ??= { index: i, got: g, want: w };
    }
  }
  return { maxAbs, maxRel, failures, firstFailure, nonFiniteMismatches, ok: failures === 0 };
}
