import fc from "fast-check";

/*
 * Random well-typed mods whose float32 kernel and float64 reference must agree within the dtype's tolerance.
 * They extend test/helpers/arbitraryMod.ts to every op, every buffer dtype and rank, truth values and promotions,
 * under two disciplines that keep a mismatch meaning a bug:
 *
 * - Integers and bools are exact: every integer term carries a bound on its magnitude and is reduced with `%`
 *   before it could pass 2^50 (the reference computes int64 in doubles) or 2^24 where it becomes a float.
 *   Floor division and modulo by zero and by negatives are in; int64 overflow is not (see regressions.test.ts).
 * - Floats are either exact (dyadic values on a coarse grid, where +, -, floor, ceil, //, % and comparisons round
 *   nowhere, so they may decide a mask or a where()) or smooth: each smooth term carries a bound on its magnitude
 *   and on its float32 rounding error, grown by each op's Lipschitz constant; terms are rescaled by powers of two
 *   (which round nowhere) to keep both small. No float that can round ever reaches a comparison.
 */

/** Captured buffers every fuzz kernel declares (in a random order): each dtype, both ranks. */
export const FUZZ_BUFFERS = {
  fb: { shape: [4], dtype: "float32" },
  fm: { shape: [4, 8], dtype: "float32" },
  ib: { shape: [8], dtype: "int32" },
  im: { shape: [3, 5], dtype: "int32" },
  lb: { shape: [8], dtype: "int64" },
  bb: { shape: [8], dtype: "bool" },
} as const satisfies Record<string, { shape: readonly number[]; dtype: string }>;

export type FuzzBufferName = keyof typeof FUZZ_BUFFERS;

/** Magnitude bounds of the buffer values the fuzzer generates (see arbitraryBufferValues). */
export const BUFFER_BOUND = { float: 2, int32: 60, int64: 2 ** 40 } as const;

/** A generated expression with what is known of it: |value| <= bound, |float32 - float64| <= err. */
export interface Term {
  src: string;
  bound: number;
  err: number;
}

/** Unit roundoff of float32. */
const U = 2 ** -24;
/** Above this an integer term is reduced, so sums of a few terms stay exact in the reference's doubles. */
const INT_LIMIT = 2 ** 50;
/** Smooth floats are rescaled to stay within this magnitude. */
const FLOAT_LIMIT = 8;
/** Largest float32 rounding error allowed in a score_mod's result (the fp32 tolerance is 2e-5 on outputs). */
export const SCORE_ERR_LIMIT = 1.5e-6;
/** The scaled score q.k/sqrt(D) of N(0, 1) inputs, and its fp32 accumulation error. */
const SCORE_TERM: Term = { src: "score", bound: 8, err: 6e-7 };
/** Query heads, lengths and batch the fuzzer uses at most, so index variables have known bounds. */
export const INDEX_BOUND = { b: 1, h: 7, q_idx: 150, kv_idx: 150 } as const;

const p = (s: string) => `(${s})`;
const intLit = (n: number) => (n < 0 ? p(String(n)) : String(n));
/** A float literal the parser reads as float32 (it has a dot) and that is exact in float32. */
const floatLit = (x: number) => {
  const s = Number.isInteger(x) ? x.toFixed(1) : String(x);
  return x < 0 ? p(s) : s;
};
const term = (src: string, bound: number, err = 0): Term => ({ src, bound, err });

/** Keeps an integer term exact in the reference: reduce it (floor mod, so into [0, m)) when it could grow too big. */
function reduceInt(t: Term, limit = INT_LIMIT, modulus = 1_000_003): Term {
  return t.bound <= limit ? t : term(p(`${t.src} % ${modulus}`), modulus - 1);
}

/** Rescales a smooth term by a power of two (exact) so that |value| <= limit and err <= errLimit. */
function rescale(t: Term, limit = FLOAT_LIMIT, errLimit = Infinity): Term {
  const k = Math.max(0, Math.ceil(Math.log2(t.bound / limit)), Math.ceil(Math.log2(t.err / errLimit)));
  if (!(k > 0)) return t;
  const factor = 2 ** -k;
  return term(p(`${t.src} * ${floatLit(factor)}`), t.bound * factor, t.err * factor);
}

