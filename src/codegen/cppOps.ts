import type { Expr } from "../ir/expr.js";
import type { Op } from "../ir/ops.js";

/**
 * C++ for each op, given its operands' generated names. Integer arithmetic goes through `mdm::` helpers that
 * wrap instead of overflowing (undefined behaviour in C++); see src/templates/mod_helpers.h.
 * Leaves (`var`, `const`, `load`) are rendered by renderExpr.
 */
type Render = (args: readonly string[], e: Expr) => string;

const fn = (name: string): Render => (a) => `${name}(${a.join(", ")})`;
const infix = (op: string): Render => (a) => `(${a[0]} ${op} ${a[1]})`;
/** Wrapping helpers for int64, the plain operator for float32. */
const arith = (helper: string, op: string): Render => (a, e) =>
  e.dtype === "int64" ? `mdm::${helper}(${a[0]}, ${a[1]})` : `(${a[0]} ${op} ${a[1]})`;
const floatFn = (name: string): Render => (a) => `std::${name}(${a[0]})`;

export const CPP_OPS: Readonly<Record<Op, Render | null>> = {
  var: null,
  const: null,
  load: null,
  neg: (a, e) => (e.dtype === "int64" ? `mdm::neg(${a[0]})` : `(-${a[0]})`),
  not: (a) => `(!${a[0]})`,
  bitnot: (a) => `(~${a[0]})`,
  abs: (a, e) => (e.dtype === "int64" ? `mdm::abs(${a[0]})` : `std::fabs(${a[0]})`),
  floor: floatFn("floor"),
  ceil: floatFn("ceil"),
  exp: floatFn("exp"),
  exp2: floatFn("exp2"),
  log: floatFn("log"),
  log2: floatFn("log2"),
  sqrt: floatFn("sqrt"),
  rsqrt: fn("mdm::rsqrt"),
  tanh: floatFn("tanh"),
  sigmoid: fn("mdm::sigmoid"),
  silu: fn("mdm::silu"),
  sin: floatFn("sin"),
  cos: floatFn("cos"),
  tan: floatFn("tan"),
  cast: (a, e) => {
    const from = e.src[0].dtype;
    if (e.dtype === "bool") return from === "bool" ? a[0] : `(${a[0]} != 0)`;
    if (e.dtype === "int64") return from === "float32" ? `mdm::to_int(${a[0]})` : `((int64_t)${a[0]})`;
    return `((float)${a[0]})`;
  },
  add: arith("add", "+"),
  sub: arith("sub", "-"),
  mul: arith("mul", "*"),
  div: infix("/"),
  floordiv: fn("mdm::floordiv"),
  mod: fn("mdm::floormod"),
  pow: fn("std::pow"),
  min: fn("mdm::min"),
  max: fn("mdm::max"),
  eq: infix("=="),
  ne: infix("!="),
  lt: infix("<"),
  le: infix("<="),
  gt: infix(">"),
  ge: infix(">="),
  and: (a, e) => (e.dtype === "bool" ? `(${a[0]} && ${a[1]})` : `(${a[0]} & ${a[1]})`),
  or: (a, e) => (e.dtype === "bool" ? `(${a[0]} || ${a[1]})` : `(${a[0]} | ${a[1]})`),
  xor: (a, e) => (e.dtype === "bool" ? `(${a[0]} != ${a[1]})` : `(${a[0]} ^ ${a[1]})`),
  where: (a) => `(${a[0]} ? ${a[1]} : ${a[2]})`,
};
