/**
 * Sources built in translation units (src/compile/buildEntry.ts): each unit (`-DMD_UNIT=i -c`) compiles at once, one
 * compiler slot each, and the objects link into the library. The rest of the suite builds engines whole
 * (vitest.config.ts sets MINDUCTOR_SPLIT_BUILDS=0), so this file turns unit builds on and covers them: a small source
 * whose units call each other, a unit that fails, and a real engine, built in a cache of its own so that it is built
 * here in units and not found in the suite's cache, run against the float64 reference through both templates and
 * decoding's hand-off of longer queries to the prefill tasks of the other unit.
 */
import { existsSync, readFileSync } from "node:fs";
import { chmod, readdir, readFile, writeFile } from "node:fs/promises";
import { dirname, join } from "node:path";
import { execa } from "execa";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { CompileError } from "../../src/index.js";
import { compileSource, listCache, _resetMemoryCacheForTests } from "../../src/compile/index.js";
import { parseSpec } from "../../src/ir/spec.js";
import { expectMatchesReference, kernelFor } from "../helpers/checkKernel.js";
import { useFastBuilds } from "../helpers/fastBuilds.js";
import { callAnswer, freshDir } from "./helpers.js";

process.env.MINDUCTOR_SPLIT_BUILDS = "1";
// -O1: what is under test is how the units fit together, not the code the optimiser makes of them.
useFastBuilds();

/** Unit 1 calls a function of unit 2; without MD_UNIT the source is whole and the same. */
const TWO_UNITS = [
  "#ifndef MD_UNIT",
  "#define MD_UNIT 0",
  "#endif",
  '__attribute__((visibility("hidden"))) int md_from_two(void);',
  "#if MD_UNIT != 2",
  'extern "C" int md_answer() { return md_from_two() + 1; }',
  "#endif",
  "#if MD_UNIT != 1",
  "int md_from_two(void) { return 41; }",
  "#endif",
  "",
].join("\n");

let cacheDir: string;
let cleanup: () => Promise<void>;
beforeAll(async () => {
  ({ dir: cacheDir, cleanup } = await freshDir("units"));
  // compile() without a cacheDir (expectMatchesReference's) uses it too.
  process.env.MINDUCTOR_CACHE_DIR = cacheDir;
});
afterAll(() => cleanup());

async function manifestOf(soPath: string): Promise<{ units?: number; argv: string[] }> {
  return JSON.parse(await readFile(join(dirname(soPath), "manifest.json"), "utf8"));
}