const memo = <T>(f: (depth: number) => fc.Arbitrary<T>) => {
  const cache = new Map<number, fc.Arbitrary<T>>();
  return (depth: number): fc.Arbitrary<T> => {
    let a = cache.get(depth);
    if (!a) cache.set(depth, (a = f(depth)));
    return a;
  };
};

// ---- integers (int64): exact, bounded ------------------------------------------------------------------------

const indexVar = fc.oneof(
  { arbitrary: fc.constantFrom(...(Object.keys(INDEX_BOUND) as (keyof typeof INDEX_BOUND)[])).map((v) => term(v, INDEX_BOUND[v])), weight: 3 },
  // Relative positions, as ALiBi and relative biases use them: negative half the time, so floor division and
  // modulo of negative numbers are common rather than rare.
  { arbitrary: fc.constantFrom("(q_idx - kv_idx)", "(kv_idx - q_idx)", "(h - 4)"), weight: 2 },
).map((v) => (typeof v === "string" ? term(v, INDEX_BOUND.q_idx) : v));
const intConst = fc.oneof(
  { arbitrary: fc.integer({ min: -9, max: 9 }), weight: 4 },
  { arbitrary: fc.constantFrom(16, 64, 127, 128, 1000, -1000, 4096), weight: 1 },
).map((n) => term(intLit(n), Math.abs(n)));

/** An index that is always in range: floor modulo by a positive size is in [0, size). */
const inRange = (i: Term, size: number) => `${i.src} % ${size}`;

export const intExpr = memo((depth: number): fc.Arbitrary<Term> => {
  const small = depth <= 0 ? null : intExpr(Math.min(depth - 1, 1));
  const loads = small
    ? [
        small.map((i) => term(`ib[${inRange(i, 8)}]`, BUFFER_BOUND.int32)),
        fc.tuple(small, small).map(([i, j]) => term(`im[${inRange(i, 3)}][${inRange(j, 5)}]`, BUFFER_BOUND.int32)),
        small.map((i) => term(`lb[${inRange(i, 8)}]`, BUFFER_BOUND.int64)),
      ]
    : [];
  const leaf = fc.oneof({ arbitrary: indexVar, weight: 3 }, { arbitrary: intConst, weight: 2 }, ...loads);
  if (depth <= 0) return leaf;
  const sub = intExpr(depth - 1);
  const cond = boolExpr(depth - 1);
  return fc.oneof(
    { arbitrary: leaf, weight: 3 },
    fc.tuple(sub, fc.constantFrom("+", "-"), sub).map(([a, op, b]) => reduceInt(term(p(`${a.src} ${op} ${b.src}`), a.bound + b.bound))),
    fc.tuple(sub, sub).map(([a, b]) => {
      // Reduce the factors first when the product could leave the exact range.
      if (a.bound * b.bound > INT_LIMIT) a = reduceInt(a, 4096, 4096);
      if (a.bound * b.bound > INT_LIMIT) b = reduceInt(b, 4096, 4096);
      return term(p(`${a.src} * ${b.src}`), a.bound * b.bound);
    }),
    // Floor division and modulo: negative operands and a zero divisor (which gives 0) are meant to happen.
    fc.tuple(sub, fc.oneof(sub, intConst)).map(([a, b]) => term(p(`${a.src} // ${b.src}`), a.bound)),
    fc.tuple(sub, fc.oneof(sub, intConst)).map(([a, b]) => term(p(`${a.src} % ${b.src}`), b.bound)),
    fc.tuple(sub, fc.constantFrom("&", "|", "^"), sub).map(([a, op, b]) => term(p(`${a.src} ${op} ${b.src}`), 2 * Math.max(a.bound, b.bound) + 1)),
    sub.map((a) => term(p(`-${a.src}`), a.bound)),
    sub.map((a) => term(p(`~${a.src}`), a.bound + 1)),
    fc.tuple(fc.constantFrom("abs", "floor", "ceil"), sub).map(([f, a]) => term(`${f}(${a.src})`, a.bound)),
    fc.tuple(fc.constantFrom("min", "max"), sub, sub).map(([f, a, b]) => term(`${f}(${a.src}, ${b.src})`, Math.max(a.bound, b.bound))),
    fc.tuple(sub, fc.integer({ min: -20, max: 20 }), fc.integer({ min: 0, max: 40 })).map(([a, lo, span]) =>
      term(`clamp(${a.src}, ${intLit(lo)}, ${intLit(lo + span)})`, Math.max(Math.abs(lo), Math.abs(lo + span)))),
    fc.tuple(cond, sub, sub).map(([c, a, b]) => term(`where(${c}, ${a.src}, ${b.src})`, Math.max(a.bound, b.bound))),
    // Truth values: an integer condition of ?: counts as `!= 0`.
    fc.tuple(sub, sub, sub).map(([c, a, b]) => term(p(`${c.src} ? ${a.src} : ${b.src}`), Math.max(a.bound, b.bound))),
    // A bool in arithmetic is 0 or 1.
    fc.tuple(cond, sub).map(([c, a]) => term(p(`${p(c)} + ${a.src}`), a.bound + 1)),
  );
});

