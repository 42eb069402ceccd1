import { spawnSync } from "node:child_process";
import { chmodSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { dirname, join } from "node:path";
import { afterAll, afterEach, beforeAll, beforeEach, describe, expect, it, vi } from "vitest";
import { main } from "../../src/cli/main.js";
import { _resetMemoryCacheForTests, compileSource, compilerInfo } from "../../src/compile/index.js";
import {
  compareOutputs,
  compile,
  generateInputs,
  type Kernel,
  NO_OPENMP_WARNING_CODE,
  parseSpec,
  referenceAttention,
  type RunOptions,
  type ShapeOverrides,
  TOLERANCE,
  toFloat64,
} from "../../src/index.js";
import { answerSource, callAnswer, expectedLinkerFlags } from "./helpers.js";

/**
 * Other compilers than g++: clang (with libomp) through the API and the CLI, and a compiler that cannot build with
 * -fopenmp. One small spec (2 heads, head dim 16) built at -O1: this is about semantics, not speed, and each new
 * compiler costs an engine build.
 */
const SPEC = {
  name: "compilers_softcap_causal",
  query: { shape: [1, 2, 40, 16], dtype: "float32" },
  key: { shape: [1, 2, 72, 16], dtype: "float32" },
  value: { shape: [1, 2, 72, 16], dtype: "float32" },
  scoreMod: "20 * tanh(score / 20) + pow(abs(kv_idx - q_idx), 0.5) * -0.25",
  maskMod: "q_idx + 32 >= kv_idx",
  blockSize: [32, 32],
  returnLse: true,
};
const FLAGS = ["-O1", "-march=native", "-fopenmp", "-shared", "-fPIC", "-std=gnu++17"];
const graph = parseSpec(SPEC);

const hasClang = spawnSync("clang++", ["--version"], { stdio: "ignore" }).status === 0;

let dir: string;
let specPath: string;
beforeAll(() => {
  dir = mkdtempSync(join(tmpdir(), "minductor-compilers-"));
  specPath = join(dir, "spec.json");
  writeFileSync(specPath, JSON.stringify(SPEC));
});
afterAll(() => rmSync(dir, { recursive: true, force: true }));

let warnings: Error[];
const onWarning = (warning: Error) => {
  if ((warning as Error & { code?: string }).code === NO_OPENMP_WARNING_CODE) warnings.push(warning);
};
beforeEach(() => {
  _resetMemoryCacheForTests();
  warnings = [];
  process.on("warning", onWarning);
});
afterEach(() => {
  process.off("warning", onWarning);
  vi.unstubAllEnvs();
});

/** Warnings are emitted on a later tick. */
const settle = () => new Promise((resolve) => setImmediate(resolve));

/** The argv and compiler version the library was built with, from its cache entry's manifest. */
function manifestOf(soPath: string): { argv: string[]; compilerVersion: string } {
  return JSON.parse(readFileSync(join(dirname(soPath), "manifest.json"), "utf8"));
}

/** Prefill and decode (both templates) on seeded inputs, against the float64 reference. */
function expectMatches(kernel: Kernel, shapes: ShapeOverrides, run: RunOptions = {}): void {
  const inputs = generateInputs(graph, 3, shapes);
  const result = kernel.run(inputs, run);
  const ref = referenceAttention(graph, inputs);
  const label = `${JSON.stringify(shapes)} ${JSON.stringify(run)}`;
  const out = compareOutputs(toFloat64(result.out), ref.out, TOLERANCE.float32);
  expect(out.ok, `${label}: out ${JSON.stringify(out)}`).toBe(true);
  const lse = compareOutputs(toFloat64(result.lse!), ref.lse, TOLERANCE.float32);
  expect(lse.ok, `${label}: lse ${JSON.stringify(lse)}`).toBe(true);
}

function expectBothTemplates(kernel: Kernel): void {
  expectMatches(kernel, {});
  expectMatches(kernel, { qLen: 1, kvLen: 200 }, { template: "flash_decoding", partitionSize: 64 });
}

describe.skipIf(!hasClang)("clang++", () => {
  it("has its own compiler identity, so g++ and clang builds of one source never share a cache entry", async () => {
    const cacheDir = process.env.MINDUCTOR_CACHE_DIR;
    const [gcc, clang] = await Promise.all([compilerInfo("g++", FLAGS, cacheDir), compilerInfo("clang++", FLAGS, cacheDir)]);
    expect(gcc.family).toBe("gcc");
    expect(clang.family).toBe("clang");
    expect(clang.version).toContain("clang");
    expect(clang.version).not.toBe(gcc.version);
    expect(clang.openmp).toBe(true);

    const [a, b] = await Promise.all([compileSource(answerSource(71), { cxx: "g++", cxxflags: FLAGS }), compileSource(answerSource(71), { cxx: "clang++", cxxflags: FLAGS })]);
    expect(a.key).not.toBe(b.key);
    expect(manifestOf(b.soPath).compilerVersion).toBe(clang.version);
    expect(callAnswer(a.soPath)).toBe(71);
    expect(callAnswer(b.soPath)).toBe(71);
  });

  it("builds and runs a kernel through compile() with MINDUCTOR_CXX=clang++, matching the reference", async () => {
    vi.stubEnv("MINDUCTOR_CXX", "clang++");
    vi.stubEnv("MINDUCTOR_CXXFLAGS", FLAGS.join(" "));
    const kernel = await compile(graph);
    for (const library of [kernel.library.engine, kernel.library.mods]) {
      expect(manifestOf(library.soPath).argv).toEqual(["clang++", ...FLAGS, ...expectedLinkerFlags(), "-o", "kernel.so", "kernel.cpp"]);
      expect(manifestOf(library.soPath).compilerVersion).toContain("clang");
    }
    expectBothTemplates(kernel);
    await settle();
    expect(warnings).toEqual([]);
  });

  it("runs `minductor run --check` with MINDUCTOR_CXX=clang++", async () => {
    vi.stubEnv("MINDUCTOR_CXX", "clang++");
    vi.stubEnv("MINDUCTOR_CXXFLAGS", FLAGS.join(" "));
    let out = "";
    let err = "";
    const io = { out: (t: string) => void (out += t), err: (t: string) => void (err += t), interactive: false };
    expect(await main(["node", "minductor", "run", specPath, "--check"], io), err).toBe(0);
    expect(out).toMatch(/check out: .*: ok/);
    expect(out).toMatch(/check lse: .*: ok/);
  });
});

describe("a compiler that cannot build with -fopenmp", () => {
  /** Forwards to g++ but fails as a compiler without OpenMP does when given -fopenmp. */
  let fake: string;
  beforeAll(() => {
    // A stable path in the checkout's (ignored) .cache, rewritten only when its text changes: its compiler info and
    // kernels stay cached across runs.
    fake = join(import.meta.dirname, "..", "..", ".cache", "fake-compilers", "g++-without-openmp");
    const text = `#!/bin/sh
for arg in "$@"; do
  if [ "$arg" = -fopenmp ]; then echo "g++-without-openmp: error: unsupported option '-fopenmp'" >&2; exit 1; fi
done
exec g++ "$@"
`;
    mkdirSync(dirname(fake), { recursive: true });
    let current = "";
    try {
      current = readFileSync(fake, "utf8");
    } catch {
      // first run
    }
    if (current !== text) writeFileSync(fake, text);
    chmodSync(fake, 0o755);
  });

  it("builds without it, warns once, and the kernel matches the reference on one thread", async () => {
    const kernel = await compile(graph, { cxx: fake, cxxflags: FLAGS });
    const again = await compile(graph, { cxx: fake, cxxflags: FLAGS });
    const other = await compileSource(answerSource(72), { cxx: fake, cxxflags: FLAGS });
    await settle();

    expect(warnings).toHaveLength(1);
    expect(warnings[0].message).toContain("cannot build with -fopenmp");
    expect(warnings[0].message).toContain("unsupported option '-fopenmp'");
    expect(warnings[0].message).toContain("one thread");
    const withoutOpenmp = FLAGS.filter((flag) => flag !== "-fopenmp");
    for (const library of [kernel.library.engine, kernel.library.mods]) {
      expect(manifestOf(library.soPath).argv).toEqual([fake, ...withoutOpenmp, ...expectedLinkerFlags(), "-o", "kernel.so", "kernel.cpp"]);
    }
    expect(again.library.soPath).toBe(kernel.library.soPath);
    expect(callAnswer(other.soPath)).toBe(72);
    expectBothTemplates(kernel);
    // Asking for threads is harmless: md_base.h runs one without OpenMP.
    expectMatches(kernel, {}, { numThreads: 4 });
    // The template choice plans for the one thread the kernel runs on, whatever the machine has or a call asks.
    expect(kernel.library.engine.threaded).toBe(false);
    expect(kernel.explain()).toContain(", 1 thread(s)");
    expect(kernel.explain({ threads: 8 })).toContain(", 8 thread(s)");
  });

  it("keeps the answer with the compiler info, and flags without -fopenmp are built as given, without a warning", async () => {
    const info = await compilerInfo(fake, FLAGS, process.env.MINDUCTOR_CACHE_DIR);
    expect(info.openmp).toBe(false);
    expect(info.family).toBe("gcc");
    const withoutOpenmp = FLAGS.filter((flag) => flag !== "-fopenmp");
    const library = await compileSource(answerSource(73), { cxx: "g++", cxxflags: withoutOpenmp });
    await settle();
    expect(warnings).toEqual([]);
    expect(manifestOf(library.soPath).argv).toEqual(["g++", ...withoutOpenmp, ...expectedLinkerFlags(), "-o", "kernel.so", "kernel.cpp"]);
    expect(callAnswer(library.soPath)).toBe(73);
    expect(library.threaded).toBe(false);
    expect((await compileSource(answerSource(74), { cxx: "g++", cxxflags: FLAGS })).threaded).toBe(true);
  });
});
