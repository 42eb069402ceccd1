import fc from "fast-check";
import { describe, expect, it } from "vitest";
import { BufferIndexError, compileEvaluator, type Value } from "../../src/ir/evalExpr.js";
import { type Expr, mk, variable } from "../../src/ir/expr.js";
import { inferTypes } from "../../src/ir/inferTypes.js";
import { parseExpr } from "../../src/ir/parseExpr.js";
import { printExpr } from "../../src/ir/printExpr.js";
import { simplify } from "../../src/ir/simplify.js";

/*
 * The reference interpreter's int64 against hand-computed values: the kernel computes int64 exactly and wraps
 * (docs/expressions.md, src/templates/mod_helpers.h), for every value, not only below 2^53. Buffer `lb` is int64
 * (passed as a BigInt64Array, as the reference passes it), `ib` int32.
 */

const MIN = -(2n ** 63n);
const MAX = 2n ** 63n - 1n;
const P53 = 2n ** 53n;

const scope = [
  { name: "lb", dtype: "int64" as const, rank: 1 },
  { name: "ib", dtype: "int32" as const, rank: 1 },
];
const typed = (source: string, kind: "maskMod" | "scoreMod"): Expr => inferTypes(parseExpr(source, kind), { kind, buffers: scope, source });
/** An int64 expression, typed (not simplified): the left side of a comparison a mask can hold. */
const intExpr = (source: string): Expr => {
  const e = typed(`(${source}) == 0`, "maskMod").src[0];
  expect(e.dtype).toBe("int64");
  return e;
};

function run(e: Expr, lb: readonly bigint[], opts: { ib?: number[]; q_idx?: number; score?: number; round?: (x: number) => number } = {}): Value {
  const buffers = [
    { values: BigInt64Array.from(lb.length > 0 ? lb : [0n]), shape: [Math.max(1, lb.length)] },
    { values: Int32Array.from(opts.ib ?? [0]), shape: [(opts.ib ?? [0]).length] },
  ];
  return compileEvaluator(e, opts.round)({ score: opts.score ?? 0, b: 0, h: 0, q_idx: opts.q_idx ?? 0, kv_idx: 0, buffers });
}

/** An int64 result as a bigint, after checking the documented representation: a number exactly when safe. */
function asBig(v: Value): bigint {
  if (typeof v === "number") {
    expect(Number.isSafeInteger(v) && !Object.is(v, -0), `${v} is a safe integer, not -0`).toBe(true);
    return BigInt(v);
  }
  if (typeof v !== "bigint") throw new Error(`expected an int64, got ${v}`);
  expect(v >= -(P53 - 1n) && v <= P53 - 1n, `${v} is a bigint only beyond the safe range`).toBe(false);
  return v;
}

