/**
 * Sound interval evaluation of a mask over a box of positions, so a block mask can call a block full or empty
 * in O(nodes) instead of evaluating every position of it. Every int64 node gets the inclusive bounds of the
 * values it can take, every bool node the bounds of its 0/1 value (a tri-state: [1, 1] always true, [0, 0]
 * always false, [0, 1] unknown). Correlation between operands is lost (`q_idx - q_idx` spans the whole box),
 * which only ever makes an answer "partial", never wrong.
 *
 * An int64 interval is either finite within ±(2^53 - 1) or TOP (both bounds infinite). Staying in the safe
 * range keeps the reference evaluator (JS numbers) and the kernel (wrapping int64) in exact agreement, so
 * any node that might leave it becomes TOP, and every rule maps a TOP operand to TOP or to an unknown bool.
 * Floats and buffer loads are TOP as well.
 */
import { intFloorDivMod } from "./evalExpr.js";
import { constValue, type Expr, topoSort, varName } from "./expr.js";
import type { DType, Op } from "./ops.js";

/** Inclusive bounds of the values a node can take; bools as 0/1. */
export interface Interval {
  readonly lo: number;
  readonly hi: number;
}

/** Inclusive [lo, hi] of one index variable. */
export type IndexRange = readonly [lo: number, hi: number];

/** The box of positions a block covers; `b` and `h` may be any single value when the mask does not read them. */
export interface BlockRanges {
  readonly b: IndexRange;
  readonly h: IndexRange;
  readonly q_idx: IndexRange;
  readonly kv_idx: IndexRange;
}

/** full: the mask is true at every position of the box; empty: false at every one; partial: not decided. */
export type BlockKind = "full" | "empty" | "partial";

/** A box that is not a set of safe integers with lo <= hi, or a mask that is not a bool expression. */
export class IntervalError extends Error {
  constructor(message: string) {
    super(message);
    this.name = "IntervalError";
  }
}

const TOP: Interval = { lo: -Infinity, hi: Infinity };
const UNKNOWN_BOOL: Interval = { lo: 0, hi: 1 };
const ZERO: Interval = { lo: 0, hi: 0 };
const point = (v: number): Interval => ({ lo: v, hi: v });
const fromBool = (v: boolean): Interval => point(v ? 1 : 0);
const isPoint = (i: Interval): boolean => i.lo === i.hi;
/** Normalized int64 intervals are finite or TOP; bool intervals are always finite. */
const isBounded = (i: Interval): boolean => Number.isFinite(i.lo) && Number.isFinite(i.hi);
const span = (values: readonly number[]): Interval => ({ lo: Math.min(...values), hi: Math.max(...values) });
const join = (a: Interval, b: Interval): Interval => ({ lo: Math.min(a.lo, b.lo), hi: Math.max(a.hi, b.hi) });

/** Clamps a rule's result to what the node's type can hold, turning anything outside the safe range into TOP. */
function normalize(i: Interval, dtype: DType): Interval {
  if (dtype === "float32") return TOP;
  if (dtype === "bool") return { lo: Math.max(0, i.lo), hi: Math.min(1, i.hi) };
  if (!(i.lo >= -Number.MAX_SAFE_INTEGER && i.hi <= Number.MAX_SAFE_INTEGER)) return TOP;
  return { lo: i.lo + 0, hi: i.hi + 0 };
}

/** The interval of a node from its operands' intervals; `e` gives the node's and its operands' types. */
type Rule = (x: readonly Interval[], e: Expr) => Interval;

/** A rule on finite operands; any TOP operand makes the result TOP. */
const finite = (f: (...x: Interval[]) => Interval): Rule => (x) => (x.every(isBounded) ? f(...x) : TOP);
const floatOnly: Rule = () => TOP;

