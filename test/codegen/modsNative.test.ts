import fc from "fast-check";
import { describe, expect, it } from "vitest";
import { compileEvaluator } from "../../src/ir/evalExpr.js";
import { flexAttention } from "../../src/ir/flexAttention.js";
import type { AttentionGraph } from "../../src/ir/graph.js";
import { arbitraryMaskMod, arbitraryScoreMod, MOD_BUFFERS } from "../helpers/arbitraryMod.js";
import { compareModFormsNatively, evaluateModsNatively, type ModProbe } from "../helpers/modProgram.js";

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

/** Starts compiling the mods of `cases` to C++ and evaluating them at every point (see `compare`). */
function evaluate(cases: Array<[string, string]>) {
  const graphs = cases.map(([s, m]) => graphOf(s, m));
  const native = evaluateModsNatively(graphs.map((graph) => ({ graph, probe: { buffers: probeBuffers, points } })));
  native.catch(() => {});
  return { cases, graphs, native };
}

/** Compares every point of an `evaluate` with the float64 interpreter: masks exactly, scores within 1e-4. */
async function compare({ cases, graphs, native: pending }: ReturnType<typeof evaluate>): Promise<void> {
  const native = await pending;
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

const EXAMPLE_MODS: Array<[string, string]> = [
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
];

describe("generated C++ of mods agrees with the float64 interpreter", () => {
  it("on the example mods", async () => {
    await compare(examples);
  });

  it("on random mods (fast-check, one compile for the batch)", async () => {
    await compare(random);
  });
});

/** Mods that between them use every op in the vector form: each function, int64 and bool lanes, gathers from every buffer dtype. */
const EVERY_OP_MODS: Array<[string, string]> = [
  [
    "where(score > 0, exp(score / 8) + tanh(score) * sigmoid(score) - silu(score / 4), max(score, bias[h][kv_idx % 8]) - min(score, -1.5)) + abs(score) + floor(score * 0.5) + ceil(score / 3) + sqrt(abs(score)) + rsqrt(abs(score) + 1) + exp2(score / 16) + log(abs(score) + 1) + log2(abs(score) + 2) + sin(score) + cos(score) + tan(score / 64) + score ** 2 + score ** 1.5 + score // 3 + score % 2.5 - score / 7 + -score",
    "kv_idx <= q_idx + 3",
  ],
  [
    "score + (kv_idx // 3 - kv_idx % 5 + (kv_idx // 8) * 3 - kv_idx % 16 + (-kv_idx) // 4 + (-kv_idx) % 4 + abs(q_idx - kv_idx) + min(kv_idx, q_idx) - max(kv_idx, 7) + (kv_idx & 6) + (kv_idx | 1) + (kv_idx ^ q_idx) + ~kv_idx + flags[kv_idx % 8] + kv_idx // (q_idx + 1) + kv_idx % (h - 1) + -kv_idx) + where(tbl[kv_idx % 8] > 1, score, -score) + flags[(kv_idx + 1) % 8] + tbl[kv_idx % 8] * 1000000007 * 1000000007 + where(score < 0, kv_idx, 3) + where(score > 1, 0.5, kv_idx) + slopes[kv_idx % 4] + where(where(kv_idx > 9, flags[kv_idx % 8], score > 0) && score * kv_idx < 1000, 1.0, -1.0)",
    "(flags[kv_idx % 8] || kv_idx < 4) && !(kv_idx == q_idx + 1) && ((kv_idx > 2) != (q_idx > 30)) && (flags[kv_idx % 8] >= (kv_idx < 20)) && (flags[kv_idx % 8] < (kv_idx > 7)) == (kv_idx % 3 == 0) && (tbl[kv_idx % 8] != 3 || (kv_idx ^ 5) > 2) && min(kv_idx > 1, q_idx > 1) <= max(kv_idx > 5, flags[q_idx % 8])",
  ],
  ["kv_idx - q_idx", "tbl[kv_idx] >= 0"],
  // Both roots invariant along the row: their splats are made before the loop (a fuzzed kernel once lacked them).
  ["(h + 1) * 0.5", "q_idx % 3 != 1"],
];

/** Starts building and running the program that compares the two forms of the mods of `mods`. */
function compareForms(mods: Array<[string, string]>) {
  const results = compareModFormsNatively(mods.map(([s, m]) => ({ graph: graphOf(s, m), buffers: probeBuffers })));
  results.catch(() => {});
  return { mods, results };
}

// The four programs build at import, side by side (one g++ per core); each test waits for its own.
const examples = evaluate(EXAMPLE_MODS);
const random = evaluate(fc.sample(fc.tuple(arbitraryScoreMod(3), arbitraryMaskMod(3)), { numRuns: 40, seed: 7 }));
const examplesAndEveryOp = compareForms([...EXAMPLE_MODS, ...EVERY_OP_MODS]);
const randomForms = compareForms(fc.sample(fc.tuple(arbitraryScoreMod(4), arbitraryMaskMod(4)), { numRuns: 40, seed: 11 }));

describe("the vector form of the mods computes the scalar form's bits", () => {
  const expectSame = async ({ mods, results }: ReturnType<typeof compareForms>) =>
    (await results).forEach((r, c) => {
      expect(r.rows, mods[c].join(" | ")).toBe(4 * 3 * 40 * 2);
      expect({ mods: mods[c], mismatches: r.mismatches, details: r.details }).toEqual({ mods: mods[c], mismatches: 0, details: [] });
    });

  it("on the example mods and mods using every op, compiled as kernels are (-O3 -march=native)", async () => {
    await expectSame(examplesAndEveryOp);
  });

  it("on random mods (fast-check)", async () => {
    await expectSame(randomForms);
  });
});
