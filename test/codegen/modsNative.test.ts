import fc from "fast-check";
import { describe, expect, it } from "vitest";
import { compileEvaluator } from "../../src/ir/evalExpr.js";
import { flexAttention } from "../../src/ir/flexAttention.js";
import type { AttentionGraph } from "../../src/ir/graph.js";
import { arbitraryMaskMod, arbitraryScoreMod, MOD_BUFFERS } from "../helpers/arbitraryMod.js";
import { evaluateModsNatively, type ModProbe } from "../helpers/modProgram.js";

const slopes = [0.5, -1.25, 2, 0.125];
const tbl = [3, -2, 0, 7, -8, 1, 5, -1];
const flags = [1, 0, 0, 1, 1, 0, 1, 0];
const bias = Array.from({ length: 32 }, (_, i) => (i % 7) * 0.25 - 0.5);
const probeBuffers: ModProbe["buffers"] = [
  { data: slopes, dims: [4, 1], ctype: "float" },
  { data: tbl, dims: [8, 1], ctype: "int32_t" },
  { data: flags, dims: [8, 1], ctype: "uint8_t" },
  { data: bias, dims: [4, 8], ctype: "float" },
];
const interpreterBuffers = [
  { values: slopes, shape: [4] },
  { values: tbl, shape: [8] },
  { values: flags.map(Boolean), shape: [8] },
  { values: bias, shape: [4, 8] },
];

const graphOf = (scoreMod: string, maskMod: string): AttentionGraph =>
  flexAttention({
    name: "probe",
    query: { shape: [1, 8, 16, 16], dtype: "float32" },
    key: { shape: [1, 8, 16, 16], dtype: "float32" },
    value: { shape: [1, 8, 16, 16], dtype: "float32" },
    buffers: MOD_BUFFERS,
    scoreMod,
    maskMod,
  });

const points: ModProbe["points"] = [];
for (let i = 0; i < 24; i++) points.push([i % 3, (i * 5) % 8, (i * 37) % 300, (i * 53) % 300, Math.fround(((i * 7919) % 97) / 12 - 4)]);

/** Compiles the mods to C++ and compares every point with the float64 interpreter: masks exactly, scores within 1e-4. */
function compare(cases: Array<[string, string]>): void {
  const graphs = cases.map(([s, m]) => graphOf(s, m));
  const native = evaluateModsNatively(graphs.map((graph) => ({ graph, probe: { buffers: probeBuffers, points } })));
  graphs.forEach((graph, c) => {
    const score = compileEvaluator(graph.scoreMod);
    const mask = compileEvaluator(graph.maskMod);
    points.forEach(([b, h, q_idx, kv_idx, s], p) => {
      const env = { score: s, b, h, q_idx, kv_idx, buffers: interpreterBuffers };
      const want = score(env) as number;
      const keep = mask(env) as boolean;
      const [gotScore, gotMask, gotMasked, status] = native[c][p];
      const label = `${cases[c][0]} | ${cases[c][1]} at ${[b, h, q_idx, kv_idx, s]}`;
      expect(status, label).toBe(0);
      expect(gotMask, label).toBe(keep ? 1 : 0);
      if (Number.isNaN(want)) expect(gotScore, label).toBeNaN();
      else expect(Math.abs(gotScore - want), label).toBeLessThanOrEqual(1e-4 * (1 + Math.abs(want)));
      if (!keep) expect(gotMasked, label).toBe(-Infinity);
    });
  });
}

describe("generated C++ of mods agrees with the float64 interpreter", () => {
  it("on the example mods", () => {
    compare([
      ["score", "true"],
      ["score", "q_idx >= kv_idx"],
      ["score + slopes[h % 4] * (kv_idx - q_idx)", "q_idx - kv_idx < 256 && q_idx >= kv_idx"],
      ["30 * tanh(score / 30)", "tbl[q_idx % 8] == tbl[kv_idx % 8]"],
      ["score + bias[(q_idx - kv_idx) % 4][kv_idx // 64]", "kv_idx < 37 || q_idx >= kv_idx"],
      ["where(flags[h], score * -2, score)", "!flags[kv_idx % 8] | (q_idx == kv_idx)"],
      ["score * (-7 // 2) + (-7 % 3) + (7 % -3) + (5 // 0) + (5 % 0)", "(~q_idx & 7) ^ kv_idx > 100 && kv_idx & 1 == 0"],
      ["min(score, nan) + max(inf, score)", "true"],
      ["sqrt(abs(score)) + rsqrt(abs(score) + 1) + exp2(score) + log2(abs(score) + 1) + silu(score) + sigmoid(score)", "true"],
      ["sin(score) + cos(score) + tan(score / 8) + floor(score) + ceil(score) + score ** 2 + log(abs(score) + 1) + score // 0.75 + score % 0.75", "true"],
    ]);
  });

  it("on random mods (fast-check, one compile for the batch)", () => {
    const cases = fc.sample(fc.tuple(arbitraryScoreMod(3), arbitraryMaskMod(3)), { numRuns: 40, seed: 7 });
    compare(cases);
  });
});
