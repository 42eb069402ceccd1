import { describe, expect, it } from "vitest";
import type { CaseResult } from "../../src/bench/benchCase.js";
import { type BenchResults, type DecodeRow, type OverheadFigures, type PrefillRow, type SweepPoint, emptyResults } from "../../src/bench/benchResults.js";
import { formatDecode } from "../../src/bench/decodeSuite.js";
import { OVERHEAD_TARGETS, formatOverhead, withNewMod } from "../../src/bench/overheadSuite.js";
import { plotSpec, renderPlot } from "../../src/bench/plotResults.js";
import { formatPrefill } from "../../src/bench/prefillSuite.js";
import { formatMachine } from "../../src/bench/runBench.js";
import { autoMisses, formatSweep } from "../../src/bench/sweepSuite.js";
import { checkTargets } from "../../src/bench/targets.js";
import { timingStats } from "../../src/bench/timingStats.js";

const stats = (ms: number) => timingStats([ms * 0.9, ms, ms * 1.2]);
const probe = { readBandwidthGBs: { oneThread: 6, allThreads: 10 }, fmaPeakGflops: { oneThread: 60, allThreads: 120 }, threads: 2, cpu: "Test CPU", isa: "avx2+fma", measuredAt: "2026-01-01T00:00:00.000Z" };
const machine = { probe, cores: 2, threads: 2, node: "v20", compiler: "g++ 12", cpuFeatures: "__AVX2__", loadAverage: 0.1 };

function prefill(over: Partial<PrefillRow>): PrefillRow {
  return {
    id: "prefill", dtype: "float32", causal: false, batch: 1, hq: 32, hkv: 8, headDim: 128, qLen: 512, kvLen: 512, template: "flash_attention",
    stats: stats(10), gflops: 70, peakPct: 58, computedFraction: 1, otherTemplate: "flash_decoding", vsOther: 1.5, vsNaive: 8,
    roofline: { ms: 5.8, bound: "compute", pct: 58 }, ...over,
  };
}

function decode(over: Partial<DecodeRow>): DecodeRow {
  return {
    id: "decode", dtype: "bfloat16", group: 1, batch: 1, hkv: 8, headDim: 128, qLen: 1, kvLen: 4096, template: "flash_decoding", partitionSize: 1024,
    stats: stats(1), gbs: 9.5, readGBs: null, bandwidthPct: 95, vsFlashAttention: 1.3, roofline: { ms: 0.96, bound: "memory", pct: 96 }, ...over,
  };
}