describe("int64 arithmetic in the reference interpreter is exact and wraps as the kernel's", () => {
  it.each<[string, string, bigint[], bigint]>([
    // + - wrap at the int64 range
    ["INT64_MAX + 1 wraps to INT64_MIN", "lb[0] + 1", [MAX], MIN],
    ["INT64_MIN - 1 wraps to INT64_MAX", "lb[0] - 1", [MIN], MAX],
    ["2^53 + 1 is exact", "lb[0] + 1", [P53], 9007199254740993n],
    ["two safe values whose sum is not safe", "lb[0] + lb[0]", [P53 - 1n], 18014398509481982n],
    ["a sum that comes back into the safe range", "lb[0] + lb[1]", [MAX, -MAX + 5n], 5n],
    // * wraps (mod 2^64)
    ["(2^32 + 3)^2 wraps to 6 * 2^32 + 9", "lb[0] * lb[0]", [2n ** 32n + 3n], 25769803785n],
    ["INT64_MAX * 2 = -2", "lb[0] * 2", [MAX], -2n],
    ["2^62 * 4 wraps to 0", "lb[0] * 4", [2n ** 62n], 0n],
    ["2^31 * 2^32 = INT64_MIN", "lb[0] * lb[1]", [2n ** 31n, 2n ** 32n], MIN],
    ["two safe literals whose product overflows int64", "3037000500 * 3037000500", [], -9223372036709301616n],
    ["two safe values whose product is not safe", "94906267 * lb[0]", [94906267n], 9007199515875289n],
    ["int32 values widen to int64 before the product", "ib[0] * ib[0]", [], 4611686014132420609n],
    // unary
    ["-INT64_MIN = INT64_MIN", "-lb[0]", [MIN], MIN],
    ["abs(INT64_MIN) = INT64_MIN", "abs(lb[0])", [MIN], MIN],
    ["abs(-2^53) = 2^53", "abs(lb[0])", [-P53], P53],
    ["~INT64_MIN = INT64_MAX", "~lb[0]", [MIN], MAX],
    ["~(2^53 - 1) = -2^53", "~lb[0]", [P53 - 1n], -P53],
    // floor division and modulo: the sign of the divisor, 0 for a zero divisor, // -1 is a wrapping negation
    ["INT64_MIN // -1 = INT64_MIN", "lb[0] // lb[1]", [MIN, -1n], MIN],
    ["INT64_MIN // (-1) with a literal divisor", "lb[0] // (-1)", [MIN], MIN],
    ["INT64_MIN % -1 = 0", "lb[0] % lb[1]", [MIN, -1n], 0n],
    ["(-7) // 2 = -4", "lb[0] // 2", [-7n], -4n],
    ["(-7) % 2 = 1", "lb[0] % 2", [-7n], 1n],
    ["7 % -2 = -1", "lb[0] % lb[1]", [7n, -2n], -1n],
    ["7 // -2 = -4", "lb[0] // lb[1]", [7n, -2n], -4n],
    ["2^62 // 0 = 0", "lb[0] // lb[1]", [2n ** 62n, 0n], 0n],
    ["2^62 % 0 = 0", "lb[0] % lb[1]", [2n ** 62n, 0n], 0n],
    ["5 // 0 = 0", "lb[0] // lb[1]", [5n, 0n], 0n],
    ["-5 % 0 = 0", "lb[0] % lb[1]", [-5n, 0n], 0n],
    ["INT64_MIN // 3 rounds toward -inf", "lb[0] // 3", [MIN], -3074457345618258603n],
    ["INT64_MIN % 3 = 1", "lb[0] % 3", [MIN], 1n],
    ["INT64_MAX // -7 is exact (7 divides 2^63 - 1)", "lb[0] // lb[1]", [MAX, -7n], -1317624576693539401n],
    ["INT64_MAX % -7 = 0", "lb[0] % lb[1]", [MAX, -7n], 0n],
    ["INT64_MAX // -2", "lb[0] // lb[1]", [MAX, -2n], -4611686018427387904n],
    ["INT64_MAX % -2 = -1", "lb[0] % lb[1]", [MAX, -2n], -1n],
    ["(-2^62 - 1) // 2 (a power of two: the kernel's shift)", "lb[0] // 2", [-(2n ** 62n) - 1n], -2305843009213693953n],
    ["(-2^62 - 1) % 2 (the kernel's mask)", "lb[0] % 2", [-(2n ** 62n) - 1n], 1n],
    ["(2^62 + 1) % -2 = -1", "lb[0] % lb[1]", [2n ** 62n + 1n, -2n], -1n],
    ["(-2^60 - 5) // 256 leaves a safe quotient", "lb[0] // 256", [-(2n ** 60n) - 5n], -4503599627370497n],
    ["(-2^60 - 5) % 256", "lb[0] % 256", [-(2n ** 60n) - 5n], 251n],
    // bitwise on negative large values (two's complement)
    ["(-2^60 - 5) & -2^40", "lb[0] & lb[1]", [-(2n ** 60n) - 5n, -(2n ** 40n)], -1152922604118474752n],
    ["(-2^60 - 5) | -2^40", "lb[0] | lb[1]", [-(2n ** 60n) - 5n, -(2n ** 40n)], -5n],
    ["(-2^60 - 5) ^ -2^40", "lb[0] ^ lb[1]", [-(2n ** 60n) - 5n, -(2n ** 40n)], 1152922604118474747n],
    ["(-2^60 - 5) & 255", "lb[0] & 255", [-(2n ** 60n) - 5n], 251n],
    ["INT64_MIN | 1", "lb[0] | 1", [MIN], MIN + 1n],
    ["x ^ -1 = ~x", "lb[0] ^ (-1)", [2n ** 62n + 12345n], -(2n ** 62n) - 12346n],
    ["(-2^53 + 1) & (-2^53 + 2) = -2^53", "lb[0] & lb[1]", [-P53 + 1n, -P53 + 2n], -P53],
    // min, max, where keep large values exact
    ["min of large values", "min(lb[0], lb[1])", [P53 + 1n, P53], P53],
    ["max of large values", "max(lb[0], lb[1])", [MIN, -P53 - 1n], -P53 - 1n],
    ["clamp to a large bound", "clamp(lb[0], 0, lb[1])", [MAX, P53 + 7n], P53 + 7n],
    ["where picks a large value", "where(lb[0] > lb[1], lb[0], lb[1])", [P53 + 1n, P53], P53 + 1n],
  ])("%s", (_what, source, lb, want) => {
    expect(asBig(run(intExpr(source), lb, { ib: [2 ** 31 - 1] }))).toBe(want);
  });

  it("leaves the safe range from safe index variables too: q_idx^3 = 2^60 at 2^20, q_idx^4 = 2^64 wraps to 0 at 2^16", () => {
    expect(asBig(run(intExpr("q_idx * q_idx * q_idx"), [], { q_idx: 2 ** 20 }))).toBe(2n ** 60n);
    expect(asBig(run(intExpr("q_idx * q_idx * q_idx * q_idx"), [], { q_idx: 2 ** 16 }))).toBe(0n);
    expect(asBig(run(intExpr("q_idx * q_idx * q_idx * q_idx - 1"), [], { q_idx: 2 ** 16 }))).toBe(-1n);
  });
});

