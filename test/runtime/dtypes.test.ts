import { describe, expect, it } from "vitest";
import {
  bf16BitsToF32,
  f16BitsToF32,
  f32ToBf16Bits,
  f32ToF16Bits,
  fromBfloat16,
  fromFloat16,
  toBfloat16,
  toFloat16,
} from "../../src/runtime/dtypes.js";
import { rng } from "../../src/io/random.js";

const ALL_16_BIT = Uint16Array.from({ length: 65536 }, (_, i) => i);

/** Checks every item and reports the first failures; one expect per item would make these loops slow. */
function failures<T>(items: Iterable<T>, ok: (item: T) => boolean): T[] {
  const bad: T[] = [];
  for (const item of items) if (!ok(item) && bad.push(item) >= 10) break;
  return bad;
}

function isNanBits16(bits: number, exponentMask: number): boolean {
  return (bits & exponentMask) === exponentMask && (bits & 0x7fff & ~exponentMask) !== 0;
}

function f32FromBits(bits: number): number {
  return new Float32Array(new Uint32Array([bits]).buffer)[0];
}

function f32BitsOf(x: number): number {
  return new Uint32Array(new Float32Array([x]).buffer)[0];
}

/** Rounds a non-negative integer-valued-after-scaling double to nearest, ties to even. */
function roundHalfEven(n: number): number {
  const floor = Math.floor(n);
  const fraction = n - floor;
  if (fraction > 0.5) return floor + 1;
  if (fraction < 0.5) return floor;
  return floor % 2 === 0 ? floor : floor + 1;
}

function exactLog2Floor(a: number): number {
  let e = Math.floor(Math.log2(a));
  while (2 ** e > a) e--;
  while (2 ** (e + 1) <= a) e++;
  return e;
}

/**
 * The value a binary float with `mantissaBits` explicit bits, minimum normal exponent `minExponent` and
 * overflow threshold `overflowAt` (the midpoint past the largest finite) gives to x, computed from the
 * definition of the format with plain double arithmetic (exact: every step scales by powers of two).
 */
function referenceRound(x: number, mantissaBits: number, minExponent: number, overflowAt: number): number {
  const a = Math.abs(x);
  const sign = x < 0 || Object.is(x, -0) ? -1 : 1;
  if (a >= overflowAt) return sign * Infinity;
  if (a === 0) return sign * 0;
  const quantum = 2 ** (Math.max(exactLog2Floor(a), minExponent) - mantissaBits);
  return sign * roundHalfEven(a / quantum) * quantum;
}

const F16_OVERFLOW = 65520; // midpoint of 65504 and 2^16
const BF16_OVERFLOW = (2 - 2 ** -8) * 2 ** 127; // midpoint of the largest bfloat16 and 2^128

/** Random float32 values with exponents spread over [lo, hi] (unbiased exponents), random signs and mantissas. */
function randomFloats(seed: number, count: number, lo: number, hi: number): Float32Array {
  const r = rng(seed);
  const out = new Float32Array(count);
  for (let i = 0; i < count; i++) {
    const biased = r.int(lo + 127, hi + 128);
    out[i] = f32FromBits(((r.int(0, 2) << 31) | (biased << 23) | r.int(0, 1 << 23)) >>> 0);
  }
  return out;
}

