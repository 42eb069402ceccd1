import { describe, expect, it } from "vitest";
import { SpecError } from "../../src/ir/errors.js";
import { inferTypes } from "../../src/ir/inferTypes.js";
import { parseExpr } from "../../src/ir/parseExpr.js";
import { printExpr } from "../../src/ir/printExpr.js";
import { simplify } from "../../src/ir/simplify.js";
import { buffer, clamp, type ScoreModFn, traceScoreMod, traceMaskMod, where, type MaskModFn } from "../../src/ir/trace.js";

const buffers = [
  { name: "slopes", dtype: "float32" as const, rank: 1 },
  { name: "doc", dtype: "int32" as const, rank: 1 },
  { name: "bias", dtype: "float32" as const, rank: 2 },
];
const typed = (source: string, kind: "scoreMod" | "maskMod" = "scoreMod") =>
  simplify(inferTypes(parseExpr(source, kind), { kind, buffers, source }));
const tracedScore = (fn: ScoreModFn) => simplify(inferTypes(traceScoreMod(fn), { kind: "scoreMod", buffers }));
const tracedMask = (fn: MaskModFn) => simplify(inferTypes(traceMaskMod(fn), { kind: "maskMod", buffers }));

const slopes = buffer("slopes");
const doc = buffer("doc");
const bias = buffer("bias");

describe("string and traced mods meet in the same graph", () => {
  const cases: Array<[string, ScoreModFn]> = [
    ["score + slopes[h] * (kv_idx - q_idx)", (s, _b, h, q, kv) => s.add(slopes.at(h).mul(kv.sub(q)))],
    ["30 * tanh(score / 30)", (s) => s.div(30).tanh().mul(30).mul(1)],
    ["score + bias[q_idx % 16][kv_idx // 16]", (s, _b, _h, q, kv) => s.add(bias.at(q.mod(16), kv.floordiv(16)))],
    ["where(q_idx >= kv_idx, score, -inf)", (s, _b, _h, q, kv) => where(q.ge(kv), s, -Infinity)],
    ["clamp(score, -5.5, 5.5) * 2", (s) => clamp(s, -5.5, 5.5).mul(2)],
    ["q_idx >= kv_idx ? score : score * 0.5", (s, _b, _h, q, kv) => where(q.ge(kv), s, s.mul(0.5))],
  ];
  it.each(cases)("%s", (source, fn) => {
    const a = typed(source);
    const b = tracedScore(fn);
    // Operand order is kept (no reassociation, which is not exact in IEEE), so `30 * t` and `t * 30 * 1`
    // differ; `* 1` is dropped because it is exact.
    if (source.startsWith("30 *")) {
      expect(printExpr(b)).toBe("(tanh((score / 30.0)) * 30.0)");
      expect(printExpr(a)).toBe("(30.0 * tanh((score / 30.0)))");
      return;
    }
    expect(printExpr(b)).toBe(printExpr(a));
    expect(b.hash).toBe(a.hash);
    expect(b).toBe(a); // hash-consed: the very same node
  });

  it("mask mods: document mask", () => {
    const a = typed("doc[q_idx] == doc[kv_idx] && q_idx >= kv_idx", "maskMod");
    const b = tracedMask((_b, _h, q, kv) => doc.at(q).eq(doc.at(kv)).and(q.ge(kv)));
    expect(b).toBe(a);
    expect(a.dtype).toBe("bool");
  });
});

describe("parser", () => {
  it.each([
    ["1 + 2 * 3", "7"],
    ["2 ** 3 ** 2", "512"],
    ["-2 ** 2", "-4"],
    ["(1 + 2) * 3", "9"],
    ["7 // 2", "3"],
    ["-7 // 2", "-4"],
    ["-7 % 3", "2"],
    ["7 % -3", "-2"],
    ["1 < 2 && 2 < 1 || true", "true"],
    ["true ? 1 : 2", "1"],
    ["~5", "-6"],
    ["6 & 3 | 8", "10"],
    ["5 & 1 == 1", "true"],
    ["1 | 2 > 2", "true"],
    ["1 / 4", "0.25"],
  ])("folds %s to %s", (source, expected) => {
    const kind = expected === "true" ? "maskMod" : "scoreMod";
    const e = simplify(inferTypes(parseExpr(source, kind), { kind, buffers: [], source }));
    expect(e.op).toBe("const");
    expect(printExpr(e)).toBe(expected.includes(".") || expected === "true" ? expected : `${expected}.0`);
  });

  it.each([
    ["score +", "scoreMod:8: the expression ends too early"],
    ["score $ 2", "scoreMod:7: unexpected character '$'"],
    ["(score", "scoreMod:7: expected ')' before the end"],
    ["score 2", "scoreMod:7: unexpected '2' after the end of the expression"],
    ["scroe * 2", "scoreMod:1: unknown name 'scroe'"],
    ["score + slope[h]", "scoreMod:9: unknown buffer 'slope'"],
    ["score + slopes[h][0]", "scoreMod:9: buffer 'slopes' has rank 1 but is indexed with 2 indices"],
    ["score + slopes[score]", "scoreMod:16: an index of 'slopes' must be an integer, not float32"],
    ["score + foo(h)", "scoreMod:9: unknown function 'foo'"],
    ["exp(score, 2)", "scoreMod:1: exp() takes 1 argument, got 2"],
    ["q_idx >= kv_idx", "scoreMod:7: a score_mod must produce a number"],
    ["score & 1", "scoreMod:7: and(float32, int64): bitwise operators need bool or integer operands, not float32"],
    ["", "scoreMod:1: the expression is empty"],
    ["q_idx < kv_idx < 3", "scoreMod:16: comparisons do not chain"],
  ])("rejects %j", (source, message) => {
    expect(() => typed(source)).toThrow(SpecError);
    expect(() => typed(source)).toThrow(message);
  });

  it("mask errors name the field and column", () => {
    expect(() => typed("q_idx - kv_idx", "maskMod")).toThrow("SpecError at maskMod:7: a mask_mod must produce a bool, but this expression is int64");
    expect(() => typed("score > 0", "maskMod")).toThrow("maskMod:1: 'score' is not available in a mask_mod");
  });

  it("shows the source with a caret under the column", () => {
    try {
      typed("score + slope[h]");
      expect.unreachable();
    } catch (e) {
      expect((e as Error).message).toBe(
        "SpecError at scoreMod:9: unknown buffer 'slope'\n  score + slope[h]\n          ^\n  hint: did you mean 'slopes'?",
      );
    }
  });
});
