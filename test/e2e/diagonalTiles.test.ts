/**
 * Partial prefill tiles under an index-only mask: each row keeps positions up to its last kept one, and where every
 * row of a tile keeps exactly a prefix of it (a causal diagonal) and score_mod is the identity, the tile's softmax runs
 * on those prefixes without calling the mods again (md_softmax_prefix_rows). Masks that are prefixes, that have a
 * hole or a window start inside a tile (the general path), rows that keep nothing, and NaN query rows, against the
 * float64 reference. The configuration is e2e/ieee.test.ts's, built as that file builds it (the suite's fast builds,
 * test/helpers/fastBuilds.ts), so the two files share one engine.
 */
import { describe, expect, it } from "vitest";
import { flexAttention } from "../../src/ir/flexAttention.js";
import { generateInputs } from "../../src/io/generateInputs.js";
import { compareOutputs, TOLERANCE } from "../../src/reference/compareOutputs.js";
import { referenceAttention } from "../../src/reference/referenceAttention.js";
import { toFloat64 } from "../../src/runtime/tensor.js";
import { kernelFor, prebuild } from "../helpers/checkKernel.js";
import { useFastBuilds } from "../helpers/fastBuilds.js";

useFastBuilds();

const B = 2;
const HQ = 4;
const HKV = 2;
const D = 16;
const L = 45;

const graphOf = (name: string, maskMod: string, scoreMod?: string) =>
  flexAttention({
    name,
    query: { shape: [B, HQ, L, D], dtype: "float32" },
    key: { shape: [B, HKV, L, D], dtype: "float32" },
    value: { shape: [B, HKV, L, D], dtype: "float32" },
    maskMod,
    ...(scoreMod ? { scoreMod } : {}),
    blockSize: [16, 16],
    returnLse: true,
  });

const CASES = [
  { what: "causal: every diagonal row a prefix", graph: graphOf("causal", "q_idx >= kv_idx") },
  { what: "causal shifted by 5: the first rows keep nothing", graph: graphOf("shifted", "q_idx >= kv_idx + 5") },
  { what: "causal with a hole at position 3 (not a prefix)", graph: graphOf("hole", "q_idx >= kv_idx && kv_idx != 3") },
  { what: "a window of 6 (its start inside a tile)", graph: graphOf("window", "q_idx >= kv_idx && q_idx - kv_idx < 6") },
  { what: "causal under a score_mod (the mods are called)", graph: graphOf("scored", "q_idx >= kv_idx", "score * 2") },
];
prebuild(CASES.map((c) => c.graph));

describe("partial prefill tiles against the float64 reference", () => {
  for (const { what, graph } of CASES) {
    it(what, async () => {
      const kernel = await kernelFor(graph);
      for (const seed of [1, 2]) {
        const inputs = generateInputs(graph, seed);
        const result = kernel.run(inputs, { template: "flash_attention" });
        const ref = referenceAttention(graph, inputs);
        const out = compareOutputs(toFloat64(result.out), ref.out, TOLERANCE.float32);
        expect(out.ok, `${what}, seed ${seed}: out ${JSON.stringify(out)}`).toBe(true);
        const lse = compareOutputs(toFloat64(result.lse!), ref.lse, TOLERANCE.float32);
        expect(lse.ok, `${what}, seed ${seed}: lse ${JSON.stringify(lse)}`).toBe(true);
      }
    });
  }

  it("a NaN query row is NaN where it keeps a position and zeros (lse -inf) where it keeps none", async () => {
    const graph = CASES[1].graph;
    const kernel = await kernelFor(graph);
    const inputs = generateInputs(graph, 3);
    const q = inputs.query.data as Float32Array;
    // rows 2 (keeps nothing under q_idx >= kv_idx + 5) and 20 (keeps 0..15) of batch 0, head 1
    for (const row of [2, 20]) q.fill(Number.NaN, ((0 * HQ + 1) * L + row) * D, ((0 * HQ + 1) * L + row + 1) * D);
    const result = kernel.run(inputs, { template: "flash_attention" });
    const ref = referenceAttention(graph, inputs);
    const out = toFloat64(result.out);
    const at = (row: number) => ((0 * HQ + 1) * L + row) * D;
    expect(Array.from(ref.out.subarray(at(2), at(2) + D))).toEqual(new Array(D).fill(0));
    expect(ref.out.subarray(at(20), at(20) + D).every(Number.isNaN)).toBe(true);
    const cmp = compareOutputs(out, ref.out, TOLERANCE.float32);
    expect(cmp.ok, JSON.stringify(cmp)).toBe(true);
    expect(toFloat64(result.lse!)[(0 * HQ + 1) * L + 2]).toBe(-Infinity);
  });
});
