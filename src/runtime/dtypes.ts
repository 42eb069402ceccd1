/**
 * Exact conversions between float32 and the two 16-bit float formats the kernels accept, with
 * round-to-nearest-even as the C++ side (and PyTorch) does it. 16-bit values travel as their bit
 * patterns in a Uint16Array because JS has no 16-bit float type on Node 20.
 *
 * Every conversion *to* a 16-bit format first rounds its input to float32, exactly as a C++ `float`
 * holding the value would; that is the semantics the kernels and PyTorch's `.to(bfloat16)` share.
 */

// One scratch word reinterpreted as float32 and uint32: the only portable way to read float bits in JS.
const scratchF32 = new Float32Array(1);
const scratchU32 = new Uint32Array(scratchF32.buffer);

/** Canonical quiet NaNs, the patterns numpy and PyTorch produce. */
const BF16_QUIET_NAN = 0x7fc0;
const F16_QUIET_NAN = 0x7e00;

function f32Bits(x: number): number {
  scratchF32[0] = x;
  return scratchU32[0];
}

function bitsToF32(bits: number): number {
  scratchU32[0] = bits >>> 0;
  return scratchF32[0];
}

/** bfloat16 is the top half of a float32; rounding happens on the dropped low 16 bits. */
function bf16FromF32Bits(bits: number): number {
  if ((bits & 0x7fffffff) > 0x7f800000) return ((bits >>> 16) & 0x8000) | BF16_QUIET_NAN;
  // Adding 0x7fff plus the kept lsb rounds ties to even; a carry into the exponent gives inf, as it should.
  return ((bits + 0x7fff + ((bits >>> 16) & 1)) >>> 16) & 0xffff;
}

/** Rounds `value >> shift` to nearest even, for 1 <= shift <= 31. */
function shiftRoundEven(value: number, shift: number): number {
  const kept = value >>> shift;
  const rest = value & ((1 << shift) - 1);
  const half = 1 << (shift - 1);
  return rest > half || (rest === half && (kept & 1) === 1) ? kept + 1 : kept;
}

function f16FromF32Bits(bits: number): number {
  const sign = (bits >>> 16) & 0x8000;
  const exponent = (bits >>> 23) & 0xff;
  const mantissa = bits & 0x7fffff;
  if (exponent === 0xff) return mantissa === 0 ? sign | 0x7c00 : sign | F16_QUIET_NAN;
  const halfExponent = exponent - 127 + 15;
  if (halfExponent >= 31) return sign | 0x7c00;
  if (halfExponent <= 0) {
    // Subnormal result: the value with its implicit bit, shifted down to units of 2^-24.
    // Below 2^-25 (shift > 24) everything rounds to zero, and float32 subnormals land there too.
    const shift = 14 - halfExponent;
    if (shift > 24) return sign;
    return sign | shiftRoundEven(mantissa | 0x800000, shift);
  }
  // A carry out of the mantissa bumps the exponent, and from 0x7bff it yields inf (0x7c00): both correct.
  return sign | shiftRoundEven((halfExponent << 23) | mantissa, 13);
}

/** float32 (the input is first rounded to float32) -> bfloat16 bits, round to nearest even. */
export function f32ToBf16Bits(x: number): number {
  return bf16FromF32Bits(f32Bits(x));
}

/** bfloat16 bits -> the float32 value they denote (exact). */
export function bf16BitsToF32(bits: number): number {
  return bitsToF32((bits & 0xffff) << 16);
}

/** float32 (the input is first rounded to float32) -> IEEE binary16 bits, round to nearest even. */
export function f32ToF16Bits(x: number): number {
  return f16FromF32Bits(f32Bits(x));
}

/** IEEE binary16 bits -> the float32 value they denote (exact: every half is a float32). */
export function f16BitsToF32(bits: number): number {
  const sign = bits & 0x8000 ? -1 : 1;
  const exponent = (bits >>> 10) & 0x1f;
  const mantissa = bits & 0x3ff;
  if (exponent === 0x1f) return mantissa === 0 ? sign * Infinity : NaN;
  if (exponent === 0) return sign * mantissa * 2 ** -24;
  return sign * (1024 + mantissa) * 2 ** (exponent - 25);
}

function asFloat32Array(values: Float32Array | ArrayLike<number>): Float32Array {
  return values instanceof Float32Array ? values : Float32Array.from(values);
}