describe("checkTargets", () => {
  it("holds a target only when every case measuring it meets it, and says n/a when nothing measured it", () => {
    const results = {
      prefill: [
        prefill({ dtype: "float32", causal: false, stats: stats(10), peakPct: 60 }),
        prefill({ dtype: "float32", causal: true, stats: stats(5), peakPct: 45 }),
        prefill({ dtype: "bfloat16", causal: false, stats: stats(8) }),
        prefill({ dtype: "bfloat16", causal: true, stats: stats(4.2) }),
      ],
      decode: [decode({ group: 1, bandwidthPct: 95 }), decode({ group: 1, bandwidthPct: 85 }), decode({ group: 4, bandwidthPct: 81 })],
      overhead: null,
    };
    const byName = Object.fromEntries(checkTargets(results).map((c) => [c.name, c]));
    expect(byName["decode bandwidth, G=1"].met).toBe(false);
    expect(byName["decode bandwidth, G=1"].measured).toContain("85%");
    expect(byName["decode bandwidth, G=4"].met).toBe(true);
    expect(byName["prefill fp32 compute"].met).toBe(false);
    // no row ran on the bf16 dot products: bf16 only has to beat fp32 (10 / 8 = 1.25x)
    expect(byName["bf16 vs fp32 (prefill)"].met).toBe(true);
    // fp32: 10 / 5 = 2.0x; bf16: 8 / 4.2 = 1.9x.
    expect(byName["causal faster than non-causal"].met).toBe(true);
    expect(byName["codegen per kernel"].met).toBeNull();
    expect(byName["run() per-call overhead"].met).toBeNull();
  });

  it("asks 1.7x of bf16 where it ran on the bf16 dot products, and 1.85x of causal", () => {
    const dot = { ms: 5, bound: "compute" as const, pct: 60, dot: true as const };
    const rows = (bf16Ms: number, causalFp32Ms: number) => ({
      prefill: [
        prefill({ dtype: "float32", causal: false, stats: stats(10), peakPct: 72 }),
        prefill({ dtype: "float32", causal: true, stats: stats(causalFp32Ms), peakPct: 71 }),
        prefill({ dtype: "bfloat16", causal: false, stats: stats(bf16Ms), roofline: dot }),
        prefill({ dtype: "bfloat16", causal: true, stats: stats(bf16Ms / 1.9), roofline: dot }),
      ],
      decode: [],
      overhead: null,
    });
    const judged = (bf16Ms: number, causalFp32Ms: number) => Object.fromEntries(checkTargets(rows(bf16Ms, causalFp32Ms)).map((c) => [c.name, c]));
    expect(judged(5.5, 5)["bf16 vs fp32 (prefill)"].met).toBe(true); // 10 / 5.5 = 1.82x
    expect(judged(6.25, 5)["bf16 vs fp32 (prefill)"]).toMatchObject({ met: false }); // 1.6x
    expect(judged(6.25, 5)["bf16 vs fp32 (prefill)"].target).toContain("1.7x");
    expect(judged(5.5, 5)["prefill fp32 compute"].met).toBe(true);
    expect(judged(5.5, 5.6)["causal faster than non-causal"]).toMatchObject({ met: false }); // 10 / 5.6 = 1.79x
  });

  it("judges the overhead targets", () => {
    const overhead = {
      codegen: [{ spec: "a", firstMs: 12, medianMs: 2 }, { spec: "b", firstMs: 25, medianMs: 3 }],
      coldCompile: [],
      newMod: [],
      cacheHit: [{ spec: "a", medianMs: 25, minMs: 23, maxMs: 40, compilerProbeMs: 20, processes: 3 }],
      splitKernel: [],
      call: { spec: "tiny", shape: "tiny", template: "flash_decoding", stats: stats(0.01) },
      oneMbStep: { spec: "step", shape: "step", template: "flash_decoding", stats: stats(0.04), kvBytes: 2 ** 20, gbs: 26.2, bandwidthPct: 40 },
    };
    const byName = Object.fromEntries(checkTargets({ prefill: [], decode: [], overhead }).map((c) => [c.name, c]));
    expect(byName["1 MB decode step"]).toMatchObject({ met: false, target: `>= ${OVERHEAD_TARGETS.oneMbStepBandwidthPct}% of the read bandwidth` });
    expect(byName["1 MB decode step"].measured).toContain("(40%)");
    const slowCall = { ...overhead, call: { ...overhead.call, stats: stats((OVERHEAD_TARGETS.callUs + 1) / 1000) } };
    expect(Object.fromEntries(checkTargets({ prefill: [], decode: [], overhead: slowCall }).map((c) => [c.name, c]))["run() per-call overhead"].met).toBe(false);
    expect(byName["codegen per kernel"]).toMatchObject({ met: false });
    expect(byName["codegen per kernel"].measured).toContain("(b;");
    expect(byName["cache-hit compile() in a fresh process"].met).toBe(true);
    expect(byName["cache-hit compile() in a fresh process"].target).toBe(`< ${OVERHEAD_TARGETS.cacheHitMs} ms`);
    expect(byName["run() per-call overhead"].met).toBe(true);
    // Not measured in this run.
    expect(byName["new mod, engine cached, fresh process"].met).toBeNull();
    expect(byName["first build of a configuration"].met).toBeNull();
    expect(byName["split kernel vs self-contained"].met).toBeNull();
  });

  it("judges the compile targets of the split by their worst case", () => {
    const overhead = {
      codegen: [],
      coldCompile: [{ spec: "a", ms: 5000, compilerProbeMs: 1, selfContainedMs: 5100, rounds: 1 }, { spec: "b", ms: 6000, compilerProbeMs: 1, selfContainedMs: 5000, rounds: 1 }],
      newMod: [{ spec: "a", medianMs: 540, minMs: 500, maxMs: 600, compilerProbeMs: 1, processes: 3, engineHits: 3, modsCompiled: 3 }],
      cacheHit: [],
      splitKernel: [
        { spec: "a", shape: "prefill", template: "flash_attention", split: stats(0.95), selfContained: stats(1), ratio: 0.95 },
        { spec: "b", shape: "decode", template: "flash_decoding", split: stats(1.02), selfContained: stats(1), ratio: 1.02 },
      ],
      call: null,
    };
    const byName = Object.fromEntries(checkTargets({ prefill: [], decode: [], overhead }).map((c) => [c.name, c]));
    expect(byName["new mod, engine cached, fresh process"].met).toBe(true);
    expect(byName["first build of a configuration"]).toMatchObject({ met: false });
    expect(byName["first build of a configuration"].measured).toContain("(b)");
    expect(byName["split kernel vs self-contained"]).toMatchObject({ met: true });
    expect(byName["split kernel vs self-contained"].measured).toContain("(decode)");
  });
});

