import { describe, expect, it } from "vitest";
import { type CaseRequest, type ResultOf, caseRequestSchema } from "../../src/bench/benchCase.js";
import { measureCase } from "../../src/bench/measureCase.js";
import { timeInterleaved } from "../../src/bench/timeInterleaved.js";
import type { TimingStats } from "../../src/bench/timingStats.js";
import { useFastBuilds } from "../helpers/fastBuilds.js";

// Plumbing, not arithmetic: its kernels build fast (test/helpers/fastBuilds.ts).
useFastBuilds();

/** Causal, GQA 2:1, blocks of 16: tiny, but with partial, full and absent blocks. */
const SPEC = {
  name: "bench_case_test",
  query: { shape: [1, 2, 40, 16], dtype: "float32" },
  key: { shape: [1, 1, 40, 16], dtype: "float32" },
  value: { shape: [1, 1, 40, 16], dtype: "float32" },
  maskMod: "q_idx >= kv_idx",
  blockSize: [16, 16],
};
const TIMING = { warmup: 1, minRuns: 3, maxRuns: 5, budgetMs: 20 };

function expectWellFormed(s: TimingStats | null, minRuns: number, maxRuns: number): void {
  expect(s).not.toBeNull();
  const t = s!;
  expect(t.runs).toBeGreaterThanOrEqual(minRuns);
  expect(t.runs).toBeLessThanOrEqual(maxRuns);
  for (const v of [t.minMs, t.q1Ms, t.medianMs, t.q3Ms, t.maxMs]) expect(Number.isFinite(v) && v > 0).toBe(true);
  expect(t.minMs <= t.q1Ms && t.q1Ms <= t.medianMs && t.medianMs <= t.q3Ms && t.q3Ms <= t.maxMs).toBe(true);
}

describe("measureCase (kernel)", () => {
  it("times every variant on a tiny call and reports what each one ran", async () => {
    const request: CaseRequest = {
      kind: "kernel",
      id: "tiny causal",
      spec: SPEC,
      call: { batch: 1, qLen: 40, kvLen: 40 },
      variants: [
        { label: "auto" },
        { label: "flash_decoding", template: "flash_decoding", partitionSize: 32 },
        { label: "naive", template: "naive" },
        { label: "blocks 32", blockSize: [32, 32], numThreads: 1 },
        // Not a multiple of the kv block: this variant fails, the others still count.
        { label: "bad partition", template: "flash_decoding", partitionSize: 24 },
      ],
      timing: TIMING,
      seed: 3,
    };
    const result = (await measureCase(caseRequestSchema.parse(request))) as ResultOf<"kernel">;
    expect(result.kind).toBe("kernel");
    expect(result.id).toBe("tiny causal");
    expect(result.work.computedPositions).toBe(2 * (256 + 512 + 320));
    const [auto, decoding, naive, blocks32, bad] = result.variants;
    expect(auto).toMatchObject({ label: "auto", template: "flash_attention", policy: "auto", qBlock: 16, kvBlock: 16, partitionSize: null, numThreads: 0 });
    expect(decoding).toMatchObject({ template: "flash_decoding", policy: "forced", partitionSize: 32 });
    expect(naive).toMatchObject({ template: "naive", policy: "forced", partitionSize: null });
    expect(blocks32).toMatchObject({ template: "flash_attention", qBlock: 32, kvBlock: 32, numThreads: 1 });
    for (const v of [auto, decoding, naive, blocks32]) {
      expectWellFormed(v.stats, TIMING.minRuns, TIMING.maxRuns);
      expect(v.firstMs).toBeGreaterThan(0);
      expect(v.error).toBeUndefined();
    }
    expect(bad.stats).toBeNull();
    expect(bad.error).toMatch(/partitionSize = 24 must be a positive multiple of the kv block size 16/);
    expect(result.read).toBeUndefined();
  });

  it("times a read pass in the same rounds when asked, and gives its bandwidth", async () => {
    const request: CaseRequest = { kind: "kernel", id: "with read pass", spec: SPEC, call: { batch: 1, qLen: 1, kvLen: 40 }, variants: [{ label: "auto" }], timing: TIMING, seed: 1, readPass: true };
    const result = (await measureCase(caseRequestSchema.parse(request))) as ResultOf<"kernel">;
    expectWellFormed(result.variants[0].stats, TIMING.minRuns, TIMING.maxRuns);
    expect(result.read).toBeDefined();
    expectWellFormed(result.read!.stats, TIMING.minRuns, TIMING.maxRuns);
    // 256 MiB over the pass's median time, 1e9 bytes/s
    expect(result.read!.gbs).toBeCloseTo(2 ** 28 / (result.read!.stats.medianMs * 1e6), 9);
  });
});

