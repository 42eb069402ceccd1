/**
 * The closed set of operations of a typed mod expression. Each table keyed by `Op` (type rules in
 * `typeRules.ts`, C++ in `codegen/cppOps.ts`, interpretation in `evalExpr.ts`) must have a row for every op;
 * `test/ir/opTables.test.ts` fails when one is missing.
 */
export const OPS = [
  // leaves
  "var", "const", "load",
  // unary
  "neg", "not", "bitnot", "abs", "floor", "ceil",
  "exp", "exp2", "log", "log2", "sqrt", "rsqrt", "tanh", "sigmoid", "silu", "sin", "cos", "tan",
  "cast",
  // binary arithmetic
  "add", "sub", "mul", "div", "floordiv", "mod", "pow", "min", "max",
  // comparisons
  "eq", "ne", "lt", "le", "gt", "ge",
  // logical on bool, bitwise on int64
  "and", "or", "xor",
  // ternary
  "where",
] as const;

export type Op = (typeof OPS)[number];

/** Scalar types inside a mod: index arithmetic is int64, scores float32, masks bool. */
export type DType = "bool" | "int64" | "float32";

/** The variables a mod may read; `score` only in score_mod. */
export const VARS = ["score", "b", "h", "q_idx", "kv_idx"] as const;
export type VarName = (typeof VARS)[number];

/** Math functions callable by name in a mod, with their arity. `where` and `clamp` are lowered specially. */
export const FUNCTIONS: Readonly<Record<string, { op: Op; arity: number }>> = {
  exp: { op: "exp", arity: 1 }, exp2: { op: "exp2", arity: 1 }, log: { op: "log", arity: 1 },
  log2: { op: "log2", arity: 1 }, sqrt: { op: "sqrt", arity: 1 }, rsqrt: { op: "rsqrt", arity: 1 },
  abs: { op: "abs", arity: 1 }, tanh: { op: "tanh", arity: 1 }, sigmoid: { op: "sigmoid", arity: 1 },
  silu: { op: "silu", arity: 1 }, sin: { op: "sin", arity: 1 }, cos: { op: "cos", arity: 1 },
  tan: { op: "tan", arity: 1 }, floor: { op: "floor", arity: 1 }, ceil: { op: "ceil", arity: 1 },
  min: { op: "min", arity: 2 }, max: { op: "max", arity: 2 }, pow: { op: "pow", arity: 2 },
  where: { op: "where", arity: 3 },
};

/** `clamp(x, lo, hi)` is `min(max(x, lo), hi)`, as torch.clamp. */
export const CLAMP_ARITY = 3;
