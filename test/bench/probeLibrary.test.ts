import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { execa } from "execa";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { isaOf } from "../../src/tune/machineIdentity.js";
import { QUICK_SETTINGS, compileProbe, measureWithLibrary } from "../../src/bench/probeLibrary.js";
import { openReadPass } from "../../src/bench/readPass.js";
import { atCaseBandwidth, roofline } from "../../src/bench/roofline.js";
import { templatesDir } from "../../src/codegen/templatesDir.js";
import { compilerInfo } from "../../src/compile/index.js";
import { defaultCxx, defaultCxxflags } from "../../src/compile/options.js";

const x64 = process.arch === "x64";
const probeCpp = () => join(templatesDir(), "probe.cpp");

let cacheDir: string;
beforeAll(async () => {
  cacheDir = await mkdtemp(join(tmpdir(), "minductor-probe-lib-"));
});
afterAll(() => rm(cacheDir, { recursive: true, force: true }));

/** The assembly g++ makes of probe.cpp with `flags` (a library flag set; -shared means nothing to -S). */
async function assembly(flags: readonly string[]): Promise<string> {
  const argv = [...flags.filter((flag) => flag !== "-shared"), "-S", "-o", "-", probeCpp()];
  return (await execa(defaultCxx(), argv)).stdout;
}

const count = (text: string, pattern: RegExp) => text.match(new RegExp(pattern, "g"))?.length ?? 0;

describe("probe.cpp assembly", () => {
  it.skipIf(!x64)("keeps 12 independent FMA chains in vector registers for the machine's ISA", async () => {
    const isa = isaOf((await compilerInfo(defaultCxx(), defaultCxxflags())).cpuFeatures);
    const asm = await assembly(defaultCxxflags());
    if (isa === "avx512f") expect(count(asm, /vfmadd\d{3}ps\s+%zmm\d+, %zmm\d+, %zmm\d+/)).toBeGreaterThanOrEqual(12);
    if (isa === "avx2+fma") expect(count(asm, /vfmadd\d{3}ps\s+%ymm\d+, %ymm\d+, %ymm\d+/)).toBeGreaterThanOrEqual(12);
  });

  it.skipIf(!x64)("uses 512-bit FMAs and loads when AVX-512 is enabled", async () => {
    const asm = await assembly([...defaultCxxflags(), "-mavx512f"]);
    expect(count(asm, /vfmadd\d{3}ps\s+%zmm\d+, %zmm\d+, %zmm\d+/)).toBeGreaterThanOrEqual(12);
    expect(count(asm, /vaddps\s+-?\d*\(%\w+(,%\w+,\d)?\), %zmm\d+, %zmm\d+/)).toBeGreaterThanOrEqual(8);
  });

  it.skipIf(!x64)("uses 256-bit FMAs and loads with AVX2 + FMA", async () => {
    const asm = await assembly(["-O3", "-march=haswell", "-fopenmp", "-fPIC", "-std=gnu++17"]);
    expect(count(asm, /vfmadd\d{3}ps\s+%ymm\d+, %ymm\d+, %ymm\d+/)).toBeGreaterThanOrEqual(12);
    expect(count(asm, /vaddps\s+-?\d*\(%\w+(,%\w+,\d)?\), %ymm\d+, %ymm\d+/)).toBeGreaterThanOrEqual(8);
    expect(asm).not.toMatch(/%zmm/);
  });
});

