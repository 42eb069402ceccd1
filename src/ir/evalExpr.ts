import { constValue, type Expr, topoSort, varName } from "./expr.js";
import type { DType, Op } from "./ops.js";

/**
 * A scalar value inside a mod: bool as boolean, float32 as number, int64 as a number while it is a safe integer
 * (|x| <= 2^53 - 1) and as a bigint beyond. int64 values are exact and wrap as the kernel's two's complement
 * arithmetic does; the representation is canonical (a bigint is never a safe integer), so `===` compares them.
 */
export type Value = number | bigint | boolean;

/**
 * A captured buffer as the interpreter reads it: row-major values. Numbers and booleans as they are; an int64
 * buffer may be given as its BigInt64Array (or bigints), which keeps values beyond 2^53 exact.
 */
export interface BufferValues {
  readonly values: ArrayLike<number> | ArrayLike<boolean> | ArrayLike<bigint>;
  readonly shape: readonly number[];
}

export interface EvalEnv {
  score: number;
  b: number;
  h: number;
  q_idx: number;
  kv_idx: number;
  readonly buffers: readonly BufferValues[];
}

/** Raised when a mod indexes a captured buffer out of range (the kernel reports status 1 for the same thing). */
export class BufferIndexError extends Error {
  constructor(readonly buffer: string, readonly indices: readonly (number | bigint)[], readonly shape: readonly number[]) {
    super(`a mod indexed buffer '${buffer}' at [${indices.join(", ")}], outside its shape [${shape.join(", ")}]`);
    this.name = "BufferIndexError";
  }
}

const INT64_LIMIT = 2 ** 63;

/** Integer floor division and modulo with the sign of the divisor; division by zero gives 0 (see docs/expressions.md). */
export function intFloorDivMod(a: number, b: number): [number, number] {
  if (b === 0) return [0, 0];
  let q = Math.floor(a / b);
  let r = a - q * b;
  if (r !== 0 && r < 0 !== b < 0) {
    q -= 1;
    r += b;
  } else if (Math.abs(r) >= Math.abs(b)) {
    q += 1;
    r -= b;
  }
  return [q, r];
}

/** Python's float modulo (the sign of the divisor), as torch.remainder computes it. */
export function floatMod(a: number, b: number): number {
  const r = a % b;
  return r !== 0 && r < 0 !== b < 0 ? r + b : r;
}

/**
 * Float to int64 as the generated code does it (truncation, NaN to 0, saturation at the int64 range), as the
 * nearest double; the evaluator itself keeps the exact value (see toInt64).
 */
export function floatToInt(x: number): number {
  if (Number.isNaN(x)) return 0;
  return Math.max(-INT64_LIMIT, Math.min(INT64_LIMIT, Math.trunc(x))) + 0;
}

// ---- exact int64 ------------------------------------------------------------------------------------------
// Fast path: both operands are numbers (safe integers) and the result provably is one; otherwise BigInt with
// BigInt.asIntN(64, ...), which is the kernel's wrapping, and the result goes back to a number when it is safe.

type Int = number | bigint;
const MAX_SAFE = Number.MAX_SAFE_INTEGER;
const MAX_SAFE_BIG = BigInt(MAX_SAFE);
const INT64_MIN = -(2n ** 63n);
const INT64_MAX = 2n ** 63n - 1n;

/** The canonical int64 of an integer: wrapped to 64 bits, a number when safe. */
function int64(x: bigint): Int {
  const w = BigInt.asIntN(64, x);
  return w >= -MAX_SAFE_BIG && w <= MAX_SAFE_BIG ? Number(w) : w;
}
const big = (x: Int): bigint => (typeof x === "bigint" ? x : BigInt(x));

// For safe integers a and b the exact a + b, a - b or a * b is safe exactly when its double is: a safe exact
// result is an exactly representable integer, and an unsafe one rounds to at least 2^53 in magnitude (rounding is
// monotone and 2^53 is a double). So the double result, range-checked, decides without a second computation.
const isSafeResult = (r: number): boolean => r >= -MAX_SAFE && r <= MAX_SAFE;

function add64(a: Int, b: Int): Int {
  if (typeof a === "number" && typeof b === "number") {
    const r = a + b;
    if (isSafeResult(r)) return r;
  }
  return int64(big(a) + big(b));
}

function sub64(a: Int, b: Int): Int {
  if (typeof a === "number" && typeof b === "number") {
    const r = a - b;
    if (isSafeResult(r)) return r;
  }
  return int64(big(a) - big(b));
}

function mul64(a: Int, b: Int): Int {
  if (typeof a === "number" && typeof b === "number") {
    const r = a * b;
    if (isSafeResult(r)) return r + 0; // 0 * -3 is -0 in doubles
  }
  return int64(big(a) * big(b));
}

