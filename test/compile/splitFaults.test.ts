import { readFile, readdir, writeFile } from "node:fs/promises";
import { dirname, join } from "node:path";
import { execa } from "execa";
import { afterAll, afterEach, beforeAll, beforeEach, describe, expect, it, vi } from "vitest";
import { main } from "../../src/cli/main.js";
import { sha256, sourceIdentity } from "../../src/compile/cacheKey.js";
import { renderEngine, renderModLibrary } from "../../src/codegen/renderKernel.js";
import { renderModsCode } from "../../src/codegen/renderMods.js";
import { _resetMemoryCacheForTests, compileSource, listCache } from "../../src/compile/index.js";
import { parseSpec } from "../../src/ir/spec.js";
import { compile } from "../../src/index.js";
import { engineSourceHash } from "../../src/kernelLibrary.js";
import { generateInputs } from "../../src/io/generateInputs.js";
import { compareOutputs, TOLERANCE } from "../../src/reference/compareOutputs.js";
import { referenceAttention } from "../../src/reference/referenceAttention.js";
import { ModsMismatchError, openSplitLibrary } from "../../src/runtime/nativeLibrary.js";
import { toFloat64 } from "../../src/runtime/tensor.js";
import { freshDir } from "./helpers.js";
import { FAST_BUILD_CXXFLAGS } from "../helpers/fastBuilds.js";

/*
 * Faults of the split build: a mod library paired with the wrong engine, and `cache prune` next to a loaded mod
 * library. Fast builds (test/helpers/fastBuilds.ts) keep the engines short; what is tested does not depend on them.
 */
const CXXFLAGS = FAST_BUILD_CXXFLAGS;
const repoRoot = join(import.meta.dirname, "..", "..");

const spec = (dtype: "float32" | "float16", scoreMod: string) => ({
  name: "split_fault",
  query: { shape: [1, 2, 24, 16], dtype },
  key: { shape: [1, 1, 24, 16], dtype },
  value: { shape: [1, 1, 24, 16], dtype },
  scoreMod,
  maskMod: "q_idx >= kv_idx",
});

// One cache for the file: its tests use distinct mods, and sharing the two engines keeps it quick.
let cacheDir: string;
let cleanup: () => Promise<void>;
beforeAll(async () => {
  ({ dir: cacheDir, cleanup } = await freshDir("split-faults"));
});
beforeEach(() => _resetMemoryCacheForTests());
afterEach(() => vi.unstubAllEnvs());
afterAll(() => cleanup());

async function expectMatchesReference(kernel: Awaited<ReturnType<typeof compile>>) {
  const inputs = generateInputs(kernel.graph, 3);
  const ref = referenceAttention(kernel.graph, inputs);
  expect(compareOutputs(toFloat64(kernel.run(inputs).out), ref.out, TOLERANCE[kernel.graph.query.dtype]).ok).toBe(true);
}