/** Splits a divisor's interval into its negative and positive parts and whether it holds 0 (x // 0 = x % 0 = 0). */
function divisorParts(d: Interval): { parts: Interval[]; zero: boolean } {
  const parts: Interval[] = [];
  if (d.lo <= -1) parts.push({ lo: d.lo, hi: Math.min(d.hi, -1) });
  if (d.hi >= 1) parts.push({ lo: Math.max(d.lo, 1), hi: d.hi });
  return { parts, zero: d.lo <= 0 && d.hi >= 0 };
}

/** Joins `part` over the sign-definite parts of divisor `d`, plus 0 when `d` can be 0. */
function overDivisor(d: Interval, part: (divisor: Interval) => Interval): Interval {
  const { parts, zero } = divisorParts(d);
  const results = parts.map(part);
  if (zero) results.push(ZERO);
  return results.reduce(join);
}

const floorDiv = (x: number, y: number): number => intFloorDivMod(x, y)[0];
const floorMod = (x: number, y: number): number => intFloorDivMod(x, y)[1];

/**
 * For a divisor of one sign, floor(a / d) is monotone in a and, for each a, monotone in d, so its extremes over
 * the box lie at the corners.
 */
const floorDivPart = (a: Interval) => (d: Interval): Interval =>
  span([floorDiv(a.lo, d.lo), floorDiv(a.lo, d.hi), floorDiv(a.hi, d.lo), floorDiv(a.hi, d.hi)]);

/** a % d takes the sign of d and |a % d| < |d|, and is exact where the quotient does not change over a. */
const floorModPart = (a: Interval) => (d: Interval): Interval => {
  const sameQuotient = isPoint(d) && floorDiv(a.lo, d.lo) === floorDiv(a.hi, d.lo);
  if (sameQuotient) return { lo: floorMod(a.lo, d.lo), hi: floorMod(a.hi, d.lo) };
  if (d.lo > 0) {
    if (a.lo >= 0 && a.hi < d.lo) return a;
    return { lo: 0, hi: a.lo >= 0 ? Math.min(d.hi - 1, a.hi) : d.hi - 1 };
  }
  if (a.hi <= 0 && a.lo > d.hi) return a;
  return { lo: a.hi <= 0 ? Math.max(d.lo + 1, a.lo) : d.lo + 1, hi: 0 };
};

/** The largest value with the bit length of `m` (m >= 0): bounds `|` and `^` of non-negative operands. */
function allOnesCovering(m: number): number {
  let p = 1;
  while (p <= m) p *= 2;
  return p - 1;
}

const exactBits = (a: Interval, b: Interval, f: (x: bigint, y: bigint) => bigint): Interval =>
  point(Number(BigInt.asIntN(64, f(BigInt(a.lo), BigInt(b.lo)))));
const bothPoints = (a: Interval, b: Interval): boolean => isBounded(a) && isBounded(b) && isPoint(a) && isPoint(b);
const nonNegative = (i: Interval): boolean => isBounded(i) && i.lo >= 0;

/** `&` on int64: with one non-negative operand the result lies in [0, that operand's bound], whatever the other. */
function bitAnd(a: Interval, b: Interval): Interval {
  if (bothPoints(a, b)) return exactBits(a, b, (x, y) => x & y);
  if (nonNegative(a) && nonNegative(b)) return { lo: 0, hi: Math.min(a.hi, b.hi) };
  if (nonNegative(a)) return { lo: 0, hi: a.hi };
  if (nonNegative(b)) return { lo: 0, hi: b.hi };
  return TOP;
}

function bitOr(a: Interval, b: Interval): Interval {
  if (bothPoints(a, b)) return exactBits(a, b, (x, y) => x | y);
  if (nonNegative(a) && nonNegative(b)) return { lo: Math.max(a.lo, b.lo), hi: allOnesCovering(Math.max(a.hi, b.hi)) };
  return TOP;
}

function bitXor(a: Interval, b: Interval): Interval {
  if (bothPoints(a, b)) return exactBits(a, b, (x, y) => x ^ y);
  if (nonNegative(a) && nonNegative(b)) return { lo: 0, hi: allOnesCovering(Math.max(a.hi, b.hi)) };
  return TOP;
}

