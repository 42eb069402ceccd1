/**
 * The kernel index (src/compile/kernelIndex.ts): a cache hit that renders nothing, and a record that is only ever a
 * pointer: one that points at an altered, missing or foreign entry, or that is malformed, is a miss, after which the
 * kernel is rendered, rebuilt where needed and recorded again. Fast builds (test/helpers/fastBuilds.ts): what is
 * tested does not depend on the optimisation level.
 */
import { readdirSync, readFileSync, utimesSync } from "node:fs";
import { appendFile, mkdir, readdir, readFile, rm, writeFile } from "node:fs/promises";
import { dirname, join, resolve } from "node:path";
import { afterAll, beforeAll, beforeEach, describe, expect, it, vi } from "vitest";
import * as renderKernel from "../../src/codegen/renderKernel.js";
import { filesIdentity, rendererFiles, rendererIdentity } from "../../src/codegen/rendererIdentity.js";
import { templatesDir } from "../../src/codegen/templatesDir.js";
import { _resetMemoryCacheForTests, clearCache } from "../../src/compile/index.js";
import { indexRoot } from "../../src/compile/kernelIndex.js";
import { compile } from "../../src/index.js";
import { generateInputs } from "../../src/io/generateInputs.js";
import type { Kernel } from "../../src/kernel.js";
import { compareOutputs, TOLERANCE } from "../../src/reference/compareOutputs.js";
import { referenceAttention } from "../../src/reference/referenceAttention.js";
import { toFloat64 } from "../../src/runtime/tensor.js";
import { FAST_BUILD_CXXFLAGS } from "../helpers/fastBuilds.js";
import { freshDir } from "./helpers.js";

// Counts the renders of kernelLibrary.ts (the same module instance), rendering as before.
vi.mock("../../src/codegen/renderKernel.js", async (importOriginal) => {
  const original = await importOriginal<typeof renderKernel>();
  return { ...original, renderEngine: vi.fn(original.renderEngine), renderModLibrary: vi.fn(original.renderModLibrary) };
});
const renders = () => vi.mocked(renderKernel.renderEngine).mock.calls.length + vi.mocked(renderKernel.renderModLibrary).mock.calls.length;

const spec = (scoreMod: string) => ({
  name: "kernel_index",
  query: { shape: [1, 2, 20, 16], dtype: "float32" },
  key: { shape: [1, 1, 20, 16], dtype: "float32" },
  value: { shape: [1, 1, 20, 16], dtype: "float32" },
  scoreMod,
  maskMod: "q_idx >= kv_idx",
});

let cacheDir: string;
let cleanup: () => Promise<void>;
beforeAll(async () => {
  ({ dir: cacheDir, cleanup } = await freshDir("kernel-index"));
});
beforeEach(() => {
  _resetMemoryCacheForTests();
  vi.mocked(renderKernel.renderEngine).mockClear();
  vi.mocked(renderKernel.renderModLibrary).mockClear();
});
afterAll(() => cleanup());

const build = (scoreMod: string) => compile(spec(scoreMod), { cacheDir, cxxflags: FAST_BUILD_CXXFLAGS, tuning: false });

function expectMatchesReference(kernel: Kernel): void {
  const inputs = generateInputs(kernel.graph, 5);
  const result = compareOutputs(toFloat64(kernel.run(inputs).out), referenceAttention(kernel.graph, inputs).out, TOLERANCE.float32);
  expect(result.ok, JSON.stringify(result.firstFailure)).toBe(true);
}

async function records(): Promise<string[]> {
  const found: string[] = [];
  for (const shard of await readdir(indexRoot(cacheDir)).catch(() => [])) {
    for (const name of await readdir(join(indexRoot(cacheDir), shard))) found.push(join(indexRoot(cacheDir), shard, name));
  }
  return found;
}

/** The record of a kernel: the one that names its mod library's entry. */
async function recordOf(kernel: Kernel): Promise<string> {
  for (const path of await records()) if ((await readFile(path, "utf8")).includes(kernel.library.mods.key)) return path;
  throw new Error(`no index record names ${kernel.library.mods.key}`);
}

