/**
 * The serving suite's pieces: inputs in other layouts, 8-bit caches and ragged batches for the bench (valid calls
 * that compute the same attention), its measured cases, and how its targets are judged.
 */
import { describe, expect, it } from "vitest";
import { type ResultOf, caseRequestSchema } from "../../src/bench/benchCase.js";
import { benchInputs, raggedBenchInputs } from "../../src/bench/benchInputs.js";
import type { ServingRows } from "../../src/bench/benchResults.js";
import { measureCase } from "../../src/bench/measureCase.js";
import { SERVING_TARGETS, checkServingTargets, formatServing } from "../../src/bench/servingSuite.js";
import { timingStats } from "../../src/bench/timingStats.js";
import { callWork } from "../../src/bench/workCount.js";
import { compile } from "../../src/index.js";
import type { AttentionGraph } from "../../src/ir/graph.js";
import { parseSpec } from "../../src/ir/spec.js";
import { createBlockMask } from "../../src/runtime/createBlockMask.js";
import { e4m3fnToF32, e5m2ToF32 } from "../../src/runtime/dtypes.js";
import { toFloat64 } from "../../src/runtime/tensor.js";
import { validateInputs } from "../../src/runtime/validateInputs.js";
import { contiguous } from "../../src/runtime/view.js";
import { useFastBuilds } from "../helpers/fastBuilds.js";

// Plumbing, not arithmetic: its kernels build fast (test/helpers/fastBuilds.ts).
useFastBuilds();

const TIMING = { warmup: 1, minRuns: 3, maxRuns: 5, budgetMs: 20 };

function specOf(dtype: string, pageSize?: number) {
  return {
    name: `serving_${dtype}${pageSize ? "_paged" : ""}`,
    // An 8-bit cache with a float32 query; otherwise one dtype for all three.
    query: { shape: [1, 4, 1, 16], dtype: ["int8", "float8_e4m3fn", "float8_e5m2"].includes(dtype) ? "float32" : dtype },
    key: { shape: [1, 2, pageSize ?? 1, 16], dtype },
    value: { shape: [1, 2, pageSize ?? 1, 16], dtype },
    blockSize: [16, 16],
    ...(pageSize ? { kvCache: { pageSize } } : {}),
  };
}

describe("benchInputs for serving cases", () => {
  it("stores q/k/v as BSHD views (a paged pool token-major) holding valid values", () => {
    for (const pageSize of [undefined, 16]) {
      const graph = parseSpec(specOf("float32", pageSize));
      const inputs = benchInputs(graph, { batch: 2, qLen: 3, kvLen: 40 }, 5, "bshd");
      expect(validateInputs(graph, inputs)).toMatchObject({ batch: 2, qLen: 3, kvLen: 40 });
      const rows = pageSize ?? 40;
      // [A, H, L, D] logical over [A, L, H, D] storage.
      expect(inputs.key.strides).toEqual([rows * 2 * 16, 16, 2 * 16, 1]);
      expect(inputs.query.strides).toEqual([3 * 4 * 16, 16, 4 * 16, 1]);
      const values = Array.from(toFloat64(contiguous(inputs.key)));
      expect(values.every((v) => Number.isFinite(v) && Math.abs(v) <= 1)).toBe(true);
    }
  });

  it("fills an 8-bit cache with codes of finite values, and an int8 cache with a scale per token and kv head", () => {
    const decode = { float8_e4m3fn: e4m3fnToF32, float8_e5m2: e5m2ToF32 } as const;
    for (const dtype of ["int8", "float8_e4m3fn", "float8_e5m2"] as const) {
      for (const pageSize of [undefined, 16]) {
        const graph = parseSpec(specOf(dtype, pageSize));
        const inputs = benchInputs(graph, { batch: 2, qLen: 1, kvLen: 40 }, 6);
        expect(validateInputs(graph, inputs)).toMatchObject({ batch: 2, kvLen: 40 });
        expect(inputs.key.dtype).toBe(dtype);
        if (dtype === "int8") {
          expect(inputs.keyScale!.shape).toEqual(inputs.key.shape.slice(0, 3));
          expect(inputs.valueScale!.shape).toEqual(inputs.value.shape.slice(0, 3));
          expect(Array.from(inputs.keyScale!.data as Float32Array).every((s) => s > 0 && s < 0.05)).toBe(true);
        } else {
          expect(inputs.keyScale).toBeUndefined();
          const values = Array.from(inputs.value.data as Uint8Array, decode[dtype]);
          expect(values.every((v) => Number.isFinite(v) && Math.abs(v) <= 2)).toBe(true);
          expect(new Set(values).size).toBeGreaterThan(20);
        }
      }
    }
  });

  it("counts an int8 cache's K/V bytes with its scales", () => {
    const graph = parseSpec(specOf("int8"));
    const call = { batch: 2, qLen: 1, kvLen: 40 };
    const work = callWork(graph, call, createBlockMask(graph, 2, 1, 40));
    expect(work.kvBytes).toBe(2 * 2 * 40 * (2 * 16 * 1 + 2 * 4));
    const fp8 = parseSpec(specOf("float8_e5m2"));
    expect(callWork(fp8, call, createBlockMask(fp8, 2, 1, 40)).kvBytes).toBe(2 * 2 * 40 * 2 * 16);
  });
});

