import { chmod, mkdir, readFile, readdir, rm, stat, utimes, writeFile } from "node:fs/promises";
import { hostname } from "node:os";
import { dirname, join } from "node:path";
import { execa } from "execa";
import { afterAll, afterEach, beforeAll, beforeEach, describe, expect, it, vi } from "vitest";
import { pruneCache } from "../../src/compile/cacheMaintenance.js";
import {
  type CompiledLibrary,
  CompileError,
  _resetMemoryCacheForTests,
  compileSource,
  listCache,
} from "../../src/compile/index.js";
import { parseByteSize } from "../../src/cli/commands/cache.js";
import { main } from "../../src/cli/main.js";
import { compile } from "../../src/index.js";
import { answerSource, buildCompileStageForChildren, callAnswer, freshDir, writeCompilerWrapper } from "./helpers.js";
import { useFastBuilds } from "../helpers/fastBuilds.js";

// Plumbing, not arithmetic: its kernels build fast (test/helpers/fastBuilds.ts).
useFastBuilds();

/*
 * Faults the other compile tests leave out: more than two racing processes, entries altered in place (same size,
 * or swapped for another valid library), compilers that fail in odd ways, and `cache prune`.
 */
const repoRoot = join(import.meta.dirname, "..", "..");

let root: string;
let cacheDir: string;
let cleanup: () => Promise<void>;
beforeEach(async () => {
  ({ dir: root, cleanup } = await freshDir("faults"));
  cacheDir = join(root, "cache");
  _resetMemoryCacheForTests();
});
afterEach(async () => {
  vi.unstubAllEnvs();
  await cleanup();
});

/** The key's shard holds nothing but the entry (no lock, no leftovers), and no build is left in tmp/. */
async function expectOnlyEntry(library: CompiledLibrary) {
  expect(await readdir(join(cacheDir, library.key.slice(0, 2)))).toEqual([library.key]);
  expect(await readdir(join(cacheDir, "tmp"))).toEqual([]);
  expect((await listCache(cacheDir)).map((e) => e.key)).toEqual([library.key]);
}

async function expectNoEntry() {
  expect(await listCache(cacheDir)).toEqual([]);
  expect(await readdir(join(cacheDir, "tmp"))).toEqual([]);
  const shards = (await readdir(cacheDir)).filter((name) => /^[0-9a-f]{2}$/.test(name));
  for (const shard of shards) expect(await readdir(join(cacheDir, shard))).toEqual([]);
}

describe("four processes compiling the same kernel at once", () => {
  // The compile stage as plain JavaScript, built from the current sources (a stale dist/ cannot decide the test).
  let buildDir: string;
  let moduleUrl: string;
  beforeAll(async () => {
    ({ buildDir, moduleUrl } = await buildCompileStageForChildren("faults-test"));
  });
  afterAll(() => rm(buildDir, { recursive: true, force: true }));

  it("all succeed, g++ runs once, and exactly one entry is left", async () => {
    const cxx = await writeCompilerWrapper(root);
    const countFile = join(root, "count");
    // A slow build keeps the winner inside the lock while the other three arrive and wait.
    const env = { MD_TEST_COUNT: countFile, MD_TEST_SLEEP: "1" };
    const children = Array.from({ length: 4 }, () =>
      execa(process.execPath, [join(buildDir, "child.mjs"), moduleUrl, cacheDir, cxx, answerSource(61)], { env }),
    );
    const libraries = (await Promise.all(children)).map((r) => JSON.parse(r.stdout) as CompiledLibrary);
    expect(libraries.map((l) => l.fromCache).sort()).toEqual(["compiled", "disk", "disk", "disk"]);
    expect(new Set(libraries.map((l) => l.soPath)).size).toBe(1);
    const builds = (await readFile(countFile, "utf8")).split("\n").filter(Boolean);
    expect(builds).toHaveLength(1);
    await expectOnlyEntry(libraries[0]);
    expect(callAnswer(libraries[0].soPath)).toBe(61);
  });
});