// neg(INT64_MIN) and abs(INT64_MIN) wrap to INT64_MIN; the negation of a safe integer is safe.
const neg64 = (a: Int): Int => (typeof a === "number" ? 0 - a : int64(-a));
const abs64 = (a: Int): Int => (typeof a === "number" ? Math.abs(a) : a < 0n ? int64(-a) : a);
// ~a is -a - 1, which leaves the safe range only at a = 2^53 - 1.
const bitnot64 = (a: Int): Int => (typeof a === "number" && a < MAX_SAFE ? -a - 1 : int64(~big(a)));

/**
 * Floor division and modulo (the sign of the divisor) as the kernel's floordiv/floormod: x // 0 = x % 0 = 0,
 * x // -1 = neg(x) (so INT64_MIN // -1 wraps to INT64_MIN) and x % -1 = 0. On safe integers `%` is exact (it is
 * fmod) and a - a % b is an exact multiple of b below 2^53, so the quotient divides exactly.
 */
function floorDiv64(a: Int, b: Int): Int {
  if (typeof a === "number" && typeof b === "number") {
    if (b === 0) return 0;
    const r = a % b;
    const q = (a - r) / b;
    return (r !== 0 && r < 0 !== b < 0 ? q - 1 : q) + 0;
  }
  const x = big(a);
  const y = big(b);
  if (y === 0n) return 0;
  if (y === -1n) return int64(-x);
  const q = x / y; // truncates toward zero
  return int64(x % y !== 0n && x < 0n !== y < 0n ? q - 1n : q);
}

function floorMod64(a: Int, b: Int): Int {
  if (typeof a === "number" && typeof b === "number") {
    if (b === 0) return 0;
    const r = a % b;
    return r !== 0 && r < 0 !== b < 0 ? r + b : r + 0;
  }
  const x = big(a);
  const y = big(b);
  if (y === 0n || y === -1n) return 0;
  const r = x % y;
  return int64(r !== 0n && r < 0n !== y < 0n ? r + y : r);
}

/** & | ^ on int64: JS's 32-bit operators are exact on int32 operands, anything wider goes through BigInt. */
const bitwise64 = (small: (a: number, b: number) => number, wide: (a: bigint, b: bigint) => bigint) =>
  (a: Int, b: Int): Int =>
    typeof a === "number" && typeof b === "number" && (a | 0) === a && (b | 0) === b ? small(a, b) : int64(wide(big(a), big(b)));

/**
 * The float32 nearest to an int64, ties to even, rounded once from the exact value as the kernel's (float) cast
 * is. A safe integer is an exact double, so Math.fround rounds it once; Math.fround(Number(bigint)) would round
 * twice (to double, then to float32), which can land on the other side of a float32 tie.
 */
function int64ToFloat32(x: Int): number {
  if (typeof x === "number") return Math.fround(x);
  const negative = x < 0n;
  let m = negative ? -x : x;
  const extra = m.toString(2).length - 24; // bits below float32's 24-bit significand
  if (extra <= 0) return Number(x);
  const shift = BigInt(extra);
  const rest = m & ((1n << shift) - 1n);
  const half = 1n << (shift - 1n);
  m >>= shift;
  if (rest > half || (rest === half && (m & 1n) === 1n)) m += 1n;
  const r = Number(m) * 2 ** extra; // m <= 2^24: exact
  return negative ? -r : r;
}

/** Float to int64 as the kernel's to_int: truncation toward zero, NaN to 0, saturation at the int64 range. */
function toInt64(x: number): Int {
  if (Number.isNaN(x)) return 0;
  const t = Math.trunc(x);
  if (isSafeResult(t)) return t + 0;
  if (t >= INT64_LIMIT) return INT64_MAX;
  if (t <= -INT64_LIMIT) return INT64_MIN;
  return BigInt(t); // an integral double inside the int64 range converts exactly
}

/** A buffer element as an int64 value: bigints from a BigInt64Array, numbers from int32 buffers (or older callers). */
function loadedInt(v: number | bigint | boolean): Int {
  if (typeof v === "bigint") return int64(v);
  if (typeof v === "boolean") return Number(v);
  return Number.isSafeInteger(v) ? v + 0 : toInt64(v);
}

// ---- the op table -------------------------------------------------------------------------------------------