// ---- exact floats: dyadic values where float32 rounds nowhere -------------------------------------------------

/** Small enough that every value below has at most ~16 significant bits on a grid of 2^-5 or coarser. */
const EXACT_LIMIT = 256;
const DIVISORS = [0.5, 0.75, 1.5, 2, 2.5, -0.75, -1.5];

function reduceExact(t: Term): Term {
  return t.bound <= EXACT_LIMIT ? t : term(p(`${t.src} % 64.0`), 64);
}

/** An integer as a float: exact when |i| < 2^24, so reduce it first. */
const smallInt = (depth: number) => intExpr(depth).map((i) => reduceInt(i, 4096, 4096));

export const exactFloat = memo((depth: number): fc.Arbitrary<Term> => {
  const leaf = fc.oneof(
    fc.integer({ min: -32, max: 32 }).map((k) => term(floatLit(k / 4), Math.abs(k / 4))),
    // Centred on 0, so that floor/ceil/`//`/`%` see negative values as often as positive ones.
    fc.tuple(intExpr(Math.min(depth, 1)), fc.constantFrom(8, 16, 64)).map(([i, m]) => term(p(`(${i.src} % ${m} - ${m / 2}) / 4`), m / 8)),
  );
  if (depth <= 0) return leaf;
  const sub = exactFloat(depth - 1);
  const cond = boolExpr(depth - 1);
  return fc.oneof(
    { arbitrary: leaf, weight: 3 },
    fc.tuple(sub, fc.constantFrom("+", "-"), sub).map(([a, op, b]) => reduceExact(term(p(`${a.src} ${op} ${b.src}`), a.bound + b.bound))),
    {
      arbitrary: fc.tuple(sub, fc.constantFrom("//", "%"), fc.constantFrom(...DIVISORS)).map(([a, op, d]) =>
        term(p(`${a.src} ${op} ${floatLit(d)}`), op === "%" ? Math.abs(d) : a.bound / Math.abs(d) + 1)),
      weight: 3,
    },
    fc.tuple(sub, fc.constantFrom(0.5, 2)).map(([a, f]) => reduceExact(term(p(`${a.src} * ${floatLit(f)}`), a.bound * f))),
    fc.tuple(sub, smallInt(depth - 1)).map(([a, i]) => reduceExact(term(p(`${a.src} * (${i.src} % 4)`), a.bound * 3))),
    fc.tuple(sub, smallInt(depth - 1)).map(([a, i]) => reduceExact(term(p(`${a.src} + ${i.src}`), a.bound + i.bound))),
    sub.map((a) => term(p(`-${a.src}`), a.bound)),
    { arbitrary: fc.tuple(fc.constantFrom("abs", "floor", "ceil"), sub).map(([f, a]) => term(`${f}(${a.src})`, a.bound + 1)), weight: 2 },
    fc.tuple(fc.constantFrom("min", "max"), sub, sub).map(([f, a, b]) => term(`${f}(${a.src}, ${b.src})`, Math.max(a.bound, b.bound))),
    fc.tuple(sub, fc.integer({ min: -16, max: 16 }), fc.integer({ min: 0, max: 16 })).map(([a, lo, span]) =>
      term(`clamp(${a.src}, ${floatLit(lo / 4)}, ${floatLit((lo + span) / 4)})`, Math.max(Math.abs(lo), Math.abs(lo + span)) / 4)),
    fc.tuple(cond, sub, sub).map(([c, a, b]) => term(`where(${c}, ${a.src}, ${b.src})`, Math.max(a.bound, b.bound))),
  );
});

// ---- bools: exact ---------------------------------------------------------------------------------------------

const COMPARISONS = ["==", "!=", "<", "<=", ">", ">="] as const;