describe("int64 comparisons are exact", () => {
  it.each<[string, bigint[], boolean]>([
    ["lb[0] == lb[1]", [P53, P53 + 1n], false],
    ["lb[0] != lb[1]", [P53, P53 + 1n], true],
    ["lb[0] + 1 == lb[1]", [P53, P53 + 1n], true],
    ["lb[0] < lb[1]", [P53, P53 + 1n], true],
    ["lb[0] < lb[1]", [MAX - 1n, MAX], true],
    ["lb[0] >= lb[1]", [MAX - 1n, MAX], false],
    ["lb[0] > lb[1]", [MIN, MAX], false],
    ["lb[0] <= lb[1]", [MIN, MIN + 1n], true],
    // a large value against a small one (a bigint against a number)
    ["lb[0] > 5", [2n ** 60n], true],
    ["lb[0] < 5", [-(2n ** 60n)], true],
    ["lb[0] == 9007199254740991", [P53 - 1n], true],
    ["lb[0] + lb[0] > 0", [2n ** 62n], false],
    ["lb[0] // (-1) > 0", [MIN], false],
    ["abs(lb[0]) >= 0", [MIN], false],
    ["lb[0] * lb[1] < 0", [2n ** 62n + 3n, 2n], true],
    ["(lb[0] & lb[1]) == lb[1]", [-1n, MIN], true],
  ])("%s with lb = %s is %s", (source, lb, want) => {
    expect(run(typed(source, "maskMod"), lb)).toBe(want);
  });
});

