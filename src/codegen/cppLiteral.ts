import type { DType } from "../ir/ops.js";

/**
 * A float32 value as an exact C++ literal: integers below 2^24 in decimal (`30.0f`), everything else as a
 * hex float whose mantissa is the value's 24-bit significand (`0x1p-3f`), so no decimal rounding is involved.
 */
export function cppFloat(value: number): string {
  const x = Math.fround(value);
  if (Number.isNaN(x)) return "NAN";
  if (x === Infinity) return "INFINITY";
  if (x === -Infinity) return "(-INFINITY)";
  if (Object.is(x, -0)) return "(-0.0f)";
  if (Number.isInteger(x) && Math.abs(x) < 2 ** 24) return `${x < 0 ? "(" : ""}${x}.0f${x < 0 ? ")" : ""}`;
  let mantissa = Math.abs(x);
  let exponent = 0;
  // Scale to an integer significand; float32 values need at most 149 + 24 steps.
  while (!Number.isInteger(mantissa)) {
    mantissa *= 2;
    exponent -= 1;
  }
  while (mantissa % 2 === 0 && mantissa !== 0) {
    mantissa /= 2;
    exponent += 1;
  }
  const literal = `0x${mantissa.toString(16)}p${exponent}f`;
  return x < 0 ? `(-${literal})` : literal;
}

/** An int64 value as a C++ literal (safe integers only, which is all a mod can hold). */
export function cppInt(value: number): string {
  if (!Number.isSafeInteger(value)) throw new RangeError(`${value} is not a safe integer`);
  return value < 0 ? `(-INT64_C(${-value}))` : `INT64_C(${value})`;
}

export function cppConstant(value: number | boolean, dtype: DType): string {
  if (dtype === "bool") return value ? "true" : "false";
  return dtype === "int64" ? cppInt(Number(value)) : cppFloat(Number(value));
}

export const CPP_TYPE: Readonly<Record<DType, string>> = { bool: "bool", int64: "int64_t", float32: "float" };
