import { constValue, type Expr } from "../ir/expr.js";
import type { Op } from "../ir/ops.js";

/**
 * C++ for each op, given its operands' generated names, in either form of a mod (see renderMods):
 * `scalar` operands are `float`, `int64_t` and `bool`; `vector` operands are the lane vectors `mdm::vf`,
 * `mdm::vi` and `mdm::vb` (a bool lane is an int32 mask). Most entries are one string for both forms because
 * the `mdm::` helpers are overloaded for scalars and vectors and GCC's vector types take the same operators;
 * the entries that differ say so. Integer arithmetic goes through helpers that wrap instead of overflowing
 * (undefined behaviour in C++); see src/templates/mod_helpers.h. Leaves (`var`, `const`, `load`) are rendered
 * by renderExpr.
 */
export type Form = "scalar" | "vector";
/** What the code generator knows about a node's values beyond its type. */
export interface ValueFacts {
  /** True when every value the int64 node `e` can take fits in int32. */
  readonly fitsInt32: (e: Expr) => boolean;
}
type Render = (args: readonly string[], e: Expr, form: Form, facts: ValueFacts) => string;

const fn = (name: string): Render => (a) => `${name}(${a.join(", ")})`;
const infix = (op: string): Render => (a) => `(${a[0]} ${op} ${a[1]})`;
/** Wrapping helpers for int64, the plain operator for float32. */
const arith = (helper: string, op: string): Render => (a, e) =>
  e.dtype === "int64" ? `mdm::${helper}(${a[0]}, ${a[1]})` : `(${a[0]} ${op} ${a[1]})`;
/** Float functions of one argument; floor and ceil of an integer are the integer. */
const floatFn = (name: string): Render => (a, e) => (e.dtype === "int64" ? a[0] : `mdm::${name}(${a[0]})`);
/**
 * Comparisons: the C++ operator, except on integer and bool lanes, where GCC's operator gives a mask of the
 * wrong width (int64) or the wrong order (true lanes are -1).
 */
const compare = (name: string, op: string): Render => (a, e, form) =>
  form === "vector" && e.src[0].dtype !== "float32" && !(e.src[0].dtype === "bool" && (op === "==" || op === "!="))
    ? `mdm::${name}(${a[0]}, ${a[1]})`
    : `(${a[0]} ${op} ${a[1]})`;

/** k when e is `x // c` or `x % c` with an int64 constant c = 2^k, k >= 1: those are a shift and a mask. */
function powerOfTwoDivisor(e: Expr): number | undefined {
  const divisor = e.src[1];
  if (e.dtype !== "int64" || divisor.op !== "const") return undefined;
  const c = Number(constValue(divisor));
  if (!Number.isSafeInteger(c) || c < 2 || (c & (c - 1)) !== 0 || c > 2 ** 30) return undefined;
  return Math.log2(c);
}

export const CPP_OPS: Readonly<Record<Op, Render | null>> = {
  var: null,
  const: null,
  load: null,
  neg: (a, e) => (e.dtype === "int64" ? `mdm::neg(${a[0]})` : `(-${a[0]})`),
  // Vector bool lanes are 0 or all ones, so the bitwise operators are the logical ones.
  not: (a, _e, form) => (form === "vector" ? `(~${a[0]})` : `(!${a[0]})`),
  bitnot: (a) => `(~${a[0]})`,
  abs: (a, e) => (e.dtype === "int64" ? `mdm::abs(${a[0]})` : `mdm::fabs(${a[0]})`),
  floor: floatFn("floor"),
  ceil: floatFn("ceil"),
  exp: floatFn("exp"),
  exp2: floatFn("exp2"),
  log: floatFn("log"),
  log2: floatFn("log2"),
  sqrt: floatFn("sqrt"),
  rsqrt: floatFn("rsqrt"),
  tanh: floatFn("tanh"),
  sigmoid: floatFn("sigmoid"),
  silu: floatFn("silu"),
  sin: floatFn("sin"),
  cos: floatFn("cos"),
  tan: floatFn("tan"),
  cast: (a, e, form, facts) => {
    const from = e.src[0].dtype;
    if (from === e.dtype) return a[0];
    if (form === "vector") {
      // int64 -> float32 has no AVX2 instruction; the int32 one rounds the same way when the value fits.
      if (from === "int64" && e.dtype === "float32" && facts.fitsInt32(e.src[0])) return `mdm::to_float_i32(${a[0]})`;
      return `mdm::to_${e.dtype === "float32" ? "float" : e.dtype}(${a[0]})`;
    }
    if (e.dtype === "bool") return `(${a[0]} != 0)`;
    if (e.dtype === "int64") return from === "float32" ? `mdm::to_int(${a[0]})` : `((int64_t)${a[0]})`;
    return `((float)${a[0]})`;
  },
  add: arith("add", "+"),
  sub: arith("sub", "-"),
  mul: arith("mul", "*"),
  div: infix("/"),
  // x // 2^k is an arithmetic shift and x % 2^k a mask, both rounding toward -inf as floor division does.
  floordiv: (a, e) => {
    const k = powerOfTwoDivisor(e);
    return k === undefined ? `mdm::floordiv(${a[0]}, ${a[1]})` : `(${a[0]} >> ${k})`;
  },
  mod: (a, e) => {
    const k = powerOfTwoDivisor(e);
    return k === undefined ? `mdm::floormod(${a[0]}, ${a[1]})` : `(${a[0]} & INT64_C(${2 ** k - 1}))`;
  },
  // x ** 2 is the correctly rounded square; libm's powf may differ from it in the last bit.
  pow: (a, e) => (e.src[1].op === "const" && constValue(e.src[1]) === 2 ? `(${a[0]} * ${a[0]})` : `mdm::pow(${a[0]}, ${a[1]})`),
  min: fn("mdm::min"),
  max: fn("mdm::max"),
  eq: compare("eq", "=="),
  ne: compare("ne", "!="),
  lt: compare("lt", "<"),
  le: compare("le", "<="),
  gt: compare("gt", ">"),
  ge: compare("ge", ">="),
  and: (a, e, form) => (e.dtype === "bool" && form === "scalar" ? `(${a[0]} && ${a[1]})` : `(${a[0]} & ${a[1]})`),
  or: (a, e, form) => (e.dtype === "bool" && form === "scalar" ? `(${a[0]} || ${a[1]})` : `(${a[0]} | ${a[1]})`),
  xor: (a, e, form) => (e.dtype === "bool" && form === "scalar" ? `(${a[0]} != ${a[1]})` : `(${a[0]} ^ ${a[1]})`),
  where: (a, _e, form) => (form === "vector" ? `mdm::where(${a[0]}, ${a[1]}, ${a[2]})` : `(${a[0]} ? ${a[1]} : ${a[2]})`),
};