describe("an entry altered in place is detected and rebuilt", () => {
  async function compileAlterRecompile(alter: (entry: string) => Promise<void>, header?: string) {
    const first = await compileSource(answerSource(5), { cacheDir, header });
    await alter(dirname(first.soPath));
    _resetMemoryCacheForTests();
    const again = await compileSource(answerSource(5), { cacheDir, header });
    expect(again.key).toBe(first.key);
    expect(again.fromCache).toBe("compiled");
    expect(callAnswer(again.soPath)).toBe(5);
    await expectOnlyEntry(again);
    // The rebuilt entry is trusted again.
    _resetMemoryCacheForTests();
    expect((await compileSource(answerSource(5), { cacheDir, header })).fromCache).toBe("disk");
    return again;
  }

  /** Rewrites a file, replacing the byte at `at` (a fraction of its length) with another: same size, new content. */
  async function flipByte(path: string, at: number) {
    const bytes = await readFile(path);
    const i = Math.floor(bytes.length * at);
    bytes[i] ^= 0x20;
    await writeFile(path, bytes);
  }

  it("one byte of the library flipped (same size)", async () => {
    await compileAlterRecompile((entry) => flipByte(join(entry, "kernel.so"), 0.5));
  });

  it("the library swapped for another valid library", async () => {
    const other = await compileSource(answerSource(7), { cacheDir });
    const again = await compileAlterRecompile(async (entry) => {
      await writeFile(join(entry, "kernel.so"), await readFile(other.soPath));
      await rm(dirname(other.soPath), { recursive: true });
    });
    expect(again.soPath).not.toBe(other.soPath);
  });

  it("the source edited without changing its size", async () => {
    const library = await compileAlterRecompile(async (entry) => {
      const source = await readFile(join(entry, "kernel.cpp"), "utf8");
      await writeFile(join(entry, "kernel.cpp"), source.replace("return 5", "return 6"));
    });
    expect(await readFile(library.sourcePath, "utf8")).toBe(answerSource(5));
  });

  it("the header edited without changing its size", async () => {
    const header = "#define MD_ANSWER_UNUSED 1\n";
    const library = await compileAlterRecompile((entry) => flipByte(join(entry, "kernel.h"), 0.1), header);
    expect(await readFile(library.headerPath!, "utf8")).toBe(header);
  });

  const manifestEdits: Array<[string, (manifest: Record<string, any>) => void]> = [
    ["claims another checksum for the library", (m) => (m.checksums["kernel.so"] = "0".repeat(64))],
    ["claims another checksum for the source", (m) => (m.checksums["kernel.cpp"] = "f".repeat(64))],
    ["has lost the library's checksum", (m) => delete m.checksums["kernel.so"]],
    ["names another key", (m) => (m.key = `${m.key.slice(0, 63)}${m.key.endsWith("0") ? "1" : "0"}`)],
    ["has another format version", (m) => (m.formatVersion += 1)],
    ["has no checksums at all", (m) => delete m.checksums],
  ];
  it.each(manifestEdits)("the manifest %s", async (_what, edit) => {
    await compileAlterRecompile(async (entry) => {
      const manifest = JSON.parse(await readFile(join(entry, "manifest.json"), "utf8"));
      edit(manifest);
      await writeFile(join(entry, "manifest.json"), JSON.stringify(manifest, null, 2));
    });
  });
});

