import { mkdtemp, readFile, readdir, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { benchInputs } from "../../src/bench/benchInputs.js";
import { COLD_BYTES, MAX_COPIES, coldCopies, inputBytes, setsFor } from "../../src/bench/coldInputs.js";
import { type BenchResults, emptyResults, resultsFileName, writeResults } from "../../src/bench/benchResults.js";
import { amxTileFlops, bf16DotFlops, formatRoofline, int16DotFlops, roofline } from "../../src/bench/roofline.js";
import { quantile, timingStats } from "../../src/bench/timingStats.js";
import { callWork } from "../../src/bench/workCount.js";
import { parseSpec } from "../../src/ir/spec.js";
import { createBlockMask } from "../../src/runtime/createBlockMask.js";
import { bf16BitsToF32, f16BitsToF32 } from "../../src/runtime/dtypes.js";
import { validateInputs } from "../../src/runtime/validateInputs.js";
import { view } from "../../src/runtime/view.js";

const causal = parseSpec({
  name: "bench_pieces",
  query: { shape: [1, 2, 40, 16], dtype: "float32" },
  key: { shape: [1, 1, 40, 16], dtype: "float32" },
  value: { shape: [1, 1, 40, 16], dtype: "float32" },
  maskMod: "q_idx >= kv_idx",
  blockSize: [16, 16],
});

describe("timingStats", () => {
  it("gives the median, the extremes and interpolated quartiles", () => {
    const s = timingStats([5, 1, 4, 2, 3]);
    expect(s).toEqual({ runs: 5, medianMs: 3, minMs: 1, maxMs: 5, q1Ms: 2, q3Ms: 4 });
    expect(timingStats([1, 2]).medianMs).toBe(1.5);
    expect(quantile([0, 10], 0.25)).toBe(2.5);
  });

  it("refuses an empty sample", () => {
    expect(() => timingStats([])).toThrow(RangeError);
  });
});

describe("roofline", () => {
  const probe = { readBandwidthGBs: { oneThread: 6, allThreads: 10 }, fmaPeakGflops: { oneThread: 60, allThreads: 100 }, threads: 2, cpu: "Test", isa: "avx2+fma", measuredAt: "2026-01-01T00:00:00.000Z" };

  it("is the longer of the bytes at the read bandwidth and the FLOPs at the FMA peak", () => {
    // 1e7 bytes at 10 GB/s: 1 ms; 5e7 FLOPs at 100 GFLOP/s: 0.5 ms.
    expect(roofline(1e7, 5e7, 2, probe)).toEqual({ ms: 1, bound: "memory", pct: 50 });
    // 2e8 FLOPs: 2 ms, longer than the bytes' 1 ms.
    expect(roofline(1e7, 2e8, 4, probe)).toEqual({ ms: 2, bound: "compute", pct: 50 });
    expect(formatRoofline(roofline(1e7, 2e8, 4, probe), (x) => x.toFixed(2))).toBe("2.00 fma");
  });

  it("counts the FLOPs on bf16 dot products at their own peak, where the probe measured one", () => {
    const withDot = { ...probe, bf16DotPeakGflops: { oneThread: 120, allThreads: 200 } };
    // 4e8 FLOPs, 3e8 of them on dot products: 1e8 at 100 GFLOP/s (1 ms) + 3e8 at 200 GFLOP/s (1.5 ms)
    expect(roofline(1e7, 4e8, 5, withDot, 3e8)).toEqual({ ms: 2.5, bound: "compute", pct: 50, dot: true });
    expect(formatRoofline(roofline(1e7, 4e8, 5, withDot, 3e8), (x) => x.toFixed(2))).toBe("2.50 dot");
    // without a measured dot-product peak every FLOP counts at the FMA peak
    expect(roofline(1e7, 4e8, 8, probe, 3e8)).toEqual({ ms: 4, bound: "compute", pct: 50 });
  });

  it("counts a bf16 prefill's FLOPs on AMX tiles at the tile peak, where the probe measured one, and not again as dot-product FLOPs", () => {
    const withTiles = { ...probe, bf16DotPeakGflops: { oneThread: 120, allThreads: 200 }, amxBf16PeakGflops: { oneThread: 1000, allThreads: 2000 } };
    // 4e9 FLOPs of a D 128 bf16 prefill, all on tiles: 2 ms at 2000 GFLOP/s
    const tiles = amxTileFlops("flash_attention", "bfloat16", "bfloat16", 4e9, 128, withTiles);
    expect(tiles).toBe(4e9);
    const r = roofline(1e7, 4e9, 4, withTiles, bf16DotFlops("flash_attention", "bfloat16", "bfloat16", 4e9), 0, tiles);
    expect(r).toEqual({ ms: 2, bound: "compute", pct: 50, tile: true });
    expect(formatRoofline(r, (x) => x.toFixed(2))).toBe("2.00 amx");
    // a bf16 query over 8-bit K/V too; not decoding, an fp32 call, a head dim the tiles do not take, or no tile peak
    expect(amxTileFlops("flash_attention", "bfloat16", "int8", 1000, 128, withTiles)).toBe(1000);
    expect(amxTileFlops("flash_decoding", "bfloat16", "bfloat16", 1000, 128, withTiles)).toBe(0);
    expect(amxTileFlops("flash_attention", "float32", "float32", 1000, 128, withTiles)).toBe(0);
    expect(amxTileFlops("flash_attention", "bfloat16", "bfloat16", 1000, 72, withTiles)).toBe(0);
    expect(amxTileFlops("flash_attention", "bfloat16", "bfloat16", 1000, 128, probe)).toBe(0);
  });

  it("counts int8 decoding's q . k at the int16 dot-product peak, where the probe measured one", () => {
    const withIntDot = { ...probe, int16DotPeakGflops: { oneThread: 150, allThreads: 300 } };
    // 4e8 FLOPs, D = 3 Dv: 3e8 of q . k at 300 GOP/s (1 ms) + 1e8 of P V at 100 GFLOP/s (1 ms)
    const qk = int16DotFlops("flash_decoding", "bfloat16", "int8", 4e8, 96, 32);
    expect(qk).toBe(3e8);
    expect(roofline(1e7, 4e8, 4, withIntDot, 0, qk)).toEqual({ ms: 2, bound: "compute", pct: 50, dot: true });
    // a float32 query, fp8 keys and prefill stay on fp32 FMAs
    expect(int16DotFlops("flash_decoding", "float32", "int8", 4e8, 96, 32)).toBe(0);
    expect(int16DotFlops("flash_decoding", "bfloat16", "float8_e4m3fn", 4e8, 96, 32)).toBe(0);
    expect(int16DotFlops("flash_attention", "bfloat16", "int8", 4e8, 96, 32)).toBe(0);
    // without a measured int16 peak every FLOP counts at the FMA peak
    expect(roofline(1e7, 4e8, 8, probe, 0, qk)).toEqual({ ms: 4, bound: "compute", pct: 50 });
  });

  it("takes every FLOP of a bf16 call (prefill or decode) and of a bf16 query's prefill over 8-bit K/V as dot-product FLOPs, nothing else", () => {
    expect(bf16DotFlops("flash_attention", "bfloat16", "bfloat16", 1000)).toBe(1000);
    expect(bf16DotFlops("flash_decoding", "bfloat16", "bfloat16", 1200)).toBe(1200);
    expect(bf16DotFlops("flash_attention", "float32", "float32", 1000)).toBe(0);
    expect(bf16DotFlops("flash_decoding", "bfloat16", "int8", 1000)).toBe(0);
    expect(bf16DotFlops("naive", "bfloat16", "bfloat16", 1000)).toBe(0);
    // 8-bit codes are packed as bf16 for a bf16 query's prefill; with an fp32 or fp16 query they stay on FMA
    expect(bf16DotFlops("flash_attention", "bfloat16", "float8_e5m2", 1000)).toBe(1000);
    expect(bf16DotFlops("flash_attention", "float32", "int8", 1000)).toBe(0);
  });

  it("takes a bf16 query's decode over 8-bit K/V as dot-product FLOPs only where the codes go there by byte lookups", () => {
    const lookups = { byteLookups: true, g: 4, qDim: 96, vDim: 32 };
    // fp8: q . k and P V; int8: P V alone (Dv of every D + Dv), and only with GQA
    expect(bf16DotFlops("flash_decoding", "bfloat16", "float8_e4m3fn", 1000, lookups)).toBe(1000);
    expect(bf16DotFlops("flash_decoding", "bfloat16", "int8", 1000, lookups)).toBe(250);
    expect(bf16DotFlops("flash_decoding", "bfloat16", "int8", 1000, { ...lookups, g: 1 })).toBe(0);
    expect(bf16DotFlops("flash_decoding", "bfloat16", "float8_e5m2", 1000, { ...lookups, byteLookups: false })).toBe(0);
    expect(bf16DotFlops("flash_decoding", "float16", "float8_e5m2", 1000, lookups)).toBe(0);
    // where the CPU has AMX, decoding with GQA keeps fp32 FMA for bf16 K/V and int8's P V; fp8 and G 1 keep the dot products
    const onFma = { ...lookups, gqaOnFma: true };
    expect(bf16DotFlops("flash_decoding", "bfloat16", "bfloat16", 1000, onFma)).toBe(0);
    expect(bf16DotFlops("flash_decoding", "bfloat16", "int8", 1000, onFma)).toBe(0);
    expect(bf16DotFlops("flash_decoding", "bfloat16", "float8_e4m3fn", 1000, onFma)).toBe(1000);
    expect(bf16DotFlops("flash_decoding", "bfloat16", "bfloat16", 1000, { ...onFma, g: 1 })).toBe(1000);
    // int8 at G 4 over D = 3 Dv: P V (1e8) at the bf16 dot peak, q . k (3e8) at the int16 peak
    const withBoth = { ...probe, bf16DotPeakGflops: { oneThread: 60, allThreads: 100 }, int16DotPeakGflops: { oneThread: 150, allThreads: 300 } };
    const flops = 4e8;
    expect(roofline(1e7, flops, 4, withBoth, bf16DotFlops("flash_decoding", "bfloat16", "int8", flops, lookups), int16DotFlops("flash_decoding", "bfloat16", "int8", flops, 96, 32)))
      .toEqual({ ms: 2, bound: "compute", pct: 50, dot: true });
  });
});

describe("callWork", () => {
  it("counts the positions of the active causal blocks, clipped to the lengths", () => {
    const call = { batch: 1, qLen: 40, kvLen: 40 };
    const work = callWork(causal, call, createBlockMask(causal, 1, 40, 40));
    // Blocks of 16 over 40 rows: row block 0 sees kv block 0 (16 x 16), row block 1 kv 0..1 (16 x 32),
    // row block 2 (8 rows) kv 0..2 (8 x 40); times 2 query heads.
    expect(work.computedPositions).toBe(2 * (256 + 512 + 320));
    expect(work.densePositions).toBe(2 * 40 * 40);
    expect(work.flops).toBe(2 * (16 + 16) * work.computedPositions);
    expect(work.kvBytes).toBe(40 * (16 + 16) * 4);
    expect(work.minBytes).toBe(2 * 40 * 16 * 4 + work.kvBytes + 2 * 40 * 16 * 4);
  });

  it("counts every position without a mask", () => {
    const dense = parseSpec({ name: "d", query: { shape: [2, 4, 33, 16], dtype: "bfloat16" }, key: { shape: [2, 2, 70, 16], dtype: "bfloat16" }, value: { shape: [2, 2, 70, 16], dtype: "bfloat16" }, blockSize: [16, 32] });
    const work = callWork(dense, { batch: 2, qLen: 33, kvLen: 70 }, createBlockMask(dense, 2, 33, 70));
    expect(work.computedPositions).toBe(2 * 4 * 33 * 70);
    expect(work.kvBytes).toBe(2 * 2 * 70 * 32 * 2);
  });
});

describe("benchInputs", () => {
  it("fills q/k/v of the call's shapes with finite values of a sane magnitude, in every dtype", () => {
    for (const dtype of ["float32", "bfloat16", "float16"] as const) {
      const graph = parseSpec({ name: "i", query: { shape: [1, 4, 1, 16], dtype }, key: { shape: [1, 2, 1, 16], dtype }, value: { shape: [1, 2, 1, 16], dtype } });
      const inputs = benchInputs(graph, { batch: 3, qLen: 5, kvLen: 77 }, 1);
      expect(validateInputs(graph, inputs)).toMatchObject({ batch: 3, qLen: 5, kvLen: 77 });
      const decode = dtype === "float32" ? (x: number) => x : dtype === "bfloat16" ? bf16BitsToF32 : f16BitsToF32;
      const values = Array.from(inputs.key.data as ArrayLike<number>, decode);
      expect(values.every((v) => Number.isFinite(v) && Math.abs(v) <= 2)).toBe(true);
      expect(new Set(values).size).toBeGreaterThan(50);
    }
  });

  it("gives a paged graph a page table, full lengths and its buffers", () => {
    const graph = parseSpec({
      name: "p",
      query: { shape: [2, 4, 1, 16], dtype: "float32" },
      key: { shape: [8, 2, 16, 16], dtype: "float32" },
      value: { shape: [8, 2, 16, 16], dtype: "float32" },
      kvCache: { pageSize: 16 },
      scoreMod: "score + slopes[h]",
      buffers: { slopes: { shape: [4], dtype: "float32" } },
      blockSize: [16, 16],
    });
    const inputs = benchInputs(graph, { batch: 2, qLen: 1, kvLen: 40 }, 2);
    expect(validateInputs(graph, inputs)).toMatchObject({ batch: 2, qLen: 1, kvLen: 40 });
    expect(Array.from(inputs.seqLens!.data as Int32Array)).toEqual([40, 40]);
    expect(inputs.pageTable!.shape).toEqual([2, 3]);
    expect(inputs.buffers!.slopes.shape).toEqual([4]);
  });
});

describe("coldCopies", () => {
  // Large typed arrays are compared by identity with === and by contents as bytes: toBe and toEqual walk them
  // element by element (seconds at these sizes).
  const sameBytes = (a: ArrayBufferView, b: ArrayBufferView) =>
    Buffer.from(a.buffer, a.byteOffset, a.byteLength).equals(Buffer.from(b.buffer, b.byteOffset, b.byteLength));
  const decode = parseSpec({
    name: "cold",
    query: { shape: [1, 4, 1, 32], dtype: "bfloat16" },
    key: { shape: [1, 2, 1, 32], dtype: "bfloat16" },
    value: { shape: [1, 2, 1, 32], dtype: "bfloat16" },
  });

  it("runs as many sets as span COLD_BYTES, at least one and at most MAX_COPIES", () => {
    expect(setsFor(COLD_BYTES)).toBe(1);
    expect(setsFor(2 * COLD_BYTES)).toBe(1);
    expect(setsFor(COLD_BYTES / 4)).toBe(4);
    expect(setsFor(COLD_BYTES / 4 - 1)).toBe(5);
    expect(setsFor(1)).toBe(MAX_COPIES);
    expect(setsFor(0)).toBe(MAX_COPIES);
  });

  it("copies large tensors into storage of their own with the same contents, and shares small ones", () => {
    // K and V of 2 x 2048 x 32 bf16 = 256 KB each; the query (128 bytes) stays shared.
    const inputs = benchInputs(decode, { batch: 1, qLen: 1, kvLen: 2048 }, 3);
    expect(inputBytes(inputs)).toBe(2 * 2 * 2048 * 32 * 2 + 4 * 32 * 2);
    const sets = coldCopies(inputs);
    expect(sets.length).toBe(setsFor(inputBytes(inputs)));
    expect(sets[0]).toBe(inputs);
    for (const set of sets.slice(1)) {
      expect(set.query.data === inputs.query.data).toBe(true);
      for (const name of ["key", "value"] as const) {
        expect(set[name].data !== inputs[name].data).toBe(true);
        expect(set[name].data.buffer !== inputs[name].data.buffer).toBe(true);
        expect(set[name].shape).toEqual(inputs[name].shape);
        expect(sameBytes(set[name].data, inputs[name].data)).toBe(true);
      }
      expect(validateInputs(decode, set)).toMatchObject({ batch: 1, qLen: 1, kvLen: 2048 });
    }
    expect(new Set(sets.map((set) => set.key.data)).size).toBe(sets.length);
  });

  it("keeps views of one buffer views of one copy, at their offsets and strides", () => {
    // q, k and v as views of one fused [L, 3, H, D] buffer: its storage counts once.
    const L = 1024, H = 2, D = 32;
    const fused = new Uint16Array(L * 3 * H * D).map((_, i) => i % 65000);
    const part = (i: number) => view(fused, "bfloat16", [1, H, L, D], [0, D, 3 * H * D, 1], i * H * D);
    const inputs = { query: part(0), key: part(1), value: part(2) };
    expect(inputBytes(inputs)).toBe(fused.byteLength);
    const sets = coldCopies(inputs);
    expect(sets.length).toBe(setsFor(fused.byteLength));
    for (const set of sets.slice(1)) {
      expect(set.key.data === set.query.data).toBe(true);
      expect(set.value.data === set.query.data).toBe(true);
      expect(set.key.data !== fused).toBe(true);
      expect(set.value.offset).toBe(2 * H * D);
      expect(set.value.strides).toEqual([0, D, 3 * H * D, 1]);
      expect(sameBytes(set.key.data, fused)).toBe(true);
    }
  });
});

describe("writeResults", () => {
  let dir: string;
  beforeAll(async () => {
    dir = await mkdtemp(join(tmpdir(), "minductor-bench-results-"));
  });
  afterAll(() => rm(dir, { recursive: true, force: true }));

  it("writes <start time>.json with ':' and '.' made portable, and nothing else", async () => {
    const probe = { readBandwidthGBs: { oneThread: 5, allThreads: 10 }, fmaPeakGflops: { oneThread: 50, allThreads: 100 }, threads: 2, cpu: "cpu", isa: "avx2+fma", measuredAt: new Date().toISOString() };
    const results: BenchResults = emptyResults({ probe, cores: 2, threads: 2, node: "v20", compiler: "g++", cpuFeatures: "", loadAverage: 0 }, true, ["overhead"]);
    const path = await writeResults(join(dir, "nested"), results);
    expect(path).toBe(join(dir, "nested", resultsFileName(results.startedAt)));
    expect(resultsFileName("2026-01-02T03:04:05.678Z")).toBe("2026-01-02T03-04-05-678Z.json");
    expect(JSON.parse(await readFile(path, "utf8"))).toEqual(results);
    expect(await readdir(join(dir, "nested"))).toEqual([resultsFileName(results.startedAt)]);
  });
});
