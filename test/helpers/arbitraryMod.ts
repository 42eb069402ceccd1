import fc from "fast-check";

/**
 * Random well-typed mod expressions, as source strings. Buffers the generated code may read:
 * `slopes` float32[4], `tbl` int32[8], `flags` bool[8], `bias` float32[4][8] (indices reduced with `% n`,
 * which is floor modulo and so always in range). Float comparisons are avoided in masks so that float32
 * (kernel) and float64 (reference) never disagree on a bool; `score` appears only in score mods.
 */
export const MOD_BUFFERS = {
  slopes: { shape: [4], dtype: "float32" as const },
  tbl: { shape: [8], dtype: "int32" as const },
  flags: { shape: [8], dtype: "bool" as const },
  bias: { shape: [4, 8], dtype: "float32" as const },
};

const paren = (s: string) => `(${s})`;

function intExpr(depth: number): fc.Arbitrary<string> {
  const leaf = fc.oneof(
    fc.constantFrom("b", "h", "q_idx", "kv_idx"),
    fc.integer({ min: -7, max: 9 }).map((n) => (n < 0 ? paren(String(n)) : String(n))),
  );
  if (depth <= 0) return leaf;
  const sub = intExpr(depth - 1);
  return fc.oneof(
    { arbitrary: leaf, weight: 2 },
    fc.tuple(sub, fc.constantFrom("+", "-", "*", "//", "%", "&", "|", "^"), sub).map(([a, op, b]) => paren(`${a} ${op} ${b}`)),
    sub.map((a) => paren(`-${a}`)),
    sub.map((a) => paren(`~${a}`)),
    fc.tuple(fc.constantFrom("abs", "floor", "ceil"), sub).map(([f, a]) => `${f}(${a})`),
    fc.tuple(fc.constantFrom("min", "max"), sub, sub).map(([f, a, b]) => `${f}(${a}, ${b})`),
    fc.tuple(boolExpr(depth - 1), sub, sub).map(([c, a, b]) => `where(${c}, ${a}, ${b})`),
    sub.map((a) => `tbl[${a} % 8]`),
  );
}

function boolExpr(depth: number): fc.Arbitrary<string> {
  const leaf = fc.constantFrom("true", "false");
  if (depth <= 0) return leaf;
  const i = intExpr(depth - 1);
  const sub = boolExpr(depth - 1);
  return fc.oneof(
    fc.tuple(i, fc.constantFrom("==", "!=", "<", "<=", ">", ">="), i).map(([a, op, b]) => paren(`${a} ${op} ${b}`)),
    fc.tuple(sub, fc.constantFrom("&&", "||", "&", "|", "^"), sub).map(([a, op, b]) => paren(`${a} ${op} ${b}`)),
    sub.map((a) => paren(`!${a}`)),
    i.map((a) => `flags[${a} % 8]`),
    { arbitrary: leaf, weight: 1 },
  );
}

/** Smooth float operations only, so float32 and float64 stay within a relative tolerance of each other. */
function floatExpr(depth: number, withScore: boolean): fc.Arbitrary<string> {
  const leaf = fc.oneof(
    ...(withScore ? [fc.constant("score"), fc.constant("score")] : []),
    fc.double({ min: -4, max: 4, noNaN: true, noDefaultInfinity: true }).map((x) => paren(x.toFixed(3))),
    intExpr(1).map((a) => `slopes[${a} % 4]`),
    fc.tuple(intExpr(1), intExpr(1)).map(([a, b]) => `bias[${a} % 4][${b} % 8]`),
  );
  if (depth <= 0) return leaf;
  const sub = floatExpr(depth - 1, withScore);
  return fc.oneof(
    { arbitrary: leaf, weight: 2 },
    fc.tuple(sub, fc.constantFrom("+", "-", "*"), sub).map(([a, op, b]) => paren(`${a} ${op} ${b}`)),
    fc.tuple(sub, intExpr(depth - 1)).map(([a, b]) => paren(`${a} * ${b}`)),
    intExpr(depth - 1).map((a) => paren(`${a} / 4`)),
    sub.map((a) => `tanh(${a})`),
    sub.map((a) => `sigmoid(${a})`),
    sub.map((a) => `exp(clamp(${a}, -8, 8))`),
    sub.map((a) => `sqrt(abs(${a}))`),
    fc.tuple(fc.constantFrom("min", "max"), sub, sub).map(([f, a, b]) => `${f}(${a}, ${b})`),
    fc.tuple(boolExpr(depth - 1), sub, sub).map(([c, a, b]) => `where(${c}, ${a}, ${b})`),
  );
}

export const arbitraryScoreMod = (depth = 3): fc.Arbitrary<string> => floatExpr(depth, true);
export const arbitraryMaskMod = (depth = 3): fc.Arbitrary<string> => boolExpr(depth);
/** Any-typed index expressions, for checking integer semantics exactly. */
export const arbitraryIntExpr = (depth = 3): fc.Arbitrary<string> => intExpr(depth);
