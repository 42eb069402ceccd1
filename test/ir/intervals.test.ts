import fc from "fast-check";
import { describe, expect, it } from "vitest";
import { compileEvaluator } from "../../src/ir/evalExpr.js";
import { constant, type Expr, mk, variable } from "../../src/ir/expr.js";
import { inferTypes } from "../../src/ir/inferTypes.js";
import {
  type BlockKind,
  type BlockRanges,
  canClassifyByIntervals,
  classifyBlock,
  compileBlockClassifier,
  compileIntervals,
  IntervalError,
  intervalOf,
} from "../../src/ir/intervals.js";
import { parseExpr } from "../../src/ir/parseExpr.js";
import { simplify } from "../../src/ir/simplify.js";

const buffers = [{ name: "doc", dtype: "int32" as const, rank: 1 }];
const typedMask = (source: string, simplified = true): Expr => {
  const e = inferTypes(parseExpr(source, "maskMod"), { kind: "maskMod", buffers, source });
  return simplified ? simplify(e) : e;
};
/** An int64 expression, typed but not simplified, so every op it spells reaches the interval rules. */
const typedInt = (source: string): Expr => typedMask(`(${source}) == 123456789`, false).src[0];

const box = (q: [number, number], kv: [number, number], b: [number, number] = [0, 0], h: [number, number] = [0, 0]): BlockRanges =>
  ({ b, h, q_idx: q, kv_idx: kv });

/** Every position of a box, evaluated by the reference interpreter. */
function* points(ranges: BlockRanges): Generator<[number, number, number, number]> {
  for (let b = ranges.b[0]; b <= ranges.b[1]; b++)
    for (let h = ranges.h[0]; h <= ranges.h[1]; h++)
      for (let q = ranges.q_idx[0]; q <= ranges.q_idx[1]; q++)
        for (let kv = ranges.kv_idx[0]; kv <= ranges.kv_idx[1]; kv++) yield [b, h, q, kv];
}

function bruteForce(mask: Expr, ranges: BlockRanges): BlockKind {
  const evaluate = compileEvaluator(mask);
  let seenTrue = false;
  let seenFalse = false;
  for (const [b, h, q_idx, kv_idx] of points(ranges)) {
    if (evaluate({ score: 0, b, h, q_idx, kv_idx, buffers: [] })) seenTrue = true;
    else seenFalse = true;
  }
  return seenTrue && seenFalse ? "partial" : seenTrue ? "full" : "empty";
}

// Index-only mods with every int64 op of the language; constants include block-sized ones so that comparisons
// are often decided, and negatives so that floor semantics and negative divisors are exercised.
const INT_OPS = ["+", "-", "*", "//", "%", "&", "|", "^"] as const;
const CMP_OPS = ["==", "!=", "<", "<=", ">", ">="] as const;
const BOOL_OPS = ["&&", "||", "&", "|", "^", "=="] as const;

function intExpr(depth: number): fc.Arbitrary<string> {
  const leaf = fc.oneof(
    { arbitrary: fc.constantFrom("b", "h", "q_idx", "kv_idx"), weight: 3 },
    { arbitrary: fc.integer({ min: -9, max: 9 }).map((n) => `(${n})`), weight: 2 },
    { arbitrary: fc.constantFrom("16", "64", "(-32)"), weight: 1 },
  );
  if (depth <= 0) return leaf;
  const sub = intExpr(depth - 1);
  return fc.oneof(
    { arbitrary: leaf, weight: 2 },
    { arbitrary: fc.tuple(sub, fc.constantFrom(...INT_OPS), sub).map(([a, op, b]) => `(${a} ${op} ${b})`), weight: 4 },
    sub.map((a) => `(-${a})`),
    sub.map((a) => `(~${a})`),
    sub.map((a) => `abs(${a})`),
    fc.tuple(fc.constantFrom("min", "max"), sub, sub).map(([f, a, b]) => `${f}(${a}, ${b})`),
    fc.tuple(sub, sub, sub).map(([x, lo, hi]) => `clamp(${x}, ${lo}, ${hi})`),
    fc.tuple(boolExpr(depth - 1), sub, sub).map(([c, a, b]) => `where(${c}, ${a}, ${b})`),
    fc.tuple(boolExpr(depth - 1), sub).map(([c, a]) => `(${c} + ${a})`),
  );
}

