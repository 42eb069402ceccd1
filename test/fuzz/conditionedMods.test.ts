import fc from "fast-check";
import { describe, expect, it } from "vitest";
import { compileEvaluator, type EvalEnv } from "../../src/ir/evalExpr.js";
import { parseSpec } from "../../src/ir/spec.js";
import { boolExpr, exactFloat, FUZZ_BUFFERS, type FuzzBufferName, INDEX_BOUND, intExpr, SCORE_ERR_LIMIT, scoreModTerm, type Term } from "./conditionedMods.js";
import { arbitraryBufferValues, arbitrarySpec, type BufferValues } from "./kernelCase.js";

/*
 * The fuzzer's generators promise that the float32 kernel and the float64 reference can only disagree by
 * rounding that the tolerances absorb. These checks hold them to it without compiling anything: the reference
 * interpreter evaluates each mod in float64 and, with every float result rounded to float32, as the kernel does.
 */

function graphWith(scoreMod?: string, maskMod?: string) {
  return parseSpec({
    name: "probe",
    query: { shape: [1, 8, 16, 16], dtype: "float32" },
    key: { shape: [1, 2, 16, 16], dtype: "float32" },
    value: { shape: [1, 2, 16, 16], dtype: "float32" },
    buffers: FUZZ_BUFFERS,
    ...(scoreMod === undefined ? {} : { scoreMod }),
    ...(maskMod === undefined ? {} : { maskMod }),
  });
}

const point = fc.record({
  b: fc.integer({ min: 0, max: INDEX_BOUND.b }),
  h: fc.integer({ min: 0, max: INDEX_BOUND.h }),
  q_idx: fc.integer({ min: 0, max: INDEX_BOUND.q_idx }),
  kv_idx: fc.integer({ min: 0, max: INDEX_BOUND.kv_idx }),
  // A scaled score is a float32; the generator's error budget also covers its own accumulation error.
  score: fc.double({ min: -8, max: 8, noNaN: true }).map(Math.fround),
});

function env(p: { b: number; h: number; q_idx: number; kv_idx: number; score: number }, values: BufferValues): EvalEnv {
  const buffers = (Object.keys(FUZZ_BUFFERS) as FuzzBufferName[]).map((name) => ({
    values: FUZZ_BUFFERS[name].dtype === "bool" ? values[name].map(Boolean) : values[name],
    shape: FUZZ_BUFFERS[name].shape,
  }));
  return { ...p, buffers };
}

const points = fc.array(fc.tuple(point, arbitraryBufferValues), { minLength: 8, maxLength: 8 });

describe("the fuzzer's mod generators", () => {
  it("make specs that validate", () => {
    fc.assert(fc.property(arbitrarySpec, (spec) => void parseSpec(spec)), { numRuns: 200, seed: 11 });
  });

  it("keep score_mods within their float32 error estimate, and the estimate within the fuzz budget", () => {
    fc.assert(
      fc.property(scoreModTerm(3), points, (t: Term, at) => {
        expect(t.err).toBeLessThanOrEqual(SCORE_ERR_LIMIT);
        const graph = graphWith(t.src);
        const exact = compileEvaluator(graph.scoreMod);
        const rounded = compileEvaluator(graph.scoreMod, Math.fround);
        for (const [p, values] of at) {
          const e = env(p, values);
          const want = exact(e) as number;
          const got = rounded(e) as number;
          if (!Number.isFinite(want)) expect(got).toBe(want);
          else expect(Math.abs(got - want), `${t.src} at ${JSON.stringify(p)}`).toBeLessThanOrEqual(t.err);
        }
      }),
      { numRuns: 300, seed: 12 },
    );
  });

  it("make masks that float32 rounding cannot change", () => {
    fc.assert(
      fc.property(boolExpr(3), points, (mask, at) => {
        const graph = graphWith(undefined, mask);
        const exact = compileEvaluator(graph.maskMod);
        const rounded = compileEvaluator(graph.maskMod, Math.fround);
        for (const [p, values] of at) expect(rounded(env(p, values)), mask).toBe(exact(env(p, values)));
      }),
      { numRuns: 300, seed: 13 },
    );
  });

  it("keep integers within their bound (so the reference's doubles hold them exactly)", () => {
    fc.assert(
      fc.property(intExpr(3), points, (t: Term, at) => {
        expect(t.bound).toBeLessThanOrEqual(2 ** 53);
        const within = compileEvaluator(graphWith(undefined, `abs(${t.src}) <= ${t.bound}`).maskMod);
        for (const [p, values] of at) expect(within(env(p, values)), t.src).toBe(true);
      }),
      { numRuns: 300, seed: 14 },
    );
  });

  it("keep exact floats exact", () => {
    fc.assert(
      fc.property(exactFloat(3), points, (t: Term, at) => {
        const graph = graphWith(t.src);
        const exact = compileEvaluator(graph.scoreMod);
        const rounded = compileEvaluator(graph.scoreMod, Math.fround);
        for (const [p, values] of at) {
          const e = env(p, values);
          expect(rounded(e), t.src).toBe(exact(e));
        }
      }),
      { numRuns: 300, seed: 15 },
    );
  });
});