function bitsOf(values: Float32Array | ArrayLike<number>): Uint32Array {
  const f32 = asFloat32Array(values);
  return new Uint32Array(f32.buffer, f32.byteOffset, f32.length);
}

/** Bulk float32 -> bfloat16 bits (RNE). Plain numbers are rounded to float32 first. */
export function toBfloat16(values: Float32Array | ArrayLike<number>): Uint16Array {
  const bits = bitsOf(values);
  const out = new Uint16Array(bits.length);
  for (let i = 0; i < bits.length; i++) out[i] = bf16FromF32Bits(bits[i]);
  return out;
}

/** Bulk bfloat16 bits -> float32. */
export function fromBfloat16(bits: Uint16Array): Float32Array {
  const out = new Float32Array(bits.length);
  const outBits = new Uint32Array(out.buffer);
  for (let i = 0; i < bits.length; i++) outBits[i] = bits[i] << 16;
  return out;
}

/** Bulk float32 -> binary16 bits (RNE, subnormals, overflow to inf). Plain numbers are rounded to float32 first. */
export function toFloat16(values: Float32Array | ArrayLike<number>): Uint16Array {
  const bits = bitsOf(values);
  const out = new Uint16Array(bits.length);
  for (let i = 0; i < bits.length; i++) out[i] = f16FromF32Bits(bits[i]);
  return out;
}

/** Bulk binary16 bits -> float32. */
export function fromFloat16(bits: Uint16Array): Float32Array {
  const out = new Float32Array(bits.length);
  for (let i = 0; i < bits.length; i++) out[i] = f16BitsToF32(bits[i]);
  return out;
}

/**
 * OCP float8 e4m3fn code -> the value it denotes: sign, 4 exponent bits (bias 7), 3 mantissa bits; exponent 0 is
 * subnormal (m / 8 * 2^-6); no infinities, and S.1111.111 is NaN (so 448 is the largest finite value).
 */
export function e4m3fnToF32(code: number): number {
  const sign = code & 0x80 ? -1 : 1;
  const exponent = (code >>> 3) & 0xf;
  const mantissa = code & 0x7;
  if (exponent === 0xf && mantissa === 0x7) return NaN;
  if (exponent === 0) return sign * mantissa * 2 ** -9;
  return sign * (8 + mantissa) * 2 ** (exponent - 10);
}

/** OCP float8 e5m2 code -> its value: the top byte of an IEEE binary16 (bias 15, infinities and NaNs as IEEE). */
export function e5m2ToF32(code: number): number {
  return f16BitsToF32((code & 0xff) << 8);
}

/**
 * float32 (the input is first rounded to float32) -> OCP fp8 code, round to nearest even. Overflow saturates: a finite
 * value beyond the largest code becomes it (+-448 for e4m3fn, +-57344 for e5m2), and so does an infinity for e4m3fn,
 * which has none (e5m2 keeps infinities); NaN gives NaN (0x7f with the sign). This is the saturating convention of
 * scaled fp8 quantizers (PyTorch's own scalar cast turns e4m3fn overflow into NaN instead).
 */
function f32ToFp8(x: number, expBits: 4 | 5): number {
  const manBits = expBits === 4 ? 3 : 2;
  const bias = expBits === 4 ? 7 : 15;
  const maxCode = expBits === 4 ? 0x7e : 0x7b;
  const bits = f32Bits(x);
  const sign = (bits >>> 24) & 0x80;
  const a = bits & 0x7fffffff;
  if (a > 0x7f800000) return sign | 0x7f;
  if (a === 0x7f800000) return sign | (expBits === 5 ? 0x7c : maxCode);
  const field = (a >>> 23) - 127 + bias;
  let code: number;
  if (field >= 1) {
    code = field * 2 ** manBits + shiftRoundEven(a & 0x7fffff, 23 - manBits);
  } else {
    const shift = 23 - manBits + (1 - field);
    if (shift > 24 || a >>> 23 === 0) return sign;
    code = shiftRoundEven((a & 0x7fffff) | 0x800000, shift);
  }
  return sign | Math.min(code, maxCode);
}

export function f32ToE4m3fn(x: number): number {
  return f32ToFp8(x, 4);
}

export function f32ToE5m2(x: number): number {
  return f32ToFp8(x, 5);
}