/** Shapes masks often have, so that block-sparse structure (full, partial and empty blocks) is common. */
const structuredMask = fc.oneof(
  fc.constant("q_idx >= kv_idx"),
  fc.integer({ min: -40, max: 40 }).map((c) => `kv_idx <= q_idx + ${intLit(c)}`),
  fc.tuple(fc.integer({ min: 1, max: 64 }), fc.integer({ min: 0, max: 64 })).map(([w, o]) => `q_idx - kv_idx < ${w} && kv_idx <= q_idx + ${o}`),
  fc.integer({ min: 2, max: 40 }).map((m) => `kv_idx // ${m} == q_idx // ${m}`),
  fc.integer({ min: 1, max: 100 }).map((n) => `kv_idx < ${n} || q_idx >= kv_idx`),
  fc.constant("ib[kv_idx % 8] <= ib[q_idx % 8]"),
);

export const boolExpr = memo((depth: number): fc.Arbitrary<string> => {
  const constant = fc.constantFrom("true", "false", "True", "False");
  const small = intExpr(Math.min(Math.max(depth - 1, 0), 1));
  const leaf = fc.oneof(
    { arbitrary: constant, weight: 1 },
    { arbitrary: structuredMask, weight: 2 },
    small.map((i) => `bb[${inRange(i, 8)}]`),
    // Raw float32 buffer values compared with dyadic constants: exact in both.
    fc.tuple(small, fc.constantFrom(...COMPARISONS), fc.integer({ min: -8, max: 8 })).map(([i, op, k]) => p(`fb[${inRange(i, 4)}] ${op} ${floatLit(k / 4)}`)),
  );
  if (depth <= 0) return leaf;
  const i = intExpr(depth - 1);
  const x = exactFloat(depth - 1);
  const sub = boolExpr(depth - 1);
  return fc.oneof(
    { arbitrary: leaf, weight: 2 },
    { arbitrary: fc.tuple(i, fc.constantFrom(...COMPARISONS), i).map(([a, op, b]) => p(`${a.src} ${op} ${b.src}`)), weight: 3 },
    { arbitrary: fc.tuple(x, fc.constantFrom(...COMPARISONS), x).map(([a, op, b]) => p(`${a.src} ${op} ${b.src}`)), weight: 3 },
    // An integer against a float compares in float32: exact for the reduced integers.
    fc.tuple(smallInt(depth - 1), fc.constantFrom(...COMPARISONS), x).map(([a, op, b]) => p(`${a.src} ${op} ${b.src}`)),
    fc.tuple(sub, fc.constantFrom("&&", "||", "&", "|", "^", "==", "!="), sub).map(([a, op, b]) => p(`${p(a)} ${op} ${p(b)}`)),
    sub.map((a) => p(`!${p(a)}`)),
    sub.map((a) => p(`~${p(a)}`)),
    fc.tuple(fc.constantFrom("min", "max"), sub, sub).map(([f, a, b]) => `${f}(${a}, ${b})`),
    fc.tuple(sub, sub, sub).map(([c, a, b]) => `where(${c}, ${a}, ${b})`),
    fc.tuple(sub, sub, sub).map(([c, a, b]) => p(`${p(c)} ? ${p(a)} : ${p(b)}`)),
    // Truth values of numbers.
    i.map((a) => p(`!${a.src}`)),
    fc.tuple(i, fc.constantFrom("&&", "||"), sub).map(([a, op, b]) => p(`${a.src} ${op} ${p(b)}`)),
    fc.tuple(x, sub).map(([a, b]) => p(`${a.src} || ${p(b)}`)),
  );
});

// ---- smooth floats: bounded magnitude and rounding error -------------------------------------------------------

/** A unary float function applied to a term: the result's bound and its Lipschitz constant on the clamped input. */
interface Smooth {
  apply: (a: Term) => string;
  bound: (a: Term) => number;
  lipschitz: (a: Term) => number;
}