describe("overhead report", () => {
  const figures = (over: Partial<OverheadFigures>): OverheadFigures => ({ codegen: [], coldCompile: [], newMod: [], cacheHit: [], splitKernel: [], call: null, ...over });
  const newMod = (spec: string, medianMs: number, engineHits = 5, modsCompiled = 5) => ({ spec, medianMs, minMs: medianMs * 0.9, maxMs: medianMs * 1.2, compilerProbeMs: 1.5, processes: 5, engineHits, modsCompiled });
  /** The report's row that starts with `what`. */
  const row = (text: string, what: string) => {
    const line = text.split("\n").find((l) => l.startsWith(what));
    expect(line, what).toBeDefined();
    return line!;
  };

  it("has the targets of the issue: a new mod in 1 s, a cache hit in 30 ms, the split kernel within 3%", () => {
    expect(OVERHEAD_TARGETS).toMatchObject({ newModMs: 1000, cacheHitMs: 30, coldVsSelfContained: 1, splitKernelRatio: 1.03 });
  });

  it("prints the first build of a configuration beside the self-contained build, with their ratio", () => {
    const text = formatOverhead(
      figures({
        coldCompile: [
          { spec: "fast", ms: 4800, compilerProbeMs: 180, selfContainedMs: 5000, rounds: 3 },
          { spec: "slow", ms: 6000, compilerProbeMs: 180, selfContainedMs: 5000, rounds: 1 },
        ],
      }),
    );
    const fast = row(text, "first build of a configuration fast");
    expect(fast).toContain("4.80 s engine + mods + prelude vs 5.00 s self-contained: 0.960x");
    expect(fast).toContain("median of 3 fresh process(es) each");
    expect(fast).toContain("<= 1x self-contained");
    expect(fast).toMatch(/ met$/);
    const slow = row(text, "first build of a configuration slow");
    expect(slow).toContain("1.200x");
    expect(slow).toMatch(/NOT MET$/);
  });

  it("judges a new mod against 1 s only when every process found the engine cached and compiled its mods", () => {
    const text = formatOverhead(figures({ newMod: [newMod("quick", 450), newMod("slow", 1250), newMod("engine rebuilt", 450, 4, 5), newMod("mods cached", 450, 5, 3)] }));
    const quick = row(text, "new mod compile() quick");
    expect(quick).toContain("450 ms (405..540, 5 fresh processes; engine cached in 5/5, mod library compiled in 5/5)");
    expect(quick).toContain("<= 1000 ms");
    expect(quick).toMatch(/ met$/);
    expect(row(text, "new mod compile() slow")).toMatch(/NOT MET$/);
    expect(row(text, "new mod compile() engine rebuilt")).toMatch(/engine cached in 4\/5.* n\/a$/);
    expect(row(text, "new mod compile() mods cached")).toMatch(/mod library compiled in 3\/5.* n\/a$/);
  });

  it("judges a cache hit against 30 ms", () => {
    const hit = (spec: string, medianMs: number) => ({ spec, medianMs, minMs: medianMs, maxMs: medianMs, compilerProbeMs: 1, processes: 3 });
    const text = formatOverhead(figures({ cacheHit: [hit("a", 24), hit("b", 35)] }));
    expect(row(text, "cache-hit compile() a")).toMatch(/< 30 ms +met$/);
    expect(row(text, "cache-hit compile() b")).toMatch(/< 30 ms +NOT MET$/);
  });

  it("prints the split kernel's time over the self-contained one's, within 3% or not", () => {
    const kernel = (shape: string, splitMs: number, wholeMs: number) => ({
      spec: "s", shape, template: "flash_attention", split: stats(splitMs), selfContained: stats(wholeMs), ratio: splitMs / wholeMs,
    });
    const text = formatOverhead(figures({ splitKernel: [kernel("prefill L 1024", 41, 40), kernel("decode kv 16384", 2.1, 2)] }));
    const prefill = row(text, "split vs self-contained kernel, prefill L 1024");
    expect(prefill).toContain("1.025x (flash_attention: split 41.0 ms, self-contained 40.0 ms median, 3 interleaved runs each)");
    expect(prefill).toMatch(/<= 1\.03x +met$/);
    expect(row(text, "split vs self-contained kernel, decode kv 16384")).toMatch(/1\.050x .*NOT MET$/);
  });

  it("gives every process of the new-mod figure a score_mod of its own, on the same configuration", () => {
    const spec = { name: "base", query: { shape: [1, 2, 1, 16], dtype: "float32" }, maskMod: "q_idx >= kv_idx" };
    const [a, b] = [withNewMod(spec, 0), withNewMod(spec, 1)];
    expect(a.scoreMod).not.toBe(b.scoreMod);
    expect(a.name).not.toBe(b.name);
    expect(a).toMatchObject({ query: spec.query, maskMod: spec.maskMod });
  });
});