describe("measureCase (overhead kinds)", () => {
  it("times generate() cold and warm", async () => {
    const r = (await measureCase({ kind: "codegen", id: "codegen", spec: SPEC, runs: 4 })) as ResultOf<"codegen">;
    expect(r.firstMs).toBeGreaterThan(0);
    expectWellFormed(r.stats, 4, 4);
  });

  it("times a compile() and its compiler probe", async () => {
    const r = (await measureCase({ kind: "compile", id: "hit", spec: SPEC })) as ResultOf<"compile">;
    expect(r.build).toBe("split");
    for (const from of [r.fromCache, r.engineFromCache, r.modsFromCache]) expect(["memory", "disk", "compiled"]).toContain(from);
    expect(r.compilerProbeMs).toBeGreaterThanOrEqual(0);
    expect(r.ms).toBeGreaterThanOrEqual(r.compilerProbeMs);
  });

  it("times the self-contained build of the same spec when asked", async () => {
    const r = (await measureCase(caseRequestSchema.parse({ kind: "compile", id: "whole", spec: SPEC, build: "selfContained" }))) as ResultOf<"compile">;
    expect(r.build).toBe("selfContained");
    expect(["memory", "disk", "compiled"]).toContain(r.fromCache);
    expect(r.engineFromCache).toBeUndefined();
    expect(r.ms).toBeGreaterThanOrEqual(r.compilerProbeMs);
  });

  it("times the split kernel and the self-contained one on the same call, interleaved", async () => {
    const request = { kind: "splitKernel", id: "split", spec: SPEC, call: { batch: 1, qLen: 40, kvLen: 40 }, timing: TIMING, seed: 1 };
    const r = (await measureCase(caseRequestSchema.parse(request))) as ResultOf<"splitKernel">;
    expect(r).toMatchObject({ kind: "splitKernel", id: "split", template: "flash_attention", partitionSize: null });
    for (const side of [r.split, r.selfContained]) {
      expectWellFormed(side.stats, TIMING.minRuns, TIMING.maxRuns);
      expect(side.firstMs).toBeGreaterThan(0);
    }
  });

  it("times run() on a tiny call many times", async () => {
    const r = (await measureCase({ kind: "call", id: "call", spec: SPEC, call: { batch: 1, qLen: 16, kvLen: 16 }, warmup: 5, runs: 50 })) as ResultOf<"call">;
    expect(r.template).toBe("flash_attention");
    expectWellFormed(r.stats, 50, 50);
  });
});

describe("caseRequestSchema", () => {
  it("refuses a request without variants or with an unknown kind", () => {
    expect(() => caseRequestSchema.parse({ kind: "kernel", id: "x", spec: SPEC, call: { batch: 1, qLen: 1, kvLen: 1 }, variants: [], timing: TIMING, seed: 0 })).toThrow();
    expect(() => caseRequestSchema.parse({ kind: "disk", id: "x" })).toThrow();
    expect(() => caseRequestSchema.parse({ kind: "compile", id: "x", spec: SPEC, build: "both" })).toThrow();
  });
});

describe("timeInterleaved", () => {
  it("fits the runs into the budget within [minRuns, maxRuns] and rotates which runner goes first", () => {
    const order: number[] = [];
    const busy = (ms: number) => {
      const end = performance.now() + ms;
      while (performance.now() < end);
    };
    const runners = [0, 1, 2].map((i) => () => {
      order.push(i);
      if (i === 2) busy(2);
    });
    const samples = timeInterleaved(runners, { warmup: 1, minRuns: 2, maxRuns: 6, budgetMs: 9 });
    const runs = samples.map((s) => ("times" in s ? s.times.length : -1));
    // The budget share is 3 ms: the fast runners hit maxRuns, the 2 ms one gets minRuns.
    expect(runs).toEqual([6, 6, 2]);
    const timed = order.slice(3);
    expect(timed.slice(0, 3)).toEqual([0, 1, 2]);
    expect(timed.slice(3, 6)).toEqual([1, 2, 0]);
  });
});