describe("a source in translation units", () => {
  it("builds each unit and links them: the units' calls to each other resolve, no object file stays", async () => {
    const library = await compileSource(TWO_UNITS, { cacheDir, units: 2 });
    expect(library.fromCache).toBe("compiled");
    expect(callAnswer(library.soPath)).toBe(42);
    expect((await manifestOf(library.soPath)).units).toBe(2);
    expect((await readdir(dirname(library.soPath))).filter((f) => f.endsWith(".o"))).toEqual([]);
  });

  it("builds whole with MINDUCTOR_SPLIT_BUILDS=0, under the same key", async () => {
    const { dir, cleanup: done } = await freshDir("units-whole");
    try {
      process.env.MINDUCTOR_SPLIT_BUILDS = "0";
      const whole = await compileSource(TWO_UNITS, { cacheDir: dir, units: 2 });
      expect(callAnswer(whole.soPath)).toBe(42);
      expect((await manifestOf(whole.soPath)).units).toBeUndefined();
      _resetMemoryCacheForTests();
      process.env.MINDUCTOR_SPLIT_BUILDS = "1";
      const split = await compileSource(TWO_UNITS, { cacheDir, units: 2 });
      expect(split.key).toBe(whole.key);
    } finally {
      process.env.MINDUCTOR_SPLIT_BUILDS = "1";
      await done();
    }
  });

  it("starts the units after the first once unitsAfter settles", async () => {
    const { dir, cleanup: done } = await freshDir("units-after");
    try {
      const log = join(dir, "compiler.log");
      const cxx = join(dir, "logging-g++");
      await writeFile(cxx, `#!/bin/sh\necho "$(date +%s%N) $*" >> '${log}'\nexec g++ "$@"\n`);
      await chmod(cxx, 0o755);
      const logged = (unit: number) => (existsSync(log) ? readFileSync(log, "utf8").split("\n").find((l) => l.includes(`-DMD_UNIT=${unit}`)) : undefined);
      // `after` settles once the first unit's compiler has started, or after a minute: a build that held the first
      // unit back until `after` would start it a minute late. (A fixed delay raced the first unit's start on a busy
      // machine.)
      let settledMs = 0;
      const after = (async () => {
        for (const deadline = Date.now() + 60_000; Date.now() < deadline && !logged(1); ) await new Promise((r) => setTimeout(r, 10));
        settledMs = Date.now();
      })();
      const library = await compileSource(`${TWO_UNITS}// after\n`, { cacheDir: dir, cxx, units: 2, unitsAfter: after });
      expect(callAnswer(library.soPath)).toBe(42);
      // The wrapper's clock, in ms: when each unit's compiler started.
      const startedMs = (unit: number) => Number(BigInt(logged(unit)!.split(" ")[0]) / 1_000_000n);
      expect(startedMs(1)).toBeLessThanOrEqual(settledMs);
      expect(startedMs(2)).toBeGreaterThanOrEqual(settledMs);
    } finally {
      await done();
    }
  });

  it("reports a unit that fails to compile with its own command line, and publishes nothing", async () => {
    const { dir, cleanup: done } = await freshDir("units-broken");
    try {
      const broken = `${TWO_UNITS}#if MD_UNIT == 2\n#error unit two is broken\n#endif\n`;
      const error = await compileSource(broken, { cacheDir: dir, units: 2 }).catch((e: unknown) => e);
      expect(error).toBeInstanceOf(CompileError);
      expect((error as CompileError).message).toContain("unit two is broken");
      expect((error as CompileError).message).toContain("-DMD_UNIT=2");
      expect(await listCache(dir)).toEqual([]);
    } finally {
      await done();
    }
  });
});

describe("an engine built in units", () => {
  const graph = parseSpec({
    name: "units_gqa",
    query: { shape: [2, 4, 1, 32], dtype: "float32" },
    key: { shape: [2, 2, 96, 32], dtype: "float32" },
    value: { shape: [2, 2, 96, 32], dtype: "float32" },
    scoreMod: "score - 0.25 * abs(q_idx - kv_idx)",
    returnLse: true,
    kernelOptions: { template: "flash_decoding" },
  });

  it("exports what a whole engine exports and runs both templates against the reference", async () => {
    const kernel = await kernelFor(graph);
    const engine = kernel.library.engine;
    expect(engine.fromCache).toBe("compiled");
    expect((await manifestOf(engine.soPath)).units).toBe(2);
    const { stdout } = await execa("nm", ["-D", "--defined-only", engine.soPath]);
    const exported = stdout
      .split("\n")
      .map((line) => line.split(" ").at(-1))
      .filter((name) => name?.startsWith("md_"))
      .sort();
    expect(exported).toEqual(["md_abi_version", "md_flash_attention", "md_flash_decoding", "md_naive_attention", "md_quantize_kv"]);
    // Decoding (unit 1), prefill (unit 2), and a query longer than decoding takes, which unit 1 hands to unit 2.
    await expectMatchesReference(graph, { shapes: { qLen: 1, kvLen: 77 }, label: "decode" });
    await expectMatchesReference(graph, { shapes: { qLen: 40, kvLen: 96 }, run: { template: "flash_attention" }, label: "prefill" });
    await expectMatchesReference(graph, { shapes: { qLen: 20, kvLen: 96 }, label: "decode hands off" });
  });
});