describe("reports", () => {
  it("prints the prefill ratios and the causal and bf16 comparisons", () => {
    const text = formatPrefill([
      prefill({ id: "prefill fp32 full", causal: false, stats: stats(10) }),
      prefill({ id: "prefill fp32 causal", causal: true, stats: stats(4), vsNaive: null, naiveError: "out of memory" }),
    ]);
    expect(text).toContain("prefill fp32 causal");
    expect(text).toContain("failed: out of memory");
    expect(text).toContain("causal 2.50x faster");
  });

  it("flags a busy machine in the header", () => {
    expect(formatMachine(machine)).not.toContain("BUSY");
    expect(formatMachine({ ...machine, loadAverage: 3 })).toMatch(/load {5}3\.0 \(1-minute average\) on 2 core\(s\): BUSY/);
  });

  it("marks decode rows below their bandwidth target", () => {
    const text = formatDecode([decode({ id: "decode bf16 G4", group: 4, bandwidthPct: 70 })]);
    expect(text).toContain(">= 80% (not met)");
    expect(text).toContain("1024");
  });

  it("prints the read bandwidth measured beside a decode case, or a dash without one", () => {
    const text = formatDecode([decode({ id: "with pass", readGBs: 61.25 }), decode({ id: "without" })]);
    expect(text).toContain("read GB/s");
    // Columns by the extents of the dashes under the header.
    const lines = text.split("\n");
    const rule = lines.findIndex((line) => /^-+( +-+)+$/.test(line));
    const spans = [...lines[rule].matchAll(/-+/g)].map((m) => [m.index, m.index + m[0].length]);
    const cells = (line: string) => spans.map(([a, b]) => line.slice(a, b).trim());
    const row = (id: string) => cells(lines.find((line) => line.startsWith(id))!);
    const column = cells(lines[rule - 1]).indexOf("read GB/s");
    expect(column).toBeGreaterThan(0);
    expect(row("with pass")[column]).toBe("61.3");
    expect(row("without")[column]).toBe("-");
  });

  it("finds where decoding wins and where auto picks the slower template", () => {
    const point = (kvLen: number, decodingMs: number, attentionMs: number, autoTemplate: string): SweepPoint => ({ group: 4, batch: 1, qLen: 1, kvLen, decodingMs, attentionMs, autoTemplate });
    const points = [point(128, 2, 1, "flash_attention"), point(512, 1, 1.5, "flash_decoding"), point(2048, 1, 3, "flash_decoding"), point(4096, 2, 1, "flash_decoding")];
    expect(autoMisses(points).map((p) => p.kvLen)).toEqual([4096]);
    const text = formatSweep(points.slice(0, 3));
    expect(text).toContain("kv >= 512");
    expect(text).toContain("every point");
  });
});