const num = (v: Value): number => (typeof v === "boolean" ? Number(v) : (v as number));
const nanMin = (a: number, b: number): number => (Number.isNaN(a) || Number.isNaN(b) ? NaN : Math.min(a, b));
const nanMax = (a: number, b: number): number => (Number.isNaN(a) || Number.isNaN(b) ? NaN : Math.max(a, b));
// Relational operators are exact between numbers and bigints; bools compare as 0 and 1.
const cmpArg = (v: Value): number | bigint => (typeof v === "boolean" ? Number(v) : v);

/** One op on positional operands (unused ones are ignored). */
type Impl = (a: Value, b: Value, c: Value) => Value;
/** Chooses an op's implementation from its result type and its (already coerced) operand type. */
type ImplFor = (dtype: DType, operandType: DType) => Impl;

const floatFn = (f: (x: number) => number): ImplFor => () => (a) => f(a as number);
/** int64 through the exact helpers, float32 (and anything else) on numbers. */
const intOrFloat = (ints: (a: Int, b: Int) => Int, floats: (a: number, b: number) => number): ImplFor => (_d, t) =>
  t === "int64" ? (a, b) => ints(a as Int, b as Int) : (a, b) => floats(num(a), num(b));
const compare = (f: (a: number | bigint, b: number | bigint) => boolean): ImplFor => (_d, t) =>
  t === "bool" ? (a, b) => f(cmpArg(a), cmpArg(b)) : (a, b) => f(a as number | bigint, b as number | bigint);
const logical = (bools: (a: boolean, b: boolean) => boolean, ints: (a: Int, b: Int) => Int): ImplFor => (_d, t) =>
  t === "bool" ? (a, b) => bools(a as boolean, b as boolean) : (a, b) => ints(a as Int, b as Int);
const minMax = (bools: (a: boolean, b: boolean) => boolean, ints: (a: Int, b: Int) => Int, floats: (a: number, b: number) => number): ImplFor =>
  (d) => (d === "bool" ? (a, b) => bools(a as boolean, b as boolean) : d === "int64" ? (a, b) => ints(a as Int, b as Int) : (a, b) => floats(num(a), num(b)));

function castImpl(dtype: DType, from: DType): Impl {
  if (dtype === from) return (a) => a;
  if (dtype === "bool") return (a) => (typeof a === "bigint" ? a !== 0n : a !== 0); // NaN is true
  if (dtype === "int64") return from === "bool" ? (a) => Number(a) : (a) => toInt64(a as number);
  // float32: an int64 is rounded to float32 (the conversion itself, in every mode), a bool is 0 or 1.
  return from === "int64" ? (a) => int64ToFloat32(a as Int) : (a) => Number(a);
}

const IMPLS: Readonly<Record<Op, ImplFor | null>> = {
  var: null,
  const: null,
  load: null,
  neg: (d) => (d === "int64" ? (a) => neg64(a as Int) : (a) => -num(a)),
  not: () => (a) => !a,
  bitnot: () => (a) => bitnot64(a as Int),
  abs: (d) => (d === "int64" ? (a) => abs64(a as Int) : (a) => Math.abs(num(a))),
  floor: (d) => (d === "int64" ? (a) => a : (a) => Math.floor(num(a))),
  ceil: (d) => (d === "int64" ? (a) => a : (a) => Math.ceil(num(a))),
  exp: floatFn(Math.exp),
  exp2: floatFn((x) => 2 ** x),
  log: floatFn(Math.log),
  log2: floatFn(Math.log2),
  sqrt: floatFn(Math.sqrt),
  rsqrt: floatFn((x) => 1 / Math.sqrt(x)),
  tanh: floatFn(Math.tanh),
  sigmoid: floatFn((x) => 1 / (1 + Math.exp(-x))),
  silu: floatFn((x) => x / (1 + Math.exp(-x))),
  sin: floatFn(Math.sin),
  cos: floatFn(Math.cos),
  tan: floatFn(Math.tan),
  cast: castImpl,
  add: intOrFloat(add64, (x, y) => x + y),
  sub: intOrFloat(sub64, (x, y) => x - y),
  mul: intOrFloat(mul64, (x, y) => x * y),
  div: () => (a, b) => num(a) / num(b),
  floordiv: intOrFloat(floorDiv64, (x, y) => Math.floor(x / y)),
  mod: intOrFloat(floorMod64, floatMod),
  pow: () => (a, b) => Math.pow(num(a), num(b)),
  min: minMax((x, y) => x && y, (x, y) => (x < y ? x : y), nanMin),
  max: minMax((x, y) => x || y, (x, y) => (x > y ? x : y), nanMax),
  // int64 values are canonical (a bigint is never equal to a number), so === is exact across both.
  eq: compare((x, y) => x === y),
  ne: compare((x, y) => x !== y),
  lt: compare((x, y) => x < y),
  le: compare((x, y) => x <= y),
  gt: compare((x, y) => x > y),
  ge: compare((x, y) => x >= y),
  and: logical((x, y) => x && y, bitwise64((x, y) => x & y, (x, y) => x & y)),
  or: logical((x, y) => x || y, bitwise64((x, y) => x | y, (x, y) => x | y)),
  xor: logical((x, y) => x !== y, bitwise64((x, y) => x ^ y, (x, y) => x ^ y)),
  where: () => (a, b, c) => (a ? b : c),
};