describe("int64 -> float32 rounds once, to nearest even, from the exact value", () => {
  // Hand-rounded: float32 keeps 24 significant bits. 2^60 + 2^36 + 1 is just above the midpoint between 2^60 and
  // 2^60 + 2^37, so it rounds up; rounding to a double first lands exactly on that midpoint (2^60 + 2^36), whose
  // tie goes to the even 2^60.
  it.each<[string, bigint, number]>([
    ["2^53 + 1", P53 + 1n, 2 ** 53],
    ["2^24 + 1 (a tie, to even)", 2n ** 24n + 1n, 16777216],
    ["2^24 + 3 (a tie, to even)", 2n ** 24n + 3n, 16777220],
    ["2^60 + 2^36 + 1 (above a tie: no double rounding)", 2n ** 60n + 2n ** 36n + 1n, 2 ** 60 + 2 ** 37],
    ["-(2^60 + 2^36 + 1)", -(2n ** 60n + 2n ** 36n + 1n), -(2 ** 60 + 2 ** 37)],
    ["2^60 + 2^36 (a tie, to even)", 2n ** 60n + 2n ** 36n, 2 ** 60],
    ["2^60 + 3 * 2^36 (a tie, to even)", 2n ** 60n + 3n * 2n ** 36n, 2 ** 60 + 2 ** 38],
    ["INT64_MAX", MAX, 2 ** 63],
    ["INT64_MIN", MIN, -(2 ** 63)],
  ])("%s", (_what, value, want) => {
    // As a score_mod, the int64 result is cast to float32; the same in the float64 reference and the float32 mode.
    const e = typed("lb[0]", "scoreMod");
    expect(e.op).toBe("cast");
    expect(run(e, [value])).toBe(want);
    expect(run(e, [value], { round: Math.fround })).toBe(want);
  });

  it("a cast int64 compares as the kernel's float32 does", () => {
    // 2^24 + 1 and 2^24 are the same float32.
    expect(run(typed("lb[0] * 1.0 == lb[1] * 1.0", "maskMod"), [2n ** 24n + 1n, 2n ** 24n])).toBe(true);
    expect(run(typed("lb[0] * 1.0 > 1152921504606846976.0", "maskMod"), [2n ** 60n + 2n ** 36n + 1n])).toBe(true);
  });
});

describe("float32 -> int64 truncates, saturates and maps NaN to 0", () => {
  // No written expression produces this cast; build it on `score`.
  const toInt = mk("cast", "int64", [variable("score")]);
  it.each<[number, bigint]>([
    [-2.75, -2n],
    [2.75, 2n],
    [-0.5, 0n],
    [3e15, 3000000000000000n],
    [2 ** 60, 2n ** 60n],
    [-(2 ** 62) - 2 ** 40, -(2n ** 62n) - 2n ** 40n],
    [2 ** 63, MAX],
    [1e30, MAX],
    [Infinity, MAX],
    [-(2 ** 63), MIN],
    [-1e30, MIN],
    [-Infinity, MIN],
    [NaN, 0n],
  ])("%s -> %s", (score, want) => {
    expect(asBig(run(toInt, [], { score }))).toBe(want);
  });
});

describe("buffer indices", () => {
  it("a large int64 index is out of range, not rounded into range", () => {
    // In doubles (2^53 + 1) - 2^53 would be 0 and read ib[0]; exactly it is 1.
    expect(run(typed("ib[lb[0] - lb[1]] == 8", "maskMod"), [P53 + 1n, P53], { ib: [7, 8] })).toBe(true);
    expect(() => run(typed("ib[lb[0]] == 0", "maskMod"), [P53 + 1n], { ib: [7, 8] })).toThrow(BufferIndexError);
    expect(() => run(typed("ib[lb[0]] == 0", "maskMod"), [MIN], { ib: [7, 8] })).toThrow(/at \[-9223372036854775808\]/);
  });

  it("int64 buffer values given as numbers (a Float64Array, as older callers pass) are read as int64", () => {
    const e = intExpr("lb[0] + 1");
    const buffers = [{ values: [2 ** 60], shape: [1] }, { values: [0], shape: [1] }];
    expect(asBig(compileEvaluator(e)({ score: 0, b: 0, h: 0, q_idx: 0, kv_idx: 0, buffers }))).toBe(2n ** 60n + 1n);
  });
});

describe("constant folding of int64 stays exact", () => {
  const folded = (source: string) => printExpr(simplify(typed(source, "maskMod")));
  it("folds a wrapped product whose result is safe, as the kernel computes it", () => {
    // 2^32 * 2^32 = 2^64 wraps to 0, so the sum is q_idx itself; 2^32 * (2^32 - 1) wraps to -2^32.
    expect(folded("q_idx + 4294967296 * 4294967296 == kv_idx")).toBe("(q_idx == kv_idx)");
    expect(folded("q_idx == 4294967296 * 4294967295")).toBe("(q_idx == -4294967296)");
  });
  it("leaves a product whose value is not a safe integer to the kernel", () => {
    expect(folded("q_idx == 94906267 * 94906267")).toBe("(q_idx == (94906267 * 94906267))");
    expect(run(simplify(typed("94906267 * 94906267 == lb[0]", "maskMod")), [9007199515875289n])).toBe(true);
  });
});

// ---- property: random int64 expressions against an independent BigInt model -------------------------------