describe("a broken compiler", () => {
  /** A compiler that answers the probes (--version, -dM -E) as g++ does and misbehaves only when building. */
  async function brokenCompiler(build: string): Promise<string> {
    const path = join(root, "broken-g++");
    await writeFile(path, `#!/bin/sh\ncase " $* " in\n  *" -o "*)\n${build}\n    ;;\nesac\nexec g++ "$@"\n`);
    await chmod(path, 0o755);
    return path;
  }

  async function expectCompileError(cxx: string): Promise<CompileError> {
    const error = await compileSource(answerSource(71), { cacheDir, cxx }).catch((e: unknown) => e);
    expect(error).toBeInstanceOf(CompileError);
    await expectNoEntry();
    return error as CompileError;
  }

  it("that exits 1 gives a CompileError with its status and stderr, and leaves no entry", async () => {
    const cxx = await brokenCompiler("    echo 'internal compiler error: out of cheese' >&2; exit 1");
    const error = await expectCompileError(cxx);
    expect(error.exitCode).toBe(1);
    expect(error.stderr).toContain("out of cheese");
    expect(error.message).toContain("exited with status 1");
    expect(error.message).toContain("out of cheese");
    expect(await readFile(error.sourcePath, "utf8")).toBe(answerSource(71));
  });

  it("that crashes on a signal gives a CompileError and leaves no entry", async () => {
    const cxx = await brokenCompiler("    echo 'about to crash' > kernel.so; kill -SEGV $$");
    const error = await expectCompileError(cxx);
    expect(error.message).toContain(cxx);
  });

  it("that exits 0 without writing a library gives a CompileError and leaves no entry", async () => {
    const error = await expectCompileError(await brokenCompiler("    exit 0"));
    expect(error.message).toContain("wrote no kernel.so");
  });

  // Garbage published under the key would make every later compile of the same kernel fail to load it.
  it("that exits 0 after writing garbage gives a clear error and leaves no entry", async () => {
    const cxx = await brokenCompiler("    printf 'this is not a shared library\\n' > kernel.so; exit 0");
    const spec = {
      name: "garbage",
      query: { shape: [1, 1, 16, 16], dtype: "float32" },
      key: { shape: [1, 1, 16, 16], dtype: "float32" },
      value: { shape: [1, 1, 16, 16], dtype: "float32" },
    };
    const error = await compile(spec, { cacheDir, cxx }).catch((e: unknown) => e);
    expect(error).toBeInstanceOf(Error);
    expect((error as Error).message).toMatch(/kernel\.so/);
    await expectNoEntry();
  });
});