describe("float16", () => {
  it("decodes hand-picked bit patterns", () => {
    const cases: [number, number][] = [
      [0x0000, 0],
      [0x3c00, 1],
      [0xc000, -2],
      [0x3555, 0.333251953125],
      [0x7bff, 65504],
      [0x0400, 2 ** -14],
      [0x03ff, 2 ** -14 - 2 ** -24],
      [0x0001, 2 ** -24],
      [0x7c00, Infinity],
      [0xfc00, -Infinity],
    ];
    for (const [bits, value] of cases) expect(f16BitsToF32(bits)).toBe(value);
    expect(Object.is(f16BitsToF32(0x8000), -0)).toBe(true);
    expect(f16BitsToF32(0x7e00)).toBeNaN();
    expect(f16BitsToF32(0xfc01)).toBeNaN();
  });

  it("round-trips every one of the 65536 bit patterns through float32", () => {
    const bad = failures(ALL_16_BIT, (bits) => {
      const value = f16BitsToF32(bits);
      // Every half is a float32, so decoding must not round.
      if (!Object.is(Math.fround(value), value)) return false;
      if (isNanBits16(bits, 0x7c00)) return Number.isNaN(value) && f32ToF16Bits(value) === 0x7e00;
      return f32ToF16Bits(value) === bits;
    });
    expect(bad).toEqual([]);
  });

  it("decodes every bit pattern as the format's definition says", () => {
    const bad = failures(ALL_16_BIT, (bits) => {
      if (isNanBits16(bits, 0x7c00)) return true;
      const sign = bits & 0x8000 ? -1 : 1;
      const exponent = (bits >> 10) & 0x1f;
      const mantissa = bits & 0x3ff;
      const expected =
        exponent === 31 ? sign * Infinity
        : exponent === 0 ? sign * (mantissa / 1024) * 2 ** -14
        : sign * (1 + mantissa / 1024) * 2 ** (exponent - 15);
      return Object.is(f16BitsToF32(bits), expected);
    });
    expect(bad).toEqual([]);
  });

  it("rounds ties to even, underflows through subnormals and overflows to inf", () => {
    const cases: [number, number][] = [
      [1 + 2 ** -11, 0x3c00], // tie between 1 and 1+2^-10: keeps the even 1
      [1 + 3 * 2 ** -11, 0x3c02], // tie between 1+2^-10 and 1+2^-9: goes up to even
      [1 + 2 ** -11 + 2 ** -20, 0x3c01], // just above the tie
      [-(1 + 2 ** -11), 0xbc00],
      [65504, 0x7bff],
      [65519.99, 0x7bff],
      [65520, 0x7c00], // tie with 2^16 rounds to the even exponent, i.e. overflows
      [1e9, 0x7c00],
      [-1e9, 0xfc00],
      [2 ** -25, 0x0000], // half the smallest subnormal: tie to even zero
      [2 ** -25 * 1.0001, 0x0001],
      [3 * 2 ** -25, 0x0002], // tie between 1 and 2 units
      [5 * 2 ** -25, 0x0002], // tie between 2 and 3 units
      [2 ** -14 - 2 ** -25, 0x0400], // largest subnormal + half a unit rounds up into the normals
      [1e-30, 0x0000],
      [f32FromBits(0x00000001), 0x0000], // a float32 subnormal
    ];
    for (const [value, bits] of cases) expect(f32ToF16Bits(value), `f16(${value})`).toBe(bits);
    expect(f32ToF16Bits(-1e-30)).toBe(0x8000);
    expect(f32ToF16Bits(NaN)).toBe(0x7e00);
    expect(f32ToF16Bits(Infinity)).toBe(0x7c00);
  });

  it("matches a from-first-principles rounding on random float32 values", () => {
    const values = randomFloats(7, 20000, -30, 17);
    const bits = toFloat16(values);
    const bad = failures(values.keys(), (i) => {
      const expected = referenceRound(values[i], 10, -14, F16_OVERFLOW);
      return Object.is(f16BitsToF32(bits[i]), expected) && f32ToF16Bits(values[i]) === bits[i];
    });
    expect(bad.map((i) => values[i])).toEqual([]);
  });

  it("bulk conversions agree with the scalar ones and quiet signalling NaNs", () => {
    const decoded = fromFloat16(ALL_16_BIT);
    expect(failures(ALL_16_BIT, (bits) => Object.is(decoded[bits], f16BitsToF32(bits)))).toEqual([]);
    // A signalling float32 NaN (only the lowest mantissa bit set) must not become inf.
    const nan = new Float32Array(new Uint32Array([0x7f800001, 0xff800001]).buffer);
    expect([...toFloat16(nan)]).toEqual([0x7e00, 0xfe00]);
    expect([...toFloat16([1, 0.5, -2])]).toEqual([0x3c00, 0x3800, 0xc000]);
  });
});

