import { mkdtemp, readFile, readdir, rm, stat, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { type MachineProbe, formatProbe, probeMachine } from "../../src/bench/probe.js";
import { type MachineIdentity, identityHash, isaOf, machineIdentity } from "../../src/tune/machineIdentity.js";
import { isUndisturbed } from "../../src/bench/measureSteadily.js";
import { PROBE_FORMAT_VERSION, readCachedProbe, writeCachedProbe } from "../../src/bench/probeCache.js";
import type { ProbeMeasurement } from "../../src/bench/probeLibrary.js";

// One dir for the whole file, so probe.cpp is compiled once; tests that need a fresh measurement ask for `refresh`.
let cacheDir: string;
beforeAll(async () => {
  cacheDir = await mkdtemp(join(tmpdir(), "minductor-probe-"));
});
afterAll(() => rm(cacheDir, { recursive: true, force: true }));

const probeFiles = async () => (await readdir(cacheDir)).filter((name) => /^probe-.*\.json$/.test(name));

describe("probeMachine", () => {
  it("measures positive finite figures, all threads at least 0.8 x one thread", async () => {
    const probe = await probeMachine({ cacheDir, quick: true, refresh: true });
    const figures = [probe.readBandwidthGBs, probe.fmaPeakGflops].flatMap((pair) => [pair.oneThread, pair.allThreads]);
    for (const value of figures) {
      expect(Number.isFinite(value)).toBe(true);
      expect(value).toBeGreaterThan(0);
    }
    expect(probe.readBandwidthGBs.allThreads).toBeGreaterThanOrEqual(0.8 * probe.readBandwidthGBs.oneThread);
    expect(probe.fmaPeakGflops.allThreads).toBeGreaterThanOrEqual(0.8 * probe.fmaPeakGflops.oneThread);
    expect(Number.isInteger(probe.threads) && probe.threads >= 1).toBe(true);
    const identity = await machineIdentity();
    expect(probe.isa).toBe(identity.isa);
    expect(probe.cpu).toBe(identity.cpu);
    expect(new Date(probe.measuredAt).toISOString()).toBe(probe.measuredAt);
  }, 60_000);

  it("caches per machine, reuses the cache and re-measures on refresh", async () => {
    const first = await probeMachine({ cacheDir, quick: true, refresh: true });
    const files = await probeFiles();
    expect(files).toEqual([`probe-${identityHash(await machineIdentity())}.json`]);
    const written = (await stat(join(cacheDir, files[0]))).mtimeMs;

    const second = await probeMachine({ cacheDir, quick: true });
    expect(second).toEqual(first);
    expect((await stat(join(cacheDir, files[0]))).mtimeMs).toBe(written);

    const refreshed = await probeMachine({ cacheDir, quick: true, refresh: true });
    expect(Date.parse(refreshed.measuredAt)).toBeGreaterThan(Date.parse(first.measuredAt));
    expect(await probeMachine({ cacheDir, quick: true })).toEqual(refreshed);
    expect(await probeFiles()).toEqual(files);
  }, 60_000);

  it("measures again when the cached file is corrupt", async () => {
    const first = await probeMachine({ cacheDir, quick: true, refresh: true });
    const [file] = await probeFiles();
    await writeFile(join(cacheDir, file), "{ not json");
    const again = await probeMachine({ cacheDir, quick: true });
    expect(again.measuredAt).not.toBe(first.measuredAt);
    expect(JSON.parse(await readFile(join(cacheDir, file), "utf8")).probe).toEqual(again);
  }, 60_000);

  it("lets concurrent callers share one measurement instead of measuring side by side", async () => {
    for (const file of await probeFiles()) await rm(join(cacheDir, file));
    const [a, b] = await Promise.all([probeMachine({ cacheDir, quick: true }), probeMachine({ cacheDir, quick: true })]);
    expect(a).toEqual(b);
  }, 60_000);
});

describe("the probe cache file", () => {
  const identity: MachineIdentity = { cpu: "Test CPU", cores: 4, isa: "avx2+fma", ompNumThreads: "" };
  const probe: MachineProbe = {
    readBandwidthGBs: { oneThread: 20, allThreads: 60 },
    fmaPeakGflops: { oneThread: 100, allThreads: 400 },
    threads: 4,
    cpu: "Test CPU",
    isa: "avx2+fma",
    measuredAt: "2025-01-02T03:04:05.678Z",
  };
  const path = () => join(cacheDir, "probe-cache-test.json");

  it("round-trips, and a full measurement serves a quick request but not the reverse", async () => {
    await writeCachedProbe(path(), identity, "full", probe);
    expect(await readCachedProbe(path(), identity, "full")).toEqual(probe);
    expect(await readCachedProbe(path(), identity, "quick")).toEqual(probe);
    await writeCachedProbe(path(), identity, "quick", probe);
    expect(await readCachedProbe(path(), identity, "quick")).toEqual(probe);
    expect(await readCachedProbe(path(), identity, "full")).toBeUndefined();
  });

  it("ignores files of another machine, another format version, or with bad figures", async () => {
    await writeCachedProbe(path(), identity, "full", probe);
    for (const other of [{ cores: 8 }, { cpu: "Other" }, { isa: "avx512f" }, { ompNumThreads: "1" }]) {
      expect(await readCachedProbe(path(), { ...identity, ...other }, "full")).toBeUndefined();
    }
    const file = JSON.parse(await readFile(path(), "utf8"));
    await writeFile(path(), JSON.stringify({ ...file, formatVersion: PROBE_FORMAT_VERSION + 1 }));
    expect(await readCachedProbe(path(), identity, "full")).toBeUndefined();
    const negative = { ...file, probe: { ...probe, fmaPeakGflops: { oneThread: -1, allThreads: 4 } } };
    await writeFile(path(), JSON.stringify(negative));
    expect(await readCachedProbe(path(), identity, "full")).toBeUndefined();
    expect(await readCachedProbe(join(cacheDir, "absent.json"), identity, "full")).toBeUndefined();
  });
});

describe("isUndisturbed", () => {
  const clean: ProbeMeasurement = {
    isa: "avx2+fma",
    threads: 2,
    readBandwidthGBs: { oneThread: 20, allThreads: 30 },
    fmaPeakGflops: { oneThread: 100, allThreads: 200 },
    fmaLanes: 8,
    byteLookups: false,
    offCpu: 0.01,
  };

  it("accepts a measurement whose threads kept their cores and scaled", () => {
    expect(isUndisturbed(clean)).toBe(true);
    expect(isUndisturbed({ ...clean, threads: 1, readBandwidthGBs: { oneThread: 20, allThreads: 19 } })).toBe(true);
  });

  it("rejects one where a thread waited for a core, or all threads did less than one", () => {
    expect(isUndisturbed({ ...clean, offCpu: 0.4 })).toBe(false);
    expect(isUndisturbed({ ...clean, readBandwidthGBs: { oneThread: 20, allThreads: 10 } })).toBe(false);
    expect(isUndisturbed({ ...clean, fmaPeakGflops: { oneThread: 100, allThreads: 60 } })).toBe(false);
  });
});

describe("machine identity", () => {
  it("picks the ISA probe.cpp compiles to from the feature macros", () => {
    expect(isaOf("__AVX2__ __AVX512F__ __FMA__ __SSE2__")).toBe("avx512f");
    expect(isaOf("__AVX2__ __F16C__ __FMA__ __SSE2__")).toBe("avx2+fma");
    expect(isaOf("__AVX2__ __SSE2__")).toBe("scalar");
    expect(isaOf("__ARM_NEON __aarch64__")).toBe("scalar");
  });

  it("hashes every field into the file name", () => {
    const base: MachineIdentity = { cpu: "A", cores: 2, isa: "avx2+fma", ompNumThreads: "" };
    const variants = [base, { ...base, cpu: "B" }, { ...base, cores: 3 }, { ...base, isa: "scalar" }, { ...base, ompNumThreads: "1" }];
    const hashes = variants.map(identityHash);
    expect(new Set(hashes).size).toBe(variants.length);
    expect(hashes[0]).toMatch(/^[0-9a-f]{16}$/);
    expect(identityHash({ ...base })).toBe(hashes[0]);
  });
});

describe("formatProbe", () => {
  it("prints a table with one column per thread count", () => {
    const text = formatProbe({
      readBandwidthGBs: { oneThread: 21.04, allThreads: 63.96 },
      fmaPeakGflops: { oneThread: 102.4, allThreads: 204.75 },
      threads: 2,
      cpu: "AMD EPYC",
      isa: "avx2+fma",
      measuredAt: "2025-01-02T03:04:05.678Z",
    });
    expect(text.split("\n")).toEqual([
      "cpu: AMD EPYC (avx2+fma), measured 2025-01-02T03:04:05.678Z",
      "                         1 thread  2 threads",
      "read bandwidth (GB/s)        21.0       64.0",
      "fp32 FMA peak (GFLOP/s)     102.4      204.8",
    ]);
  });

  it("says thread, not threads, for a single-thread machine", () => {
    const text = formatProbe({
      readBandwidthGBs: { oneThread: 10, allThreads: 10 },
      fmaPeakGflops: { oneThread: 50, allThreads: 50 },
      threads: 1,
      cpu: "x",
      isa: "scalar",
      measuredAt: "2025-01-02T03:04:05.678Z",
    });
    expect(text.split("\n")[1].trim()).toBe("1 thread  1 thread");
  });
});
