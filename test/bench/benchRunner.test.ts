import { mkdir, mkdtemp, readFile, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { execa } from "execa";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import type { ResultOf } from "../../src/bench/benchCase.js";
import { BenchError } from "../../src/bench/benchError.js";
import { spawnCase } from "../../src/bench/spawnCase.js";
import { useFastBuilds } from "../helpers/fastBuilds.js";

// Plumbing, not arithmetic: its kernels build fast (test/helpers/fastBuilds.ts).
useFastBuilds();

/*
 * Bench cases run in child processes as plain JavaScript: the sources are built once into a private dir inside
 * the checkout (so the children resolve the project's node_modules and templates, and a stale dist/ cannot make
 * these tests pass or fail).
 */
const repoRoot = join(import.meta.dirname, "..", "..");
const buildDir = join(repoRoot, ".cache", `bench-test-build-${process.pid}`);
const runner = join(buildDir, "out", "bench", "runCase.js");
const cli = join(buildDir, "cli.mjs");
let work: string;

const SPEC = {
  name: "bench_runner_test",
  query: { shape: [1, 2, 40, 16], dtype: "float32" },
  key: { shape: [1, 1, 40, 16], dtype: "float32" },
  value: { shape: [1, 1, 40, 16], dtype: "float32" },
  maskMod: "q_idx >= kv_idx",
  blockSize: [16, 16],
};

beforeAll(async () => {
  await mkdir(buildDir, { recursive: true });
  const tsconfig = {
    extends: "../../tsconfig.json",
    compilerOptions: { rootDir: "../../src", outDir: "out", declaration: false, sourceMap: false },
    include: ["../../src/**/*.ts"],
  };
  await writeFile(join(buildDir, "tsconfig.json"), JSON.stringify(tsconfig));
  // Type errors elsewhere in the tree must not stop the build these tests need.
  await execa(join(repoRoot, "node_modules", ".bin", "tsc"), ["-p", join(buildDir, "tsconfig.json")], { reject: false });
  await writeFile(cli, 'import { main } from "./out/cli/main.js";\nprocess.exitCode = await main(process.argv);\n');
  work = await mkdtemp(join(tmpdir(), "minductor-bench-runner-"));
  await writeFile(join(work, "spec.json"), JSON.stringify(SPEC));
});
afterAll(async () => {
  await rm(buildDir, { recursive: true, force: true });
  if (work) await rm(work, { recursive: true, force: true });
});

describe("spawnCase", () => {
  it("measures a tiny case in a child process and returns its well-formed result", async () => {
    const result = await spawnCase<ResultOf<"kernel">>(
      {
        kind: "kernel",
        id: "child",
        spec: SPEC,
        call: { batch: 1, qLen: 40, kvLen: 40 },
        variants: [{ label: "auto" }, { label: "naive", template: "naive" }],
        timing: { warmup: 1, minRuns: 3, maxRuns: 4, budgetMs: 10 },
        seed: 1,
      },
      { runner },
    );
    expect(result.kind).toBe("kernel");
    expect(result.work.computedPositions).toBe(2 * (256 + 512 + 320));
    expect(result.variants.map((v) => v.template)).toEqual(["flash_attention", "naive"]);
    for (const v of result.variants) {
      expect(v.stats!.runs).toBeGreaterThanOrEqual(3);
      expect(v.stats!.runs).toBeLessThanOrEqual(4);
      expect(v.stats!.medianMs).toBeGreaterThan(0);
    }
  });

  it("turns a failing child into a BenchError carrying its stderr", async () => {
    const bad = { kind: "codegen" as const, id: "bad spec", spec: { ...SPEC, maskMod: "q_idx >= nosuch" }, runs: 1 };
    const error = await spawnCase(bad, { runner }).catch((e: unknown) => e);
    expect(error).toBeInstanceOf(BenchError);
    expect((error as Error).message).toMatch(/case bad spec exited with 1/);
    expect((error as Error).message).toMatch(/nosuch/);
  });
});

describe("minductor bench <spec>", () => {
  it("prints rows, writes the results JSON and the plot with the expected series", async () => {
    const out = join(work, "results.json");
    const plot = join(work, "plot.svg");
    const { stdout } = await execa(process.execPath, [cli, "bench", join(work, "spec.json"), "--shapes", "1,40,40", "1,1,64", "--quick", "--out", out, "--plot", plot, "--json"], { cwd: work });
    const printed = JSON.parse(stdout) as { spec: string; rows: { id: string; template: string; alternatives: { label: string; ratio: number | null }[] }[] };
    expect(printed.spec).toBe("bench_runner_test");
    expect(printed.rows.map((r) => r.id)).toEqual(["bench_runner_test B1 Lq40 Lkv40", "bench_runner_test B1 Lq1 Lkv64"]);
    expect(printed.rows[0].template).toBe("flash_attention");
    expect(printed.rows[0].alternatives.map((a) => a.label)).toEqual(["flash_attention", "flash_decoding", "naive"]);
    for (const a of printed.rows.flatMap((r) => r.alternatives)) expect(a.ratio).toBeGreaterThan(0);

    const written = JSON.parse(await readFile(out, "utf8")) as { formatVersion: number; cases: ResultOf<"kernel">[]; machine: { probe: { readBandwidthGBs: { allThreads: number } } } };
    expect(written.formatVersion).toBe(1);
    expect(written.cases.map((c) => c.id)).toEqual(printed.rows.map((r) => r.id));
    expect(written.machine.probe.readBandwidthGBs.allThreads).toBeGreaterThan(0);

    const svg = await readFile(plot, "utf8");
    for (const series of ["Roofline", "bench_runner_test (chosen: flash_attention)", "bench_runner_test naive", "bench_runner_test flash_decoding", "Templates"]) {
      expect(svg, series).toContain(series);
    }

    // `npm run bench -- --from FILE --plot FILE` draws an earlier run without measuring.
    const replot = join(work, "replot.svg");
    await execa(process.execPath, [join(buildDir, "out", "bench", "main.js"), "--from", out, "--plot", replot], { cwd: work });
    expect(await readFile(replot, "utf8")).toContain("Roofline");
  });

  it("refuses a malformed --shapes and an unknown suite", async () => {
    const shapes = await execa(process.execPath, [cli, "bench", join(work, "spec.json"), "--shapes", "1,40"], { cwd: work, reject: false });
    expect(shapes.exitCode).toBe(1);
    expect(shapes.stderr).toMatch(/--shapes takes B,Lq,Lkv triples/);
    const suite = await execa(process.execPath, [join(buildDir, "out", "bench", "main.js"), "nosuch"], { cwd: work, reject: false });
    expect(suite.exitCode).toBe(1);
    expect(suite.stderr).toMatch(/unknown suite 'nosuch'/);
  });
});