describe("bfloat16", () => {
  it("round-trips every one of the 65536 bit patterns through float32", () => {
    const bad = failures(ALL_16_BIT, (bits) => {
      const value = bf16BitsToF32(bits);
      if (isNanBits16(bits, 0x7f80)) {
        const back = f32ToBf16Bits(value);
        return Number.isNaN(value) && isNanBits16(back, 0x7f80) && (back & 0x0040) !== 0;
      }
      return f32BitsOf(value) === bits << 16 >>> 0 && f32ToBf16Bits(value) === bits;
    });
    expect(bad).toEqual([]);
  });

  it("decodes every bit pattern as the format's definition says", () => {
    const bad = failures(ALL_16_BIT, (bits) => {
      if (isNanBits16(bits, 0x7f80)) return true;
      const sign = bits & 0x8000 ? -1 : 1;
      const exponent = (bits >> 7) & 0xff;
      const mantissa = bits & 0x7f;
      const expected =
        exponent === 255 ? sign * Infinity
        : exponent === 0 ? sign * (mantissa / 128) * 2 ** -126
        : sign * (1 + mantissa / 128) * 2 ** (exponent - 127);
      return Object.is(bf16BitsToF32(bits), expected);
    });
    expect(bad).toEqual([]);
  });

  it("rounds ties to even and overflows to inf", () => {
    const cases: [number, number][] = [
      [1, 0x3f80],
      [1 + 2 ** -8, 0x3f80], // tie: keep the even 1
      [1 + 3 * 2 ** -8, 0x3f82], // tie: round up to even
      [1 + 2 ** -8 + 2 ** -23, 0x3f81],
      [-(1 + 2 ** -8), 0xbf80],
      [3.140625, 0x4049],
      [f32FromBits(0x7f7fffff), 0x7f80], // the largest float32 is past bfloat16's overflow midpoint
      [f32FromBits(0x7f7f7fff), 0x7f7f],
      [f32FromBits(0x00000001), 0x0000], // subnormals round like any other value
      [f32FromBits(0x00008000), 0x0000], // tie at the bottom: to even zero
      [f32FromBits(0x00018000), 0x0002],
    ];
    for (const [value, bits] of cases) expect(f32ToBf16Bits(value), `bf16(${value})`).toBe(bits);
  });

  it("rounds a double to float32 first, as a C++ float holding it would", () => {
    // 1 + 2^-8 + 2^-30 is above the bf16 tie as a double, but is exactly the tie once stored in a float.
    expect(f32ToBf16Bits(1 + 2 ** -8 + 2 ** -30)).toBe(0x3f80);
    expect(f32ToF16Bits(1 + 2 ** -11 + 2 ** -40)).toBe(0x3c00);
  });

  it("matches a from-first-principles rounding on random float32 values", () => {
    const values = randomFloats(11, 20000, -127, 127);
    const bits = toBfloat16(values);
    const bad = failures(values.keys(), (i) => {
      const expected = referenceRound(values[i], 7, -126, BF16_OVERFLOW);
      return Object.is(bf16BitsToF32(bits[i]), expected) && f32ToBf16Bits(values[i]) === bits[i];
    });
    expect(bad.map((i) => values[i])).toEqual([]);
  });

  it("bulk conversions agree with the scalar ones and keep NaNs NaN", () => {
    const decoded = fromBfloat16(ALL_16_BIT);
    expect(failures(ALL_16_BIT, (bits) => Object.is(decoded[bits], bf16BitsToF32(bits)))).toEqual([]);
    const nan = new Float32Array(new Uint32Array([0x7f800001, 0xff800001, 0x7fc00000]).buffer);
    expect([...toBfloat16(nan)]).toEqual([0x7fc0, 0xffc0, 0x7fc0]);
    expect([...toBfloat16([1, -0.5, Infinity])]).toEqual([0x3f80, 0xbf00, 0x7f80]);
  });
});