describe("measureWithLibrary", () => {
  it("runs the native build and reports the ISA the flags select", async () => {
    const soPath = await compileProbe({ cacheDir });
    const measured = await measureWithLibrary(soPath, QUICK_SETTINGS);
    const isa = isaOf((await compilerInfo(defaultCxx(), defaultCxxflags())).cpuFeatures);
    expect(measured.isa).toBe(isa);
    expect(measured.fmaLanes).toBe({ avx512f: 16, "avx2+fma": 8, scalar: 1 }[isa]);
    expect(measured.threads).toBeGreaterThanOrEqual(1);
    // the bf16 dot-product peak exactly where the default flags target AVX512-BF16
    const { cpuFeatures } = await compilerInfo(defaultCxx(), defaultCxxflags());
    if (cpuFeatures.split(" ").includes("__AVX512BF16__")) {
      expect(measured.bf16DotPeakGflops!.oneThread).toBeGreaterThan(0);
      expect(measured.bf16DotPeakGflops!.allThreads).toBeGreaterThan(0);
    } else {
      expect(measured.bf16DotPeakGflops).toBeUndefined();
    }
    // the int16 dot-product peak exactly where they target AVX2 or AVX-512BW (int8 decoding's q . k)
    const features = cpuFeatures.split(" ");
    const has = (f: string) => features.includes(f);
    if ((has("__AVX512BW__") && has("__AVX512VL__")) || (has("__AVX2__") && has("__FMA__") && !has("__AVX512F__"))) {
      expect(measured.int16DotPeakGflops!.oneThread).toBeGreaterThan(0);
      expect(measured.int16DotPeakGflops!.allThreads).toBeGreaterThan(0);
    } else {
      expect(measured.int16DotPeakGflops).toBeUndefined();
    }
    // 8-bit decode on the bf16 dot products (byte lookups) exactly where they target AVX512-BF16 and AVX512-VBMI
    expect(measured.byteLookups).toBe(has("__AVX512BF16__") && has("__AVX512VBMI__"));
  }, 60_000);

  it.skipIf(!x64)("falls back to scalar code on a baseline x86-64 build", async () => {
    const cxxflags = ["-O3", "-march=x86-64", "-fopenmp", "-shared", "-fPIC", "-std=gnu++17"];
    const measured = await measureWithLibrary(await compileProbe({ cacheDir, cxxflags }), QUICK_SETTINGS);
    expect(measured.isa).toBe("scalar");
    expect(measured.fmaLanes).toBe(1);
    expect(measured.bf16DotPeakGflops).toBeUndefined();
    expect(measured.int16DotPeakGflops).toBeUndefined();
    expect(measured.byteLookups).toBe(false);
    expect(measured.fmaPeakGflops.oneThread).toBeGreaterThan(0);
    expect(measured.readBandwidthGBs.oneThread).toBeGreaterThan(0);
  }, 60_000);

  it("measures with one thread when built without OpenMP", async () => {
    const cxxflags = ["-O3", "-march=native", "-shared", "-fPIC", "-std=gnu++17"];
    const measured = await measureWithLibrary(await compileProbe({ cacheDir, cxxflags }), QUICK_SETTINGS);
    expect(measured.threads).toBe(1);
    expect(measured.readBandwidthGBs.allThreads).toBeGreaterThan(0);
  }, 60_000);

  it("refuses a bad setting with the probe's status instead of measuring nonsense", async () => {
    const soPath = await compileProbe({ cacheDir });
    await expect(measureWithLibrary(soPath, { ...QUICK_SETTINGS, readBytes: 100 })).rejects.toThrow(
      /md_probe_read_bandwidth failed with status 2 \(bad argument\)/,
    );
  }, 60_000);
});

describe("openReadPass", () => {
  it("reads every byte of a buffer of whole blocks, and refuses to run once closed", async () => {
    const pass = await openReadPass(3 * 65536 + 100, cacheDir);
    expect(pass.bytes).toBe(3 * 65536);
    // run() checks that the pass summed one 1.0f per float read: it throws when a byte went unread.
    for (let i = 0; i < 3; i++) pass.run();
    pass.close();
    expect(() => pass.run()).toThrow(/closed/);
    pass.close();
  });

  it("refuses a buffer smaller than one block", async () => {
    await expect(openReadPass(1000, cacheDir)).rejects.toThrow(/whole 65536-byte blocks; 1000 bytes hold none/);
  });
});

describe("atCaseBandwidth", () => {
  const probe = { readBandwidthGBs: { oneThread: 30, allThreads: 60 }, fmaPeakGflops: { oneThread: 60, allThreads: 100 }, threads: 2, cpu: "Test", isa: "avx2+fma", measuredAt: "2026-01-01T00:00:00.000Z" };

  it("replaces the all-threads read bandwidth with the case's, and keeps the rest", () => {
    expect(atCaseBandwidth(probe, 45)).toEqual({ ...probe, readBandwidthGBs: { oneThread: 30, allThreads: 45 } });
    expect(atCaseBandwidth(probe, undefined)).toBe(probe);
    expect(roofline(90e6, 0, 2, atCaseBandwidth(probe, 45)).pct).toBeCloseTo(100, 9);
    expect(roofline(90e6, 0, 2, probe).pct).toBeCloseTo(75, 9);
  });
});