describe("a mod library and its engine", () => {
  it("two graphs of one configuration share the engine; a graph of another configuration has its own", async () => {
    const [a, b, c] = await compile([spec("float32", "score * 0.5"), spec("float32", "score * 0.25"), spec("float16", "score * 0.5")], { cacheDir, cxxflags: CXXFLAGS, tuning: false });
    expect(b.library.engine.key).toBe(a.library.engine.key);
    expect(b.library.mods.key).not.toBe(a.library.mods.key);
    expect(c.library.engine.key).not.toBe(a.library.engine.key);
    // the engine's source and the prelude beside it in the cache, as the manifest's checksums give them
    const beside = (file: string) => readFile(join(dirname(a.library.engine.sourcePath), file), "utf8");
    const prelude = { name: "md_prelude.h", checksum: sha256(await beside("md_prelude.h")) };
    expect(a.library.engineHash).toBe(sourceIdentity(sha256(await beside("kernel.cpp")), prelude));
    for (const k of [a, b, c]) await expectMatchesReference(k);
  });

  it("the runtime refuses a mod library built for another engine, naming both", async () => {
    const [a, other] = await compile([spec("float32", "score * 0.5"), spec("float16", "score * 0.5")], { cacheDir, cxxflags: CXXFLAGS, tuning: false });
    const pair = () => openSplitLibrary(a.library.engine.soPath, other.library.mods.soPath, a.library.engineHash);
    expect(pair).toThrow(ModsMismatchError);
    expect(pair).toThrow(`was built for engine ${other.library.engineHash.slice(0, 12)}, not for engine ${a.library.engineHash.slice(0, 12)}`);
  });

  it("a cached mod library whose binary names another engine is rebuilt before it is loaded", async () => {
    const wanted = spec("float32", "score * 0.125");
    const first = await compile(wanted, { cacheDir, cxxflags: CXXFLAGS, tuning: false });
    const other = await compile(spec("float16", "score * 0.125"), { cacheDir, cxxflags: CXXFLAGS, tuning: false });
    // Swap in the other configuration's mod library, with a manifest that vouches for it: only its contents tell.
    const entry = dirname(first.library.mods.soPath);
    const foreign = await readFile(other.library.mods.soPath);
    await writeFile(join(entry, "kernel.so"), foreign);
    const manifest = JSON.parse(await readFile(join(entry, "manifest.json"), "utf8"));
    manifest.checksums["kernel.so"] = sha256(foreign);
    await writeFile(join(entry, "manifest.json"), JSON.stringify(manifest));

    _resetMemoryCacheForTests();
    const again = await compile(wanted, { cacheDir, cxxflags: CXXFLAGS, tuning: false });
    expect(again.library.mods.key).toBe(first.library.mods.key);
    expect(again.library.mods.fromCache).toBe("compiled");
    expect(again.library.engine.fromCache).toBe("disk");
    expect((await readFile(again.library.mods.soPath)).includes(first.library.engineHash)).toBe(true);
  });
});

// Loaded libraries are found in /proc/<pid>/maps.
describe.skipIf(process.platform !== "linux")("cache prune and the split", () => {
  beforeAll(async () => {
    await cleanup();
    ({ dir: cacheDir, cleanup } = await freshDir("split-prune"));
  });

  it("keeps the engine of a mod library that a live process has loaded, though only the mod library is mapped", async () => {
    // Built as compile() builds them, but never loaded here: only the holder maps the mod library.
    const graph = parseSpec(spec("float32", "score * 2"));
    const engineSource = renderEngine(graph);
    const engineHash = engineSourceHash(engineSource);
    const modsSource = renderModLibrary(graph, renderModsCode(graph), engineHash);
    const engine = await compileSource(engineSource.cpp, { cacheDir, cxxflags: CXXFLAGS, header: engineSource.header, prelude: engineSource.prelude });
    const mods = await compileSource(modsSource.cpp, { cacheDir, cxxflags: CXXFLAGS, header: modsSource.header, prelude: modsSource.prelude, requires: [engineHash] });
    const holder = execa(process.execPath, ["-e", "require('koffi').load(process.argv[1]); console.log('loaded'); setInterval(() => {}, 1000);", mods.soPath], { cwd: repoRoot });
    try {
      await new Promise<void>((resolve, reject) => {
        holder.stdout!.on("data", (chunk: Buffer) => chunk.toString().includes("loaded") && resolve());
        holder.catch(reject);
      });
      let stdout = "";
      vi.stubEnv("MINDUCTOR_CACHE_DIR", cacheDir);
      expect(await main(["node", "minductor", "cache", "prune", "--max-size", "0"], { out: (s) => void (stdout += s), err: () => {}, interactive: false })).toBe(0);
      const left = (await listCache(cacheDir)).map((e) => e.key).sort();
      expect(left).toEqual([engine.key, mods.key].sort());
      // The precompiled prelude goes first: it is rebuilt in a second when next needed.
      expect(await readdir(join(cacheDir, "pch"))).toEqual([]);
      expect(stdout).toMatch(new RegExp(`kept +${engine.key} .*engine of mod library ${mods.key.slice(0, 12)}, loaded by live process ${holder.pid}`));
    } finally {
      holder.kill("SIGKILL");
      await holder.catch(() => undefined);
    }
    // Once the holder is gone, both may go.
    expect(await main(["node", "minductor", "cache", "prune", "--max-size", "0"], { out: () => {}, err: () => {}, interactive: false })).toBe(0);
    expect(await listCache(cacheDir)).toEqual([]);
  });
});