describe("cache prune", () => {
  let stdout: string;
  let stderr: string;
  const io = { out: (s: string) => void (stdout += s), err: (s: string) => void (stderr += s), interactive: false };
  async function prune(...args: string[]): Promise<number> {
    stdout = "";
    stderr = "";
    vi.stubEnv("MINDUCTOR_CACHE_DIR", cacheDir);
    return main(["node", "minductor", "cache", "prune", ...args], io);
  }

  /** Compiles one entry per value and dates each: published at `published[i]`, its library last read at `read[i]`. */
  async function entries(published: number[], read: number[] = published): Promise<CompiledLibrary[]> {
    const libraries: CompiledLibrary[] = [];
    for (const [i, minutesAgo] of published.entries()) {
      const library = await compileSource(answerSource(100 + i), { cacheDir });
      const entry = dirname(library.soPath);
      const publishedAt = new Date(Date.now() - minutesAgo * 60_000);
      for (const file of await readdir(entry)) await utimes(join(entry, file), publishedAt, publishedAt);
      const readAt = new Date(Date.now() - read[i] * 60_000);
      await utimes(library.soPath, readAt, publishedAt);
      libraries.push(library);
    }
    return libraries;
  }
  const sizeOf = async (keys: string[]) =>
    (await listCache(cacheDir)).filter((e) => keys.includes(e.key)).reduce((sum, e) => sum + e.bytes, 0);
  const keysLeft = async () => (await listCache(cacheDir)).map((e) => e.key).sort();

  it("removes least-recently-used entries until the cache fits, and prints them", async () => {
    const [a, b, c, d] = await entries([40, 30, 20, 10]);
    expect(await prune("--max-size", String(await sizeOf([c.key, d.key])))).toBe(0);
    expect(await keysLeft()).toEqual([c.key, d.key].sort());
    const removedLines = stdout.split("\n").filter((line) => line.startsWith("removed "));
    expect(removedLines[0]).toContain(a.key);
    expect(removedLines[1]).toContain(b.key);
    expect(stdout).toMatch(/removed 2 cached kernel\(s\)/);
    expect(stdout).toContain(cacheDir);
    expect(stderr).toBe("");
    expect(await readdir(join(cacheDir, "tmp"))).toEqual([]);
  });

  it("counts a recent read of the library as use, not only the publication", async () => {
    // a was published first but read a minute ago; b was published later and never read since.
    const [a, b] = await entries([30, 20], [1, 20]);
    expect(await prune("--max-size", String(await sizeOf([a.key])))).toBe(0);
    expect(await keysLeft()).toEqual([a.key]);
    expect(stdout).toContain(`removed ${b.key}`);
  });

  it("removes nothing when the cache already fits", async () => {
    await entries([3, 2, 1]);
    const before = await keysLeft();
    expect(await prune("--max-size", "10M")).toBe(0);
    expect(await keysLeft()).toEqual(before);
    expect(stdout).toMatch(/removed 0 cached kernel\(s\)/);
  });

  it("keeps an entry whose key a live process has locked", async () => {
    const [a, b, c] = await entries([30, 20, 10]);
    const lock = `${dirname(a.soPath)}.lock`;
    await mkdir(lock);
    await writeFile(join(lock, "owner.json"), JSON.stringify({ pid: process.pid, hostname: hostname(), token: "test" }));
    expect(await prune("--max-size", String(await sizeOf([a.key, c.key])))).toBe(0);
    expect(await keysLeft()).toEqual([a.key, c.key].sort());
    expect(stdout).toMatch(new RegExp(`kept +${a.key} .*locked by a live process`));
    expect(stdout).toContain(`removed ${b.key}`);
    // Not ours to remove either.
    expect((await stat(lock)).isDirectory()).toBe(true);
  });

  // Loaded libraries are found in /proc/<pid>/maps.
  it.skipIf(process.platform !== "linux")("keeps an entry whose library a live process has loaded, and removes it once that process is gone", async () => {
    const [a, b] = await entries([20, 10]);
    const holder = execa(
      process.execPath,
      ["-e", "require('koffi').load(process.argv[1]); console.log('loaded'); setInterval(() => {}, 1000);", a.soPath],
      { cwd: repoRoot },
    );
    try {
      await new Promise<void>((resolve, reject) => {
        holder.stdout!.on("data", (chunk: Buffer) => chunk.toString().includes("loaded") && resolve());
        holder.catch(reject);
      });
      expect(await prune("--max-size", "0")).toBe(0);
      expect(await keysLeft()).toEqual([a.key]);
      expect(stdout).toMatch(new RegExp(`kept +${a.key} .*loaded by live process ${holder.pid}`));
      expect(stdout).toContain(`removed ${b.key}`);
      expect(stderr).toMatch(/still over --max-size/);
    } finally {
      holder.kill("SIGKILL");
      await holder.catch(() => undefined);
    }
    expect(await prune("--max-size", "0")).toBe(0);
    expect(await keysLeft()).toEqual([]);
  });

  it("prints JSON with --json", async () => {
    const [a, b] = await entries([20, 10]);
    expect(await prune("--max-size", "1", "--json")).toBe(0);
    const result = JSON.parse(stdout);
    expect(result.removed.map((e: { key: string }) => e.key)).toEqual([a.key, b.key]);
    expect(result).toMatchObject({ maxBytes: 1, bytesAfter: 0, kept: [] });
    expect(result.bytesBefore).toBe(result.removed[0].bytes + result.removed[1].bytes);
  });

  it.each([["abc"], ["10X"], ["-1"], [""], ["1.5.3"], ["1e6"], ["10 M B"], ["M"], ["99999999999G"]])(
    "rejects --max-size %j with exit 1",
    async (size) => {
      await entries([1]);
      expect(await prune("--max-size", size)).toBe(1);
      expect(stderr).toContain("--max-size");
      expect(await listCache(cacheDir)).toHaveLength(1);
    },
  );

  it("requires --max-size", async () => {
    expect(await prune()).toBe(1);
    expect(stderr).toContain("--max-size");
  });

  it("refuses a negative or fractional size in the API", async () => {
    await expect(pruneCache(-1, cacheDir)).rejects.toThrow(RangeError);
    await expect(pruneCache(1.5, cacheDir)).rejects.toThrow(/maxBytes/);
  });
});

describe("parseByteSize", () => {
  it.each([
    ["0", 0],
    ["512", 512],
    ["512B", 512],
    ["800K", 800 * 1024],
    ["10M", 10 * 1024 ** 2],
    ["10m", 10 * 1024 ** 2],
    ["10MiB", 10 * 1024 ** 2],
    ["10MB", 10 * 1024 ** 2],
    [" 2G ", 2 * 1024 ** 3],
    ["1.5K", 1536],
    ["0.5M", 512 * 1024],
  ])("reads %j as %i bytes", (text, bytes) => {
    expect(parseByteSize(text)).toBe(bytes);
  });
});
