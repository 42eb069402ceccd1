// Shared by the examples: compare a kernel output with the float64 reference within its dtype's tolerance.
import { compareOutputs, type Tensor, TOLERANCE, toFloat64 } from "minductor";

export function checkOutput(out: Tensor, reference: Float64Array, dtype: keyof typeof TOLERANCE): { maxAbs: number; ok: boolean } {
  const { maxAbs, ok } = compareOutputs(toFloat64(out), reference, TOLERANCE[dtype]);
  return { maxAbs, ok };
}