function boolExpr(depth: number): fc.Arbitrary<string> {
  const leaf = fc.constantFrom("true", "false");
  if (depth <= 0) return leaf;
  const i = intExpr(depth - 1);
  const sub = boolExpr(depth - 1);
  return fc.oneof(
    { arbitrary: fc.tuple(i, fc.constantFrom(...CMP_OPS), i).map(([a, op, b]) => `(${a} ${op} ${b})`), weight: 4 },
    { arbitrary: fc.tuple(sub, fc.constantFrom(...BOOL_OPS), sub).map(([a, op, b]) => `(${a} ${op} ${b})`), weight: 2 },
    sub.map((a) => `(!${a})`),
    i.map((a) => `(!${a})`),
    fc.tuple(sub, sub, sub).map(([c, a, b]) => `where(${c}, ${a}, ${b})`),
    fc.tuple(i, i).map(([c, a]) => `(${c} ? ${a} < 3 : false)`),
    { arbitrary: leaf, weight: 1 },
  );
}

const range = (min: number, max: number, maxWidth: number): fc.Arbitrary<[number, number]> =>
  fc.tuple(fc.integer({ min, max }), fc.integer({ min: 0, max: maxWidth })).map(([lo, w]) => [lo, lo + w]);
const smallBox = fc.record({
  b: range(-3, 4, 1),
  h: range(-3, 4, 1),
  q_idx: range(-20, 70, 4),
  kv_idx: range(-20, 70, 4),
});

describe("interval soundness", () => {
  it("every value of a random index expression over a box lies in its interval", () => {
    fc.assert(
      fc.property(intExpr(3), smallBox, (source, ranges) => {
        const e = typedInt(source);
        const { lo, hi } = intervalOf(e, ranges);
        expect(lo).toBeLessThanOrEqual(hi);
        const evaluate = compileEvaluator(e);
        for (const [b, h, q_idx, kv_idx] of points(ranges)) {
          const v = evaluate({ score: 0, b, h, q_idx, kv_idx, buffers: [] }) as number;
          if (v < lo || v > hi) throw new Error(`${source} = ${v} at (${b}, ${h}, ${q_idx}, ${kv_idx}) is outside [${lo}, ${hi}]`);
        }
      }),
      { numRuns: 600 },
    );
  });

  it("is the exact hull of a monotone-by-parts op on two independent variables", () => {
    const exactOps = ["q_idx + kv_idx", "q_idx - kv_idx", "q_idx * kv_idx", "q_idx // kv_idx", "min(q_idx, kv_idx)", "max(q_idx, kv_idx)", "abs(q_idx)", "-q_idx", "~q_idx"];
    fc.assert(
      fc.property(fc.constantFrom(...exactOps), range(-12, 12, 9), range(-12, 12, 9), (source, q, kv) => {
        const ranges = box(q, kv);
        const e = typedInt(source);
        const evaluate = compileEvaluator(e);
        const values = [...points(ranges)].map(([b, h, q_idx, kv_idx]) => evaluate({ score: 0, b, h, q_idx, kv_idx, buffers: [] }) as number);
        expect(intervalOf(e, ranges)).toEqual({ lo: Math.min(...values), hi: Math.max(...values) });
      }),
      { numRuns: 400 },
    );
  });

  it("bounds %, &, | and ^ of two independent variables, whatever their signs", () => {
    fc.assert(
      fc.property(fc.constantFrom("%", "&", "|", "^"), range(-12, 12, 9), range(-12, 12, 9), (op, q, kv) => {
        const ranges = box(q, kv);
        const e = typedInt(`q_idx ${op} kv_idx`);
        const { lo, hi } = intervalOf(e, ranges);
        const evaluate = compileEvaluator(e);
        for (const [b, h, q_idx, kv_idx] of points(ranges)) {
          const v = evaluate({ score: 0, b, h, q_idx, kv_idx, buffers: [] }) as number;
          expect(v >= lo && v <= hi, `${q_idx} ${op} ${kv_idx} = ${v} outside [${lo}, ${hi}]`).toBe(true);
        }
      }),
      { numRuns: 400 },
    );
  });

  it("classifyBlock never contradicts the value at any position of a random index-only mask", () => {
    let decided = 0;
    fc.assert(
      fc.property(boolExpr(3), fc.boolean(), smallBox, (source, simplified, ranges) => {
        const mask = typedMask(source, simplified);
        const kind = classifyBlock(mask, ranges);
        if (kind !== "partial") {
          decided++;
          expect(bruteForce(mask, ranges), source).toBe(kind);
        }
      }),
      { numRuns: 800 },
    );
    // A classifier that always answered "partial" would pass the check above; most random masks are decided.
    expect(decided).toBeGreaterThan(200);
  });

  it("is exact at a single position of an index-only mask", () => {
    fc.assert(
      fc.property(boolExpr(3), fc.integer({ min: -20, max: 70 }), fc.integer({ min: -20, max: 70 }), (source, q, kv) => {
        const mask = typedMask(source);
        const at = box([q, q], [kv, kv], [1, 1], [2, 2]);
        expect(classifyBlock(mask, at)).toBe(bruteForce(mask, at));
      }),
      { numRuns: 300 },
    );
  });
});