describe("raggedBenchInputs", () => {
  const graph: AttentionGraph = parseSpec({ ...specOf("float32", 16), returnLse: true });
  const sequences = [{ qLen: 1, kvLen: 40 }, { qLen: 1, kvLen: 17 }, { qLen: 20, kvLen: 33 }, { qLen: 9, kvLen: 50 }];

  it("splits one ragged call into a decode call and a ragged prefill call that compute the same rows", async () => {
    const kernel = await compile(graph);
    const inputs = raggedBenchInputs(graph, sequences, 3);
    expect(validateInputs(graph, inputs.mixed)).toMatchObject({ batch: 4, totalQ: 31 });
    expect(validateInputs(graph, inputs.decode)).toMatchObject({ batch: 2, qLen: 1 });
    expect(validateInputs(graph, inputs.prefill)).toMatchObject({ batch: 2, totalQ: 29 });
    // The split calls read the ragged call's query and pool in place.
    expect(inputs.decode.query.data).toBe(inputs.mixed.query.data);
    expect(inputs.prefill.query.data).toBe(inputs.mixed.query.data);
    expect(inputs.prefill.key.data).toBe(inputs.mixed.key.data);
    const mixed = toFloat64(kernel.run(inputs.mixed).out);
    // Ragged out is [totalQ, Hq, D]: the two decode rows first, then the prefill chunks.
    const split = [...toFloat64(kernel.run(inputs.decode).out), ...toFloat64(kernel.run(inputs.prefill).out)];
    expect(split.length).toBe(mixed.length);
    const worst = split.reduce((w, x, i) => Math.max(w, Math.abs(x - mixed[i])), 0);
    expect(worst).toBeLessThan(1e-5);
  });

  it("wants the decode sequences first and at least one longer one", () => {
    expect(() => raggedBenchInputs(graph, [{ qLen: 3, kvLen: 9 }, { qLen: 1, kvLen: 9 }], 1)).toThrow(/decode sequences \(qLen 1\) first/);
    expect(() => raggedBenchInputs(graph, [{ qLen: 1, kvLen: 9 }, { qLen: 1, kvLen: 9 }], 1)).toThrow(/at least one longer/);
  });
});

describe("measureCase for serving cases", () => {
  it("times an 8-bit and a BSHD variant of one spec, each with its own bytes", async () => {
    const request = caseRequestSchema.parse({
      kind: "kernel",
      id: "serving variants",
      spec: specOf("bfloat16"),
      call: { batch: 1, qLen: 1, kvLen: 64 },
      variants: [{ label: "bfloat16" }, { label: "int8", kvDtype: "int8" }, { label: "bshd", layout: "bshd" }],
      timing: TIMING,
      seed: 2,
    });
    const result = (await measureCase(request)) as ResultOf<"kernel">;
    const [bf16, int8, bshd] = result.variants;
    for (const v of result.variants) {
      expect(v.error).toBeUndefined();
      expect(v.stats!.runs).toBeGreaterThanOrEqual(TIMING.minRuns);
      expect(v.template).toBe("flash_decoding");
    }
    expect(bf16.kvBytes).toBe(2 * 64 * 2 * 16 * 2);
    expect(int8.kvBytes).toBe(2 * 64 * (2 * 16 + 2 * 4));
    expect(bshd.kvBytes).toBe(bf16.kvBytes);
  });

  it("times a ragged call against its split calls", async () => {
    const result = (await measureCase(
      caseRequestSchema.parse({ kind: "ragged", id: "ragged", spec: specOf("bfloat16", 16), sequences: [{ qLen: 1, kvLen: 100 }, { qLen: 1, kvLen: 80 }, { qLen: 24, kvLen: 70 }], timing: TIMING, seed: 1 }),
    )) as ResultOf<"ragged">;
    expect(result.mixedTemplate).toBe("flash_decoding");
    expect(result.splitTemplates).toEqual(["flash_decoding", "flash_attention"]);
    for (const s of [result.mixed, result.split]) expect(s.stats.runs).toBeGreaterThanOrEqual(TIMING.minRuns);
  });
});