/** The semantics of docs/expressions.md on unbounded integers, reduced to int64 at each step. */
const M64 = 2n ** 64n;
const wrap = (x: bigint): bigint => {
  const r = (((x - MIN) % M64) + M64) % M64; // in [0, 2^64)
  return r + MIN;
};
/** Python's a % b: the sign of the divisor. */
const pyMod = (a: bigint, b: bigint): bigint => ((a % b) + b) % b;
const model = {
  "+": (a: bigint, b: bigint) => wrap(a + b),
  "-": (a: bigint, b: bigint) => wrap(a - b),
  "*": (a: bigint, b: bigint) => wrap(a * b),
  "//": (a: bigint, b: bigint) => (b === 0n ? 0n : wrap((a - pyMod(a, b)) / b)),
  "%": (a: bigint, b: bigint) => (b === 0n ? 0n : pyMod(a, b)),
  "&": (a: bigint, b: bigint) => a & b,
  "|": (a: bigint, b: bigint) => a | b,
  "^": (a: bigint, b: bigint) => a ^ b,
  min: (a: bigint, b: bigint) => (a < b ? a : b),
  max: (a: bigint, b: bigint) => (a > b ? a : b),
} as const;
type BinOp = keyof typeof model;

interface Gen {
  source: string;
  value: (lb: readonly bigint[]) => bigint;
}

const EDGES = [MIN, MIN + 1n, -P53 - 1n, -P53, -P53 + 1n, -1n, 0n, 1n, 2n, P53 - 1n, P53, P53 + 1n, 2n ** 62n, MAX - 1n, MAX];
const int64Value = fc.oneof(fc.constantFrom(...EDGES), fc.bigInt({ min: MIN, max: MAX }), fc.bigInt({ min: -1000n, max: 1000n }));

function genExpr(depth: number): fc.Arbitrary<Gen> {
  const leaf = fc.oneof(
    { arbitrary: fc.integer({ min: 0, max: 3 }).map((i): Gen => ({ source: `lb[${i}]`, value: (lb) => lb[i] })), weight: 4 },
    {
      arbitrary: fc.constantFrom(0n, 1n, 2n, 3n, 7n, 64n, 4294967296n, 3037000500n, P53 - 1n).map((c): Gen => ({ source: `${c}`, value: () => c })),
      weight: 2,
    },
  );
  if (depth <= 0) return leaf;
  const sub = genExpr(depth - 1);
  const ops = Object.keys(model) as BinOp[];
  return fc.oneof(
    { arbitrary: leaf, weight: 2 },
    {
      arbitrary: fc.tuple(sub, fc.constantFrom(...ops), sub).map(([a, op, b]): Gen => ({
        source: op === "min" || op === "max" ? `${op}(${a.source}, ${b.source})` : `(${a.source} ${op} ${b.source})`,
        value: (lb) => model[op](a.value(lb), b.value(lb)),
      })),
      weight: 6,
    },
    sub.map((a): Gen => ({ source: `(-${a.source})`, value: (lb) => wrap(-a.value(lb)) })),
    sub.map((a): Gen => ({ source: `(~${a.source})`, value: (lb) => -a.value(lb) - 1n })),
    sub.map((a): Gen => ({ source: `abs(${a.source})`, value: (lb) => wrap(a.value(lb) < 0n ? -a.value(lb) : a.value(lb)) })),
  );
}

describe("random int64 expressions over int64 buffer values agree with a BigInt model", () => {
  it("before and after simplification (fast-check)", () => {
    fc.assert(
      fc.property(genExpr(3), fc.array(int64Value, { minLength: 4, maxLength: 4 }), (g, lb) => {
        const want = g.value(lb);
        const e = intExpr(g.source);
        expect(asBig(run(e, lb)), `${g.source} with lb = [${lb.join(", ")}]`).toBe(want);
        expect(asBig(run(simplify(e), lb)), `simplified ${g.source} with lb = [${lb.join(", ")}]`).toBe(want);
        // and through a comparison, as a mask reads it
        expect(run(typed(`(${g.source}) < lb[0]`, "maskMod"), lb)).toBe(want < lb[0]);
      }),
      { numRuns: 2000, seed: 20240 },
    );
  });
});