describe("classifyBlock on the masks people write", () => {
  const classify = (source: string, q: [number, number], kv: [number, number]) => classifyBlock(typedMask(source), box(q, kv));

  it("causal", () => {
    const causal = "q_idx >= kv_idx";
    expect(classify(causal, [128, 255], [0, 127])).toBe("full");
    expect(classify(causal, [0, 127], [128, 255])).toBe("empty");
    expect(classify(causal, [128, 255], [128, 255])).toBe("partial");
    // A tail block: q in [256, 272] is past every kv of [128, 255].
    expect(classify(causal, [256, 272], [128, 255])).toBe("full");
  });

  it("sliding window", () => {
    const window = "q_idx - kv_idx < 256 && q_idx >= kv_idx";
    expect(classify(window, [256, 383], [128, 255])).toBe("full");
    expect(classify(window, [384, 511], [128, 255])).toBe("partial");
    expect(classify(window, [512, 639], [0, 127])).toBe("empty");
    expect(classify(window, [0, 127], [128, 255])).toBe("empty");
  });

  it("prefix LM", () => {
    const prefix = "kv_idx < 64 || q_idx >= kv_idx";
    expect(classify(prefix, [0, 63], [0, 63])).toBe("full");
    expect(classify(prefix, [0, 63], [64, 127])).toBe("empty");
    expect(classify(prefix, [64, 127], [64, 127])).toBe("partial");
    expect(classify(prefix, [128, 191], [64, 127])).toBe("full");
  });

  it("block-diagonal and strided masks through // and %", () => {
    expect(classify("q_idx // 64 == kv_idx // 64", [64, 127], [64, 127])).toBe("full");
    expect(classify("q_idx // 64 == kv_idx // 64", [64, 127], [128, 191])).toBe("empty");
    expect(classify("q_idx % 64 < 32", [32, 63], [0, 10])).toBe("empty");
    expect(classify("q_idx % 64 < 32", [64, 95], [0, 10])).toBe("full");
    expect(classify("(q_idx & 15) <= 15", [0, 1000], [0, 10])).toBe("full");
  });

  it("document mask: the buffer is unknown, the causal part still decides the upper triangle", () => {
    const document = "doc[q_idx] == doc[kv_idx] && q_idx >= kv_idx";
    expect(classify(document, [0, 127], [128, 255])).toBe("empty");
    expect(classify(document, [128, 255], [0, 127])).toBe("partial");
    expect(canClassifyByIntervals(typedMask(document))).toBe(false);
  });
});