const SMOOTH: Readonly<Record<string, Smooth>> = {
  tanh: { apply: (a) => `tanh(${a.src})`, bound: () => 1, lipschitz: () => 1 },
  sigmoid: { apply: (a) => `sigmoid(${a.src})`, bound: () => 1, lipschitz: () => 0.25 },
  silu: { apply: (a) => `silu(${a.src})`, bound: (a) => Math.max(a.bound, 0.3), lipschitz: () => 1.1 },
  sin: { apply: (a) => `sin(${a.src})`, bound: () => 1, lipschitz: () => 1 },
  cos: { apply: (a) => `cos(${a.src})`, bound: () => 1, lipschitz: () => 1 },
  tan: { apply: (a) => `tan(clamp(${a.src}, -1.0, 1.0))`, bound: () => 1.56, lipschitz: () => 3.5 },
  exp: { apply: (a) => `exp(clamp(${a.src}, -8.0, 1.5))`, bound: () => 4.5, lipschitz: () => 4.5 },
  exp2: { apply: (a) => `exp2(clamp(${a.src}, -8.0, 2.0))`, bound: () => 4, lipschitz: () => 2.8 },
  log: { apply: (a) => `log(abs(${a.src}) + 0.5)`, bound: (a) => Math.max(0.7, Math.log(a.bound + 0.5)), lipschitz: () => 2 },
  log2: { apply: (a) => `log2(abs(${a.src}) + 0.5)`, bound: (a) => Math.max(1, Math.log2(a.bound + 0.5)), lipschitz: () => 2.9 },
  sqrt: { apply: (a) => `sqrt(abs(${a.src}) + 0.25)`, bound: (a) => Math.sqrt(a.bound + 0.25), lipschitz: () => 1 },
  rsqrt: { apply: (a) => `rsqrt(abs(${a.src}) + 0.25)`, bound: () => 2, lipschitz: () => 4 },
  pow: { apply: (a) => `pow(clamp(abs(${a.src}), 0.0, 4.0) * 0.25 + 0.5, 1.5)`, bound: () => 1.84, lipschitz: () => 0.5 },
  powNeg: { apply: (a) => p(`(clamp(abs(${a.src}), 0.0, 4.0) * 0.25 + 0.5) ** -1.5`), bound: () => 2.83, lipschitz: () => 2.2 },
  square: { apply: (a) => p(`${p(a.src)} ** 2`), bound: (a) => a.bound * a.bound, lipschitz: (a) => 2 * a.bound },
};

/** Libraries and vector code may be a few ulps off on transcendental functions. */
const FUNCTION_ULPS = 4;

function applySmooth(name: string, a: Term): Term {
  const f = SMOOTH[name];
  const bound = f.bound(a);
  return rescale(term(f.apply(a), bound, f.lipschitz(a) * a.err + FUNCTION_ULPS * bound * U));
}

const smoothScore = memo((depth: number): fc.Arbitrary<Term> => smoothFloatOf(depth, true));