describe("the kernel index", () => {
  it("a process that has not rendered a kernel finds its two libraries without rendering, and a repeat reads nothing", async () => {
    const first = await build("score * 0.5");
    expect(first.library.fromCache).toBe("compiled");
    expect(renders()).toBe(2);
    await recordOf(first);

    _resetMemoryCacheForTests();
    const again = await build("score * 0.5");
    expect(renders()).toBe(2);
    expect(again.library.fromCache).toBe("disk");
    expect([again.library.engine.soPath, again.library.mods.soPath]).toEqual([first.library.engine.soPath, first.library.mods.soPath]);
    expect(again.library.engineHash).toBe(first.library.engineHash);
    expectMatchesReference(again);

    const repeat = await build("score * 0.5");
    expect(repeat.library.fromCache).toBe("memory");
    expect(renders()).toBe(2);
    // the source is still there to read, rendered when asked for
    expect(repeat.source).toContain("md_abi_version");
  });

  it("a record is per graph: another mod of the same configuration renders, shares the engine and gets its own record", async () => {
    const a = await build("score * 0.5");
    const before = renders();
    const b = await build("score * 0.25");
    expect(renders()).toBe(before + 2);
    expect(b.library.engine.key).toBe(a.library.engine.key);
    expect(await recordOf(b)).not.toBe(await recordOf(a));
  });

  it("a record that points at an altered mod library is a miss: rendered, rebuilt and recorded again", async () => {
    const first = await build("score * 0.125");
    await appendFile(first.library.mods.soPath, "x");
    _resetMemoryCacheForTests();
    const rebuilt = await build("score * 0.125");
    expect(renders()).toBe(4);
    expect(rebuilt.library.mods.fromCache).toBe("compiled");
    expect(rebuilt.library.engine.fromCache).toBe("disk");
    expectMatchesReference(rebuilt);
    _resetMemoryCacheForTests();
    expect((await build("score * 0.125")).library.fromCache).toBe("disk");
    expect(renders()).toBe(4);
  });

  it("a record that points at a removed engine is a miss: the engine is built again", async () => {
    const first = await build("score * 2");
    // every kernel of this file has this engine: put it back for the tests after
    await rm(dirname(first.library.engine.soPath), { recursive: true });
    _resetMemoryCacheForTests();
    const rebuilt = await build("score * 2");
    expect(rebuilt.library.engine.fromCache).toBe("compiled");
    expect(renders()).toBe(4);
    expectMatchesReference(rebuilt);
  });

  it("a malformed record, or one whose mod library is of another engine, is a miss and is replaced", async () => {
    const a = await build("score * 3");
    const b = await build("score * 4");
    expect(b.library.engineHash).toBe(a.library.engineHash);
    const path = await recordOf(a);
    const good = await readFile(path, "utf8");
    const other = JSON.parse(await readFile(await recordOf(b), "utf8")) as { engineHash: string; mods: { requires: string[] } };
    const forgeries = [
      "{ not json",
      JSON.stringify({ ...JSON.parse(good), format: 99 }),
      // a mod library that requires another engine than the record's
      JSON.stringify({ ...JSON.parse(good), mods: { ...other.mods, requires: ["1".repeat(64)] } }),
      // an engine hash that is not the identity of the engine entry's files
      JSON.stringify({ ...JSON.parse(good), engineHash: "0".repeat(64) }),
      // a file name that leaves the entry
      good.replace('"kernel.h"', '"../kernel.h"'),
    ];
    for (const forged of forgeries) {
      await writeFile(path, forged);
      _resetMemoryCacheForTests();
      const before = renders();
      const kernel = await build("score * 3");
      expect(kernel.library.mods.key).toBe(a.library.mods.key);
      expect(renders()).toBe(before + 2);
      expectMatchesReference(kernel);
      expect(JSON.parse(await readFile(path, "utf8"))).toEqual(JSON.parse(good));
    }
  });

  it("clearCache removes the index with the entries", async () => {
    await build("score * 5");
    expect((await records()).length).toBeGreaterThan(0);
    await clearCache(cacheDir);
    expect(await records()).toEqual([]);
  });
});

describe("the renderer's identity", () => {
  it("covers every module the renderers import, and the templates", () => {
    const covered = new Set(rendererFiles());
    const srcRoot = resolve(import.meta.dirname, "..", "..", "src");
    const seen = new Set<string>();
    const visit = (file: string) => {
      if (seen.has(file)) return;
      seen.add(file);
      expect(covered, `${file} is imported by the renderers but is not part of rendererIdentity()`).toContain(file);
      for (const [, spec] of readFileSync(file, "utf8").matchAll(/^(?:import|export)[^;]*?from "(\.[^"]+)";/gms)) {
        visit(resolve(dirname(file), spec.replace(/\.js$/, ".ts")));
      }
    };
    // kernelLibrary.ts itself is covered; what it imports besides the renderers builds and loads, renders nothing
    expect(covered).toContain(join(srcRoot, "kernelLibrary.ts"));
    for (const entry of ["codegen/renderKernel.ts", "codegen/renderMods.ts"]) visit(join(srcRoot, entry));
    for (const name of readdirSync(templatesDir())) expect(covered).toContain(join(templatesDir(), name));
    expect(seen.size).toBeGreaterThan(5);
  });

  it("tells a file apart by its size and modification time, as an edit changes them", async () => {
    const dir = join(cacheDir, "identity");
    await mkdir(dir, { recursive: true });
    const file = join(dir, "template.njk");
    await writeFile(file, "{{ a }}");
    utimesSync(file, 1_000_000, 1_000_000);
    const before = filesIdentity([file], dir);
    expect(before).toEqual([["/template.njk", 7, 1_000_000_000]]);
    utimesSync(file, 1_000_000, 1_000_001);
    expect(filesIdentity([file], dir)).not.toEqual(before);
    await writeFile(file, "{{ ab }}");
    utimesSync(file, 1_000_000, 1_000_000);
    expect(filesIdentity([file], dir)).not.toEqual(before);
    // what rendererIdentity() is made of
    expect(rendererIdentity()).toContain(JSON.stringify(filesIdentity([join(templatesDir(), "flash_decoding.cpp.njk")], resolve(templatesDir(), "..", ".."))[0]));
  });
});