describe("serving targets", () => {
  const stats = (ms: number) => timingStats([ms * 0.9, ms, ms * 1.1]);
  const quantized = (kvDtype: string, speedup: number, bandwidthPct: number, kind: "decode" | "prefill" = "decode") => ({
    id: `${kind} case`, kind, group: 1, kvLen: 16384, kvDtype, template: "flash_decoding", stats: stats(1 / speedup), kvBytes: 1, gbs: 1, readGBs: null, bandwidthPct, speedupVsBf16: speedup,
    roofline: { ms: 0.5, bound: "memory" as const, pct: bandwidthPct },
  });
  const rows = (over: Partial<ServingRows>): ServingRows => ({
    layouts: [{ id: "layout", group: 1, paged: false, layout: "BSHD views", template: "flash_decoding", contiguous: stats(1), strided: stats(1.05), stridedOverContiguous: 1.05 }],
    quantized: [quantized("bfloat16", 1, 50), quantized("int8", 1.8, 90), quantized("float8_e5m2", 1.9, 92), quantized("bfloat16", 1, 0, "prefill"), quantized("int8", 0.9, 0, "prefill")],
    ragged: [{ id: "ragged", sequences: "1x4096 128x1024", mixedTemplate: "flash_decoding", splitTemplates: ["flash_decoding", "flash_attention"], mixed: stats(1), split: stats(1.02), splitOverMixed: 1.02 }],
    ...over,
  });

  it("holds each target when every case meets it, names the worst case, and says n/a without rows", () => {
    const met = Object.fromEntries(checkServingTargets(rows({})).map((c) => [c.name, c]));
    expect(Object.values(met).every((c) => c.met === true)).toBe(true);
    expect(met["8-bit KV decode vs bf16"].measured).toContain("int8");
    const worse = rows({ quantized: [quantized("bfloat16", 1, 50), quantized("int8", 1.5, 90), quantized("float8_e4m3fn", 1.8, 80)] });
    const judged = Object.fromEntries(checkServingTargets(worse).map((c) => [c.name, c]));
    expect(judged["8-bit KV decode vs bf16"]).toMatchObject({ met: false });
    expect(judged["8-bit KV decode vs bf16"].measured).toContain("1.50x");
    expect(judged["8-bit KV decode bandwidth"]).toMatchObject({ met: false });
    expect(judged["8-bit KV decode bandwidth"].measured).toContain("e4m3fn");
    expect(judged["8-bit KV prefill vs bf16"].met).toBeNull();
    // every 8-bit format's prefill is judged, not only int8's
    const slowPrefill = rows({ quantized: [...rows({}).quantized, quantized("float8_e4m3fn", 0.8, 0, "prefill")] });
    const prefill = checkServingTargets(slowPrefill).find((c) => c.name === "8-bit KV prefill vs bf16")!;
    expect(prefill).toMatchObject({ met: false });
    expect(prefill.measured).toContain("1.25x");
    expect(prefill.measured).toContain("e4m3fn");
    expect(checkServingTargets(null).every((c) => c.met === null)).toBe(true);
    const slowLayout = rows({ layouts: [{ ...rows({}).layouts[0], stridedOverContiguous: SERVING_TARGETS.layoutRatio + 0.01 }] });
    expect(checkServingTargets(slowLayout).find((c) => c.name.startsWith("strided"))!.met).toBe(false);
  });

  it("prints every section with its ratios", () => {
    const text = formatServing(rows({}));
    expect(text).toContain("BSHD views");
    expect(text).toMatch(/int8 .* 1\.80x/);
    expect(text).toContain("flash_decoding + flash_attention");
    expect(formatServing(null)).toBe("");
  });
});