/** The type an op computes in: its last operand's (the value operands of `where`, the source of a cast). */
const operandTypeOf = (e: Expr): DType => (e.src.length > 0 ? e.src[e.src.length - 1].dtype : e.dtype);

function implOf(e: Expr): Impl {
  const implFor = IMPLS[e.op];
  if (!implFor) throw new Error(`op ${e.op} is a leaf`);
  return implFor(e.dtype, operandTypeOf(e));
}

/** How each op computes, on values of its (already coerced) operand type; float results are not rounded here. */
type Semantics = (args: Value[], dtype: DType, operandType: DType) => Value;

export const SEMANTICS: Readonly<Record<Op, Semantics | null>> = Object.fromEntries(
  Object.entries(IMPLS).map(([op, implFor]) => [
    op,
    implFor && ((args: Value[], dtype: DType, operandType: DType) => implFor(dtype, operandType)(args[0], args[1], args[2])),
  ]),
) as Record<Op, Semantics | null>;

/**
 * Applies one op to values; `roundFloat` is identity for the float64 reference and Math.fround for folding.
 * int64 is computed exactly; a result outside the safe range comes back as its nearest double, which is never a
 * safe integer, so a caller that needs exactness (the simplifier's folding) tells it by Number.isSafeInteger.
 */
export function applyOp(e: Expr, args: Value[], roundFloat: (x: number) => number): number | boolean {
  const v = implOf(e)(args[0], args[1], args[2]);
  if (e.dtype === "float32") return roundFloat(v as number);
  return typeof v === "bigint" ? Number(v) : v;
}

const EXACT_FLOAT = (x: number): number => x;

/**
 * Compiles a typed mod into a function of the environment that evaluates it in float64 (float32 arithmetic is
 * computed in double, not rounded): the semantics of the reference. int64 is exact and wraps as in the kernel, and
 * an int64 converted to float32 is rounded to float32 as the kernel's conversion is; an int64 result is a number
 * while safe and a bigint beyond (see Value).
 */
export function compileEvaluator(root: Expr, roundFloat: (x: number) => number = EXACT_FLOAT): (env: EvalEnv) => Value {
  const order = topoSort([root]);
  const slot = new Map(order.map((e, i) => [e, i] as const));
  const steps = order.map((e): ((values: Value[], env: EvalEnv) => Value) => {
    const name = varName(e);
    if (name) return (_v, env) => env[name];
    if (e.op === "const") {
      const c = constValue(e);
      return () => c;
    }
    const operands = e.src.map((s) => slot.get(s)!);
    if (e.op === "load") return compileLoad(e, operands);
    const f = implOf(e);
    const [i, j, k] = operands;
    // Positional closures per arity: evaluated at every (b, h, q, kv) position, so no argument arrays.
    const step: (values: Value[]) => Value =
      operands.length === 1 ? (v) => f(v[i], v[i], v[i]) : operands.length === 2 ? (v) => f(v[i], v[j], v[j]) : (v) => f(v[i], v[j], v[k]);
    if (e.dtype !== "float32" || roundFloat === EXACT_FLOAT) return step;
    return (v) => roundFloat(step(v) as number);
  });
  return (env) => {
    const values: Value[] = new Array(steps.length);
    for (let i = 0; i < steps.length; i++) values[i] = steps[i](values, env);
    return values[steps.length - 1];
  };
}

function compileLoad(e: Expr, operands: number[]): (values: Value[], env: EvalEnv) => Value {
  const { buffer, name } = e.arg as { buffer: number; name: string };
  const convert: (v: number | bigint | boolean) => Value =
    e.dtype === "bool" ? Boolean : e.dtype === "int64" ? loadedInt : (v) => Number(v);
  return (values, env) => {
    const data = env.buffers[buffer];
    let offset = 0;
    for (let k = 0; k < operands.length; k++) {
      const i = values[operands[k]] as Int;
      // Indices may be bigints (far out of range); a bigint compares exactly with the dims.
      if (!(i >= 0 && i < data.shape[k])) throw new BufferIndexError(name, operands.map((s) => values[s] as Int), data.shape);
      offset = offset * data.shape[k] + (i as number);
    }
    return convert(data.values[offset]);
  };
}