/** `&`, `|`, `^`: min, max and inequality of 0/1 on bools, bitwise on int64. */
const logical = (onBools: (a: Interval, b: Interval) => Interval, onInts: (a: Interval, b: Interval) => Interval): Rule =>
  ([a, b], e) => (e.dtype === "bool" ? onBools(a, b) : onInts(a, b));

/** A comparison decided when the intervals are ordered, unknown when they overlap. */
const comparison = (decide: (a: Interval, b: Interval) => boolean | undefined): Rule => ([a, b]) => {
  const d = decide(a, b);
  return d === undefined ? UNKNOWN_BOOL : fromBool(d);
};
const lessThan = (a: Interval, b: Interval): boolean | undefined => (a.hi < b.lo ? true : a.lo >= b.hi ? false : undefined);
const lessEqual = (a: Interval, b: Interval): boolean | undefined => (a.hi <= b.lo ? true : a.lo > b.hi ? false : undefined);
const equal = (a: Interval, b: Interval): boolean | undefined =>
  bothPoints(a, b) && a.lo === b.lo ? true : a.hi < b.lo || b.hi < a.lo ? false : undefined;

/** `x != 0` of an int64 or bool interval. */
const truthiness = (x: Interval): Interval => (x.lo > 0 || x.hi < 0 ? point(1) : x.lo === 0 && x.hi === 0 ? ZERO : UNKNOWN_BOOL);

/** One row per op, as the other op tables; leaves are read from the box and the constants instead. */
export const INTERVAL_RULES: Readonly<Record<Op, Rule | null>> = {
  var: null,
  const: null,
  load: null,
  neg: finite((a) => ({ lo: -a.hi, hi: -a.lo })),
  not: ([a]) => ({ lo: 1 - a.hi, hi: 1 - a.lo }),
  bitnot: finite((a) => ({ lo: -a.hi - 1, hi: -a.lo - 1 })),
  abs: finite((a) => (a.lo >= 0 ? a : a.hi <= 0 ? { lo: -a.hi, hi: -a.lo } : { lo: 0, hi: Math.max(-a.lo, a.hi) })),
  // On int64 both are the identity; float operands never reach a rule (see `normalize`).
  floor: ([a]) => a,
  ceil: ([a]) => a,
  exp: floatOnly, exp2: floatOnly, log: floatOnly, log2: floatOnly, sqrt: floatOnly, rsqrt: floatOnly,
  tanh: floatOnly, sigmoid: floatOnly, silu: floatOnly, sin: floatOnly, cos: floatOnly, tan: floatOnly,
  cast: ([a], e) => {
    const from = e.src[0].dtype;
    if (from === "float32") return TOP;
    return e.dtype === "bool" ? truthiness(a) : a;
  },
  add: finite((a, b) => ({ lo: a.lo + b.lo, hi: a.hi + b.hi })),
  sub: finite((a, b) => ({ lo: a.lo - b.hi, hi: a.hi - b.lo })),
  mul: finite((a, b) => span([a.lo * b.lo, a.lo * b.hi, a.hi * b.lo, a.hi * b.hi])),
  div: floatOnly,
  floordiv: finite((a, d) => overDivisor(d, floorDivPart(a))),
  mod: finite((a, d) => overDivisor(d, floorModPart(a))),
  pow: floatOnly,
  // Monotone in both operands; on bools these are `and` and `or`. A TOP bound is caught by `normalize`.
  min: ([a, b]) => ({ lo: Math.min(a.lo, b.lo), hi: Math.min(a.hi, b.hi) }),
  max: ([a, b]) => ({ lo: Math.max(a.lo, b.lo), hi: Math.max(a.hi, b.hi) }),
  eq: comparison(equal),
  ne: comparison((a, b) => {
    const d = equal(a, b);
    return d === undefined ? undefined : !d;
  }),
  lt: comparison(lessThan),
  le: comparison(lessEqual),
  gt: comparison((a, b) => lessThan(b, a)),
  ge: comparison((a, b) => lessEqual(b, a)),
  and: logical((a, b) => ({ lo: Math.min(a.lo, b.lo), hi: Math.min(a.hi, b.hi) }), bitAnd),
  or: logical((a, b) => ({ lo: Math.max(a.lo, b.lo), hi: Math.max(a.hi, b.hi) }), bitOr),
  xor: logical((a, b) => (bothPoints(a, b) ? point(a.lo === b.lo ? 0 : 1) : UNKNOWN_BOOL), bitXor),
  where: ([c, a, b]) => (c.lo === 1 ? a : c.hi === 0 ? b : join(a, b)),
};

