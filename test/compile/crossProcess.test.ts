import { readFile, readdir, rm, stat } from "node:fs/promises";
import { join } from "node:path";
import { execa } from "execa";
import { afterAll, afterEach, beforeAll, beforeEach, describe, expect, it } from "vitest";
import { type CompiledLibrary, _resetMemoryCacheForTests, clearCache, compileSource, listCache } from "../../src/compile/index.js";
import { answerSource, buildCompileStageForChildren, callAnswer, freshDir, writeCompilerWrapper } from "./helpers.js";

/*
 * Other processes run the compile stage as plain JavaScript, built once from the current sources
 * (buildCompileStageForChildren).
 */
let buildDir: string;
let moduleUrl: string;

beforeAll(async () => {
  ({ buildDir, moduleUrl } = await buildCompileStageForChildren("compile-test"));
});
afterAll(() => rm(buildDir, { recursive: true, force: true }));

let root: string;
let cacheDir: string;
let cxx: string;
let cleanup: () => Promise<void>;
beforeEach(async () => {
  ({ dir: root, cleanup } = await freshDir("procs"));
  cacheDir = join(root, "cache");
  cxx = await writeCompilerWrapper(root);
  _resetMemoryCacheForTests();
});
afterEach(() => cleanup());

function child(source: string, env: Record<string, string> = {}, prelude?: { name: string; text: string }) {
  return execa(process.execPath, [join(buildDir, "child.mjs"), moduleUrl, cacheDir, cxx, source, ...(prelude ? [JSON.stringify(prelude)] : [])], { env });
}

async function builds(countFile: string): Promise<number> {
  const text = await readFile(countFile, "utf8").catch(() => "");
  return text.split("\n").filter(Boolean).length;
}

async function waitForFile(path: string, timeoutMs: number): Promise<string> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const text = await readFile(path, "utf8").catch(() => undefined);
    if (text?.trim()) return text.trim();
    if (Date.now() > deadline) throw new Error(`${path} did not appear within ${timeoutMs} ms`);
    await new Promise((resolve) => setTimeout(resolve, 20));
  }
}

