import fc from "fast-check";
import { describe, expect, it } from "vitest";
import { compileEvaluator, type EvalEnv } from "../../src/ir/evalExpr.js";
import { inferTypes } from "../../src/ir/inferTypes.js";
import { parseExpr } from "../../src/ir/parseExpr.js";
import { printExpr } from "../../src/ir/printExpr.js";
import { simplify } from "../../src/ir/simplify.js";
import { arbitraryIntExpr, arbitraryMaskMod, arbitraryScoreMod, MOD_BUFFERS } from "../helpers/arbitraryMod.js";

const scopeBuffers = Object.entries(MOD_BUFFERS).map(([name, b]) => ({ name, dtype: b.dtype, rank: b.shape.length }));
const bufferValues = [
  { values: [0.5, -1.25, 2, 0.125], shape: [4] },
  { values: [3, -2, 0, 7, -8, 1, 5, -1], shape: [8] },
  { values: [true, false, false, true, true, false, true, false], shape: [8] },
  { values: Array.from({ length: 32 }, (_, i) => (i % 7) * 0.25 - 0.5), shape: [4, 8] },
];
const env = fc.record({
  score: fc.double({ min: -8, max: 8, noNaN: true }),
  b: fc.integer({ min: 0, max: 3 }),
  h: fc.integer({ min: 0, max: 7 }),
  q_idx: fc.integer({ min: 0, max: 300 }),
  kv_idx: fc.integer({ min: 0, max: 300 }),
});

function checkSound(source: string, kind: "scoreMod" | "maskMod" | "intProbe", e: Omit<EvalEnv, "buffers">): void {
  // An integer expression is checked through a comparison, which a mask may hold.
  const text = kind === "intProbe" ? `(${source}) == (${source}) + 0` : source;
  const k = kind === "intProbe" ? "maskMod" : kind;
  const raw = inferTypes(parseExpr(text, k), { kind: k, buffers: scopeBuffers, source: text });
  const simple = simplify(raw);
  const full = { ...e, score: Math.fround(e.score), buffers: bufferValues };
  const before = compileEvaluator(raw, Math.fround)(full);
  const after = compileEvaluator(simple, Math.fround)(full);
  expect(Object.is(before, after) || (Number.isNaN(before) && Number.isNaN(after)), `${printExpr(raw)} -> ${printExpr(simple)}: ${before} vs ${after}`).toBe(true);
}

describe("the simplifier is sound: same value before and after, in float32 arithmetic", () => {
  it("on random score mods", () => {
    fc.assert(fc.property(arbitraryScoreMod(3), env, (s, e) => checkSound(s, "scoreMod", e)), { numRuns: 300, seed: 1 });
  });
  it("on random mask mods", () => {
    fc.assert(fc.property(arbitraryMaskMod(3), env, (s, e) => checkSound(s, "maskMod", e)), { numRuns: 300, seed: 2 });
  });
  it("on random integer expressions", () => {
    fc.assert(fc.property(arbitraryIntExpr(3), env, (s, e) => checkSound(s, "intProbe", e)), { numRuns: 300, seed: 3 });
  });

  it.each([
    ["score * 1", "score"],
    ["score / 1", "score"],
    ["score - 0", "score"],
    ["score + 0", "(score + 0.0)"],
    // the negation folds into the constant -0.0, and x + -0.0 is exactly x
    ["score + -0.0", "score"],
    ["score * (q_idx - q_idx + 1)", "score"],
    ["where(1 < 2, score, score * 2)", "score"],
    ["score * 0", "(score * 0.0)"],
    ["-(-score)", "score"],
  ])("%s simplifies to %s", (source, expected) => {
    const e = simplify(inferTypes(parseExpr(source, "scoreMod"), { kind: "scoreMod", buffers: [], source }));
    expect(printExpr(e)).toBe(expected);
  });
});

describe("folding at the edges", () => {
  it("leaves integer arithmetic past 2^53 unfolded instead of failing", () => {
    const source = "9007199254740991 + 9007199254740991 > q_idx";
    const e = simplify(inferTypes(parseExpr(source, "maskMod"), { kind: "maskMod", buffers: [], source }));
    expect(printExpr(e)).toBe("((9007199254740991 + 9007199254740991) > q_idx)");
  });
  it("prints large float constants so they parse back as floats", () => {
    const source = "score * 1e30";
    const e = simplify(inferTypes(parseExpr(source, "scoreMod"), { kind: "scoreMod", buffers: [], source }));
    const printed = printExpr(e);
    expect(printed).toBe("(score * 1.0000000150474662e+30)");
    const again = simplify(inferTypes(parseExpr(printed, "scoreMod"), { kind: "scoreMod", buffers: [], source: printed }));
    expect(again).toBe(e);
  });
});