function checkRanges(ranges: BlockRanges): void {
  for (const name of ["b", "h", "q_idx", "kv_idx"] as const) {
    const range = ranges[name];
    const [lo, hi] = range ?? [];
    if (!Number.isSafeInteger(lo) || !Number.isSafeInteger(hi) || lo > hi) {
      throw new IntervalError(`ranges.${name} = [${range?.join(", ")}] is not a non-empty range [lo, hi] of safe integers`);
    }
  }
}

/** Compiles `root` into a function from a box of positions to the interval of `root`'s values over it. */
export function compileIntervals(root: Expr): (ranges: BlockRanges) => Interval {
  const order = topoSort([root]);
  const slot = new Map(order.map((e, i) => [e, i] as const));
  const steps = order.map((e): ((values: Interval[], ranges: BlockRanges) => Interval) => {
    if (e.dtype === "float32") return () => TOP;
    const name = varName(e);
    if (name) return (_values, ranges) => (name === "score" ? TOP : { lo: ranges[name][0], hi: ranges[name][1] });
    if (e.op === "const") {
      const value = constValue(e);
      const constantInterval = normalize(point(typeof value === "boolean" ? Number(value) : value), e.dtype);
      return () => constantInterval;
    }
    if (e.op === "load") {
      const loaded = normalize(TOP, e.dtype);
      return () => loaded;
    }
    const rule = INTERVAL_RULES[e.op]!;
    const operands = e.src.map((s) => slot.get(s)!);
    return (values) => normalize(rule(operands.map((i) => values[i]), e), e.dtype);
  });
  return (ranges) => {
    checkRanges(ranges);
    const values: Interval[] = new Array(steps.length);
    for (let i = 0; i < steps.length; i++) values[i] = steps[i](values, ranges);
    return values[steps.length - 1];
  };
}

/** The interval of `e`'s values over the box; for one-off queries (compile once when classifying many boxes). */
export function intervalOf(e: Expr, ranges: BlockRanges): Interval {
  return compileIntervals(e)(ranges);
}

/** Compiles a bool mask into a classifier of boxes: never "full" or "empty" unless that holds at every position. */
export function compileBlockClassifier(mask: Expr): (ranges: BlockRanges) => BlockKind {
  if (mask.dtype !== "bool") throw new IntervalError(`a mask must be a bool expression, but this one is ${mask.dtype}`);
  const evaluate = compileIntervals(mask);
  return (ranges) => {
    const { lo, hi } = evaluate(ranges);
    return lo === 1 ? "full" : hi === 0 ? "empty" : "partial";
  };
}

/** Classifies one block of a mask by interval reasoning (ranges inclusive); "partial" when not decided. */
export function classifyBlock(mask: Expr, ranges: BlockRanges): BlockKind {
  return compileBlockClassifier(mask)(ranges);
}

/** True when the mask reads no buffers and no floats, so intervals over the indices decide it exactly enough. */
export function canClassifyByIntervals(mask: Expr): boolean {
  return topoSort([mask]).every((e) => e.op !== "load" && e.dtype !== "float32");
}