describe("interval rules", () => {
  const q = (lo: number, hi: number) => box([lo, hi], [0, 0]);

  it("floor division and modulo follow the sign of the divisor", () => {
    expect(intervalOf(typedInt("q_idx // 4"), q(-9, 7))).toEqual({ lo: -3, hi: 1 });
    expect(intervalOf(typedInt("q_idx // (-4)"), q(-9, 7))).toEqual({ lo: -2, hi: 2 });
    expect(intervalOf(typedInt("q_idx % 8"), q(-3, 2))).toEqual({ lo: 0, hi: 7 });
    expect(intervalOf(typedInt("q_idx % 8"), q(9, 13))).toEqual({ lo: 1, hi: 5 });
    expect(intervalOf(typedInt("q_idx % (-8)"), q(9, 13))).toEqual({ lo: -7, hi: -3 });
    expect(intervalOf(typedInt("q_idx % (-8)"), q(-5, -1))).toEqual({ lo: -5, hi: -1 });
  });

  it("a divisor interval holding 0 adds 0 (x // 0 == x % 0 == 0)", () => {
    const byKv = box([10, 20], [-2, 3]);
    expect(intervalOf(typedInt("q_idx // kv_idx"), byKv)).toEqual({ lo: -20, hi: 20 });
    expect(intervalOf(typedInt("q_idx % kv_idx"), byKv)).toEqual({ lo: -1, hi: 2 });
    expect(intervalOf(typedInt("q_idx // kv_idx"), box([10, 20], [0, 0]))).toEqual({ lo: 0, hi: 0 });
    // -3 % -3 is 0: a dividend equal to the divisor is not left unchanged.
    expect(intervalOf(typedInt("q_idx % kv_idx"), box([-3, -1], [-5, -3]))).toEqual({ lo: -3, hi: 0 });
    expect(intervalOf(typedInt("q_idx % kv_idx"), box([-2, 0], [-5, -3]))).toEqual({ lo: -2, hi: 0 });
    expect(intervalOf(typedInt("q_idx % kv_idx"), box([0, 2], [3, 5]))).toEqual({ lo: 0, hi: 2 });
    expect(intervalOf(typedInt("q_idx % kv_idx"), box([3, 5], [5, 7]))).toEqual({ lo: 0, hi: 5 });
  });

  it("bitwise ops are bounded only for non-negative operands", () => {
    expect(intervalOf(typedInt("q_idx & kv_idx"), box([0, 100], [0, 6]))).toEqual({ lo: 0, hi: 6 });
    expect(intervalOf(typedInt("q_idx | kv_idx"), box([4, 9], [0, 6]))).toEqual({ lo: 4, hi: 15 });
    expect(intervalOf(typedInt("q_idx ^ kv_idx"), box([0, 8], [0, 6]))).toEqual({ lo: 0, hi: 15 });
    expect(intervalOf(typedInt("q_idx & 7"), q(-100, 100))).toEqual({ lo: 0, hi: 7 });
    expect(intervalOf(typedInt("q_idx | kv_idx"), box([-4, 9], [0, 6]))).toEqual({ lo: -Infinity, hi: Infinity });
    expect(intervalOf(typedInt("q_idx ^ kv_idx"), box([-5, -5], [3, 3]))).toEqual({ lo: -8, hi: -8 });
  });

  it("values that may leave the safe integer range become unbounded instead of rounding", () => {
    const big = typedInt("q_idx * 4503599627370496"); // 2^52
    expect(intervalOf(big, q(0, 1))).toEqual({ lo: 0, hi: 4503599627370496 });
    expect(intervalOf(big, q(0, 2))).toEqual({ lo: -Infinity, hi: Infinity });
    // ... and an unbounded operand never yields a decided comparison.
    expect(classifyBlock(typedMask("q_idx * 4503599627370496 + kv_idx >= 0"), box([0, 2], [0, 3]))).toBe("partial");
    expect(intervalOf(typedInt("abs(q_idx * 4503599627370496)"), q(-2, 0))).toEqual({ lo: -Infinity, hi: Infinity });
  });

  it("casts: bool to int, int to bool, and anything from a float is unknown", () => {
    const qv = variable("q_idx");
    const truthy = mk("cast", "bool", [qv]);
    expect(intervalOf(truthy, q(1, 5))).toEqual({ lo: 1, hi: 1 });
    expect(intervalOf(truthy, q(-5, -1))).toEqual({ lo: 1, hi: 1 });
    expect(intervalOf(truthy, q(0, 0))).toEqual({ lo: 0, hi: 0 });
    expect(intervalOf(truthy, q(0, 3))).toEqual({ lo: 0, hi: 1 });
    const asFloat = mk("cast", "float32", [qv]);
    expect(intervalOf(mk("cast", "int64", [asFloat]), q(1, 1))).toEqual({ lo: -Infinity, hi: Infinity });
    expect(intervalOf(mk("cast", "bool", [asFloat]), q(1, 1))).toEqual({ lo: 0, hi: 1 });
    expect(intervalOf(mk("cast", "int64", [mk("lt", "bool", [qv, constant(3, "int64")])]), q(0, 2))).toEqual({ lo: 1, hi: 1 });
  });

  it("where picks a branch when its condition is decided and joins them otherwise", () => {
    expect(intervalOf(typedInt("where(q_idx < 10, 1, 100)"), q(0, 5))).toEqual({ lo: 1, hi: 1 });
    expect(intervalOf(typedInt("where(q_idx < 10, 1, 100)"), q(20, 25))).toEqual({ lo: 100, hi: 100 });
    expect(intervalOf(typedInt("where(q_idx < 10, 1, 100)"), q(5, 25))).toEqual({ lo: 1, hi: 100 });
  });

  it("floats are unknown, and a mask with floats or loads cannot be classified by intervals alone", () => {
    expect(classifyBlock(typedMask("q_idx / 2 >= 0"), q(0, 10))).toBe("partial");
    expect(canClassifyByIntervals(typedMask("q_idx / 2 >= kv_idx"))).toBe(false);
    expect(canClassifyByIntervals(typedMask("q_idx >= kv_idx && (q_idx - kv_idx) % 64 != 3"))).toBe(true);
    expect(canClassifyByIntervals(constant(true, "bool"))).toBe(true);
  });
});

describe("errors", () => {
  it("names the range at fault", () => {
    const mask = typedMask("q_idx >= kv_idx");
    expect(() => classifyBlock(mask, box([5, 3], [0, 1]))).toThrow(IntervalError);
    expect(() => classifyBlock(mask, box([5, 3], [0, 1]))).toThrow(/ranges\.q_idx = \[5, 3\]/);
    expect(() => classifyBlock(mask, box([0, 1], [0, 0.5]))).toThrow(/ranges\.kv_idx/);
    expect(() => compileIntervals(mask)({ b: [0, 0], q_idx: [0, 1], kv_idx: [0, 1] } as unknown as BlockRanges)).toThrow(/ranges\.h/);
  });

  it("refuses a mask that is not a bool", () => {
    expect(() => compileBlockClassifier(variable("q_idx"))).toThrow(/a mask must be a bool expression, but this one is int64/);
  });
});