describe("plot", () => {
  function results(): BenchResults {
    const r = emptyResults(machine, true, ["prefill", "decode", "sweep", "tune"]);
    const work = { computedPositions: 1e6, densePositions: 2e6, flops: 5.12e8, kvBytes: 1e6, minBytes: 4e6 };
    const variant = (label: string, template: "flash_attention" | "flash_decoding" | "naive", ms: number) => ({
      label, template, policy: label === "auto" ? "auto" : "forced", qBlock: 128, kvBlock: 128, partitionSize: null, numThreads: 0, firstMs: ms, stats: stats(ms), kvBytes: work.kvBytes,
    });
    const cases: CaseResult[] = [
      { kind: "kernel", id: "prefill fp32 causal", compileMs: 1, fromCache: "disk", work, variants: [variant("auto", "flash_attention", 10), variant("flash_decoding", "flash_decoding", 14), variant("naive", "naive", 80)] },
      { kind: "kernel", id: "decode bf16 G4 B1 kv4096", compileMs: 1, fromCache: "disk", work: { ...work, flops: 4e6, minBytes: 1e6 }, variants: [variant("auto", "flash_decoding", 0.2), variant("flash_attention", "flash_attention", 0.3)] },
    ];
    r.cases.push(...cases);
    r.sweep.push(
      { group: 1, batch: 1, qLen: 1, kvLen: 256, decodingMs: 1, attentionMs: 1.2, autoTemplate: "flash_decoding" },
      { group: 1, batch: 1, qLen: 1, kvLen: 1024, decodingMs: 1, attentionMs: 2, autoTemplate: "flash_decoding" },
      { group: 1, batch: 1, qLen: 16, kvLen: 256, decodingMs: 1, attentionMs: 0.8, autoTemplate: "flash_attention" },
    );
    r.tune.push({ id: "tune bf16 G4 B1 q1 kv4096", call: { batch: 1, qLen: 1, kvLen: 4096 }, heuristic: "flash_decoding 128x128 p1024", tuned: "flash_decoding 128x64 p512", heuristicMs: 0.2, tunedMs: 0.15, speedup: 1.33, trials: 9 });
    return r;
  }

  it("draws the roofline, the template comparison, the sweep and the tuning as SVG", async () => {
    const svg = await renderPlot(results());
    expect(svg.startsWith("<svg")).toBe(true);
    for (const text of [
      "Roofline",
      "roofline: 10.0 GB/s, 120 GFLOP/s",
      "prefill (chosen: flash_attention)",
      "prefill naive",
      "decode flash_attention",
      "Templates",
      "flash_decoding vs flash_attention",
      "q_len 16",
      "Tuning",
      "heuristic",
      "tuned",
    ]) {
      expect(svg, text).toContain(text);
    }
  });

  it("draws only the views that have data", () => {
    const r = results();
    r.sweep = [];
    r.tune = [];
    const spec = plotSpec(r) as { vconcat: { title?: unknown }[] };
    expect(spec.vconcat.map((v) => String(v.title).split(":")[0])).toEqual(["Roofline", "Templates"]);
    const empty = plotSpec(emptyResults(machine, true)) as { vconcat: { title?: unknown }[] };
    expect(empty.vconcat).toHaveLength(1);
  });
});