describe("the disk cache across processes", () => {
  it("serves another process's build from disk", async () => {
    const countFile = join(root, "count");
    const parent = await compileSource(answerSource(41), { cacheDir, cxx });
    const result = await child(answerSource(41), { MD_TEST_COUNT: countFile });
    const fromChild = JSON.parse(result.stdout) as CompiledLibrary;
    expect(parent.fromCache).toBe("compiled");
    expect(fromChild).toMatchObject({ fromCache: "disk", key: parent.key, soPath: parent.soPath });
    expect(await builds(countFile)).toBe(0);
  });

  it("builds once when two processes ask for the same kernel at the same time", async () => {
    const countFile = join(root, "count");
    // The slow build keeps the first process inside the lock while the second arrives.
    const env = { MD_TEST_COUNT: countFile, MD_TEST_SLEEP: "1" };
    const [a, b] = await Promise.all([child(answerSource(42), env), child(answerSource(42), env)]);
    const libraries = [JSON.parse(a.stdout), JSON.parse(b.stdout)] as CompiledLibrary[];
    expect(libraries.map((l) => l.fromCache).sort()).toEqual(["compiled", "disk"]);
    expect(libraries[0].soPath).toBe(libraries[1].soPath);
    expect(await builds(countFile)).toBe(1);
    expect((await listCache(cacheDir)).map((e) => e.key)).toEqual([libraries[0].key]);
    expect(await readdir(join(cacheDir, libraries[0].key.slice(0, 2)))).toEqual([libraries[0].key]);
    expect(await readdir(join(cacheDir, "tmp"))).toEqual([]);
    expect(callAnswer(libraries[0].soPath)).toBe(42);
  });

  it("precompiles a prelude once when two processes build with it at the same time", async () => {
    const countFile = join(root, "count");
    const prelude = { name: "answer_prelude.h", text: "static inline int md_prelude_answer(int x) { return x; }\n" };
    const withPrelude = (value: number) => `#include "answer_prelude.h"\nextern "C" int md_answer() { return md_prelude_answer(${value}); }\n`;
    // Two libraries of different keys build side by side (one second each), then both want the prelude's .gch: one
    // makes it while the other waits for the lock and finds it.
    const env = { MD_TEST_COUNT: countFile, MD_TEST_SLEEP: "1" };
    const [a, b] = await Promise.all([child(withPrelude(47), env, prelude), child(withPrelude(48), env, prelude)]);
    expect([JSON.parse(a.stdout).fromCache, JSON.parse(b.stdout).fromCache]).toEqual(["compiled", "compiled"]);
    expect(await builds(countFile)).toBe(3);
    expect((await readdir(join(cacheDir, "pch"))).filter((name) => /^[0-9a-f]{64}$/.test(name))).toHaveLength(1);
  });

  it("leaves nothing loadable when a build is killed, and the next run rebuilds", async () => {
    const hangFile = join(root, "hang-pid");
    const doomed = child(answerSource(43), { MD_TEST_HANG: hangFile });
    const compilerPid = Number(await waitForFile(hangFile, 30_000));
    process.kill(compilerPid, "SIGKILL");
    doomed.kill("SIGKILL");
    await doomed.catch(() => undefined);

    expect(await listCache(cacheDir)).toEqual([]);
    const abandoned = await readdir(join(cacheDir, "tmp"));
    expect(abandoned).toHaveLength(1);

    // Same compiler, flags and source: the same key, with the dead process's lock still in the way.
    const library = await compileSource(answerSource(43), { cacheDir, cxx });
    expect(library.fromCache).toBe("compiled");
    expect(callAnswer(library.soPath)).toBe(43);
    await expect(stat(`${join(cacheDir, library.key.slice(0, 2), library.key)}.lock`)).rejects.toThrow();

    expect(await clearCache(cacheDir)).toBe(1);
    expect(await readdir(join(cacheDir, "tmp"))).toEqual([]);
  });

  // A mod library's kind of entry: its source includes a prelude, precompiled into pch/ after its first build.
  it("leaves nothing loadable when a build with a prelude is killed: building, precompiling, or using the .gch", async () => {
    const prelude = { name: "answer_prelude.h", text: "static inline int md_prelude_answer(int x) { return x; }\n" };
    const withPrelude = (value: number) => `#include "answer_prelude.h"\nextern "C" int md_answer() { return md_prelude_answer(${value}); }\n`;
    const kill = async (value: number, hangFile: string, hangOn = "") => {
      const before = (await listCache(cacheDir)).map((e) => e.key);
      const doomed = child(withPrelude(value), { MD_TEST_HANG: hangFile, MD_TEST_HANG_ON: hangOn }, prelude);
      process.kill(Number(await waitForFile(hangFile, 30_000)), "SIGKILL");
      doomed.kill("SIGKILL");
      await doomed.catch(() => undefined);
      return before;
    };
    // Published preludes: a precompilation killed while it held its lock leaves the lock (`<key>.lock`) beside them.
    const pchCount = async () => (await readdir(join(cacheDir, "pch")).catch(() => [])).filter((name) => /^[0-9a-f]{64}$/.test(name)).length;
    // No .gch yet: the library build itself dies.
    expect(await kill(44, join(root, "hang-build"))).toEqual((await listCache(cacheDir)).map((e) => e.key));
    expect(await pchCount()).toBe(0);

    // The library is built and published, then its precompilation dies: the entry is whole, no .gch is published.
    await kill(46, join(root, "hang-pch"), "c++-header");
    const published = await listCache(cacheDir);
    expect(published).toHaveLength(1);
    expect(callAnswer(join(cacheDir, published[0].key.slice(0, 2), published[0].key, "kernel.so"))).toBe(46);
    expect(await pchCount()).toBe(0);

    // Another source precompiles it; then a build that uses the .gch dies.
    const other = await compileSource(withPrelude(45), { cacheDir, cxx, prelude });
    expect(callAnswer(other.soPath)).toBe(45);
    expect(await pchCount()).toBe(1);
    const before = await kill(44, join(root, "hang-library"));
    expect((await listCache(cacheDir)).map((e) => e.key)).toEqual(before);

    _resetMemoryCacheForTests();
    const library = await compileSource(withPrelude(44), { cacheDir, cxx, prelude });
    expect(library.fromCache).toBe("compiled");
    expect(callAnswer(library.soPath)).toBe(44);
    // The entry keeps the prelude beside its source, so the source builds from there alone.
    expect(await readFile(join(library.sourcePath, "..", prelude.name), "utf8")).toBe(prelude.text);
  });
});
