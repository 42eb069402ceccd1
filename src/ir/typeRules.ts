import type { DType, Op } from "./ops.js";

/**
 * Type rules of each op, following PyTorch's promotion (bool < int64 < float32; the only int type in a mod is
 * int64 and the only float type float32, so promotion is the wider category): `coerce` says which types the
 * operands are cast to, or why the op does not apply; `result` gives the op's type from the coerced operands.
 */
export interface TypeRule {
  readonly coerce: (operands: readonly DType[]) => readonly DType[] | string;
  /** null for `cast`, whose type is the one asked for. */
  readonly result: (operands: readonly DType[]) => DType | null;
}

const RANK: Record<DType, number> = { bool: 0, int64: 1, float32: 2 };
export const commonType = (types: readonly DType[]): DType =>
  types.reduce((a, b) => (RANK[b] > RANK[a] ? b : a), "bool" as DType);

const same = (t: readonly DType[]): DType => t[0];
const leaf: TypeRule = { coerce: (t) => t, result: () => null };

/** + - * : the common type; two bools are refused, as PyTorch refuses `-` on bools. */
const arithmetic: TypeRule = {
  coerce: (t) => {
    const c = commonType(t);
    return c === "bool" ? "arithmetic on two bools is not defined; compare or use where() instead" : [c, c];
  },
  result: same,
};
const minMax: TypeRule = { coerce: (t) => [commonType(t), commonType(t)], result: same };
const toFloat = (n: number): TypeRule => ({ coerce: () => Array(n).fill("float32"), result: () => "float32" });
/** `//` and `%` stay integral on integers (floor semantics) and float on floats. */
const floorOp: TypeRule = {
  coerce: (t) => {
    const c = commonType(t) === "bool" ? "int64" : commonType(t);
    return [c, c];
  },
  result: same,
};
const comparison: TypeRule = { coerce: (t) => [commonType(t), commonType(t)], result: () => "bool" };
/** & | ^ : logical on bools, bitwise on integers, undefined on floats. */
const bitwise: TypeRule = {
  coerce: (t) => {
    if (t.includes("float32")) return "bitwise operators need bool or integer operands, not float32";
    const c = commonType(t);
    return [c, c];
  },
  result: same,
};
const signed: TypeRule = {
  coerce: (t) => (t[0] === "bool" ? "needs a number, not a bool" : t),
  result: same,
};

export const TYPE_RULES: Readonly<Record<Op, TypeRule>> = {
  var: leaf,
  const: leaf,
  load: leaf,
  neg: signed,
  abs: signed,
  floor: signed,
  ceil: signed,
  not: { coerce: (t) => (t[0] === "bool" ? t : "needs a bool"), result: () => "bool" },
  bitnot: { coerce: (t) => (t[0] === "int64" ? t : "needs an integer"), result: () => "int64" },
  exp: toFloat(1), exp2: toFloat(1), log: toFloat(1), log2: toFloat(1), sqrt: toFloat(1), rsqrt: toFloat(1),
  tanh: toFloat(1), sigmoid: toFloat(1), silu: toFloat(1), sin: toFloat(1), cos: toFloat(1), tan: toFloat(1),
  cast: { coerce: (t) => t, result: () => null },
  add: arithmetic,
  sub: arithmetic,
  mul: arithmetic,
  div: toFloat(2),
  floordiv: floorOp,
  mod: floorOp,
  pow: toFloat(2),
  min: minMax,
  max: minMax,
  eq: comparison, ne: comparison, lt: comparison, le: comparison, gt: comparison, ge: comparison,
  and: bitwise,
  or: bitwise,
  xor: bitwise,
  where: {
    coerce: (t) => {
      if (t[0] !== "bool") return "the condition of where() must be a bool";
      const c = commonType([t[1], t[2]]);
      return ["bool", c, c];
    },
    result: (t) => t[1],
  },
};