function smoothFloatOf(depth: number, withScore: boolean): fc.Arbitrary<Term> {
  const small = intExpr(Math.min(depth, 1));
  const leaf = fc.oneof(
    ...(withScore ? [{ arbitrary: fc.constant(SCORE_TERM), weight: 4 }] : []),
    fc.double({ min: -4, max: 4, noNaN: true, noDefaultInfinity: true }).map((v) => {
      const x = Math.fround(Number(v.toFixed(3)));
      return term(floatLit(Number(v.toFixed(3))), Math.abs(x));
    }),
    small.map((i) => term(`fb[${inRange(i, 4)}]`, BUFFER_BOUND.float)),
    fc.tuple(small, small).map(([i, j]) => term(`fm[${inRange(i, 4)}][${inRange(j, 8)}]`, BUFFER_BOUND.float)),
    // Integers as floats: reduced, then scaled by a constant (rounds once).
    fc.tuple(small, fc.constantFrom(3, 7, 16, 64)).map(([i, d]) => term(p(`${i.src} % 64 / ${d}`), 63 / d, (63 / d) * U)),
    exactFloat(Math.min(depth, 1)).map((x) => term(`clamp(${x.src}, -4.0, 4.0)`, 4)),
    boolExpr(0).map((c) => term(`where(${c}, 1.5, -0.5)`, 1.5)),
  );
  if (depth <= 0) return leaf;
  const sub = smoothFloatOf(depth - 1, withScore);
  const cond = boolExpr(depth - 1);
  const combine = (src: string, bound: number, err: number) => rescale(term(src, bound, err + bound * U));
  return fc.oneof(
    { arbitrary: leaf, weight: 3 },
    { arbitrary: fc.tuple(sub, fc.constantFrom("+", "-"), sub).map(([a, op, b]) => combine(p(`${a.src} ${op} ${b.src}`), a.bound + b.bound, a.err + b.err)), weight: 2 },
    fc.tuple(sub, sub).map(([a, b]) => combine(p(`${a.src} * ${b.src}`), a.bound * b.bound, a.err * b.bound + b.err * a.bound)),
    fc.tuple(sub, small).map(([a, i]) => combine(p(`${a.src} * (${i.src} % 5)`), 4 * a.bound, 4 * a.err)),
    // Division by something at least 1: Lipschitz in both operands.
    fc.tuple(sub, sub).map(([a, b]) => combine(p(`${a.src} / (abs(${b.src}) + 1.0)`), a.bound, a.err + a.bound * b.err + 2 * a.bound * U)),
    sub.map((a) => term(p(`-${a.src}`), a.bound, a.err)),
    sub.map((a) => term(`abs(${a.src})`, a.bound, a.err)),
    sub.map((a) => term(p(`+${a.src}`), a.bound, a.err)),
    { arbitrary: fc.tuple(fc.constantFrom(...Object.keys(SMOOTH)), sub).map(([f, a]) => applySmooth(f, a)), weight: 6 },
    fc.tuple(fc.constantFrom("min", "max"), sub, sub).map(([f, a, b]) => term(`${f}(${a.src}, ${b.src})`, Math.max(a.bound, b.bound), Math.max(a.err, b.err))),
    fc.tuple(sub, fc.integer({ min: -16, max: 0 }), fc.integer({ min: 0, max: 16 })).map(([a, lo, hi]) =>
      term(`clamp(${a.src}, ${floatLit(lo / 4)}, ${floatLit(hi / 4)})`, a.bound, a.err)),
    fc.tuple(cond, sub, sub).map(([c, a, b]) => term(`where(${c}, ${a.src}, ${b.src})`, Math.max(a.bound, b.bound), Math.max(a.err, b.err))),
    fc.tuple(small, sub, sub).map(([c, a, b]) => term(p(`${c.src} ? ${a.src} : ${b.src}`), Math.max(a.bound, b.bound), Math.max(a.err, b.err))),
  );
}

/**
 * A score_mod and its error estimate: smooth in `score`, with exact conditions, and sometimes `-inf` at positions
 * an exact condition picks (score_mod may mask too; a row it masks everywhere gives zeros and lse = -inf).
 * NaN scores are left out: the fuzzer found the kernel writing zeros where a row attends a NaN, the known bug
 * test/e2e/ieee.test.ts keeps; a `where(c, t, nan)` branch here finds it again within a few dozen cases.
 */
export function scoreModTerm(depth = 3): fc.Arbitrary<Term> {
  const smooth = fc.oneof(
    { arbitrary: smoothScore(depth), weight: 2 },
    // score + f(score-dependent term): the classic shape (soft-capping, biases), with every function equally likely.
    fc.tuple(fc.constantFrom(...Object.keys(SMOOTH)), smoothScore(depth - 1)).map(([f, a]) => {
      const g = applySmooth(f, a);
      return rescale(term(p(`score + ${g.src}`), SCORE_TERM.bound + g.bound, SCORE_TERM.err + g.err + (SCORE_TERM.bound + g.bound) * U));
    }),
    // A sum of independent terms: more ops per compiled kernel, each still visible in the logits.
    { arbitrary: fc.array(smoothScore(depth - 1), { minLength: 2, maxLength: 4 }).map(sumOf), weight: 2 },
  );
  const body = smooth.map((t) => rescale(t, FLOAT_LIMIT, SCORE_ERR_LIMIT));
  return fc.oneof(
    { arbitrary: body, weight: 6 },
    { arbitrary: fc.tuple(boolExpr(Math.max(depth - 1, 0)), body).map(([c, t]) => term(`where(${c}, ${t.src}, -inf)`, t.bound, t.err)), weight: 1 },
  );
}

function sumOf(terms: Term[]): Term {
  return terms.reduce((sum, t) => {
    const bound = sum.bound + t.bound;
    return term(p(`${sum.src} + ${t.src}`), bound, sum.err + t.err + bound * U);
  });
}

export const arbitraryScoreMod = (depth = 3): fc.Arbitrary<string> => scoreModTerm(depth).map((t) => t.src);
export const arbitraryMaskMod = (depth = 3): fc.Arbitrary<string> => boolExpr(depth);
