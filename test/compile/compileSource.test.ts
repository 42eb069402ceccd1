import { appendFile, chmod, readFile, readdir, rm, stat, truncate, writeFile } from "node:fs/promises";
import { dirname, join } from "node:path";
import { execa } from "execa";
import { afterEach, beforeEach, describe, expect, it } from "vitest";
import {
  type CompileProgressEvent,
  CompileError,
  CompilerNotFoundError,
  _resetMemoryCacheForTests,
  clearCache,
  compileSource,
  listCache,
} from "../../src/compile/index.js";
import { ANSWER_SOURCE, answerSource, callAnswer, expectedLinkerFlags, freshDir } from "./helpers.js";

let cacheDir: string;
let cleanup: () => Promise<void>;

beforeEach(async () => {
  ({ dir: cacheDir, cleanup } = await freshDir("compile"));
  _resetMemoryCacheForTests();
});
afterEach(() => cleanup());

describe("compileSource", () => {
  it("compiles a source into a library that loads and runs", async () => {
    const events: CompileProgressEvent["phase"][] = [];
    const library = await compileSource(ANSWER_SOURCE, { cacheDir, onProgress: (e) => events.push(e.phase) });
    expect(library.fromCache).toBe("compiled");
    expect(library.key).toMatch(/^[0-9a-f]{64}$/);
    expect(library.soPath).toBe(join(cacheDir, library.key.slice(0, 2), library.key, "kernel.so"));
    expect(await readFile(library.sourcePath, "utf8")).toBe(ANSWER_SOURCE);
    expect(library.headerPath).toBeUndefined();
    expect(callAnswer(library.soPath)).toBe(42);
    expect(events).toEqual(["compiling", "done"]);
  });

  it("answers a repeat call from memory, then from disk once memory is forgotten", async () => {
    const first = await compileSource(ANSWER_SOURCE, { cacheDir });
    const events: CompileProgressEvent["phase"][] = [];
    const second = await compileSource(ANSWER_SOURCE, { cacheDir, onProgress: (e) => events.push(e.phase) });
    expect(second).toMatchObject({ fromCache: "memory", key: first.key, soPath: first.soPath });
    expect(events).toEqual(["cache-hit-memory", "done"]);

    _resetMemoryCacheForTests();
    events.length = 0;
    const third = await compileSource(ANSWER_SOURCE, { cacheDir, onProgress: (e) => events.push(e.phase) });
    expect(third).toMatchObject({ fromCache: "disk", key: first.key, soPath: first.soPath });
    expect(events).toEqual(["cache-hit-disk", "done"]);
    expect(callAnswer(third.soPath)).toBe(42);
  });

  it("shares one build between concurrent calls in a process", async () => {
    const [a, b] = await Promise.all([compileSource(answerSource(7), { cacheDir }), compileSource(answerSource(7), { cacheDir })]);
    expect([a.fromCache, b.fromCache].sort()).toEqual(["compiled", "memory"]);
    expect(await listCache(cacheDir)).toHaveLength(1);
  });

  it("keys by source, flags and header", async () => {
    const base = await compileSource(answerSource(1), { cacheDir });
    const otherSource = await compileSource(answerSource(2), { cacheDir });
    const otherFlags = await compileSource(answerSource(1), { cacheDir, cxxflags: ["-O1", "-shared", "-fPIC"] });
    const withHeader = await compileSource(answerSource(1), { cacheDir, header: "int md_answer(void);\n" });
    const keys = new Set([base.key, otherSource.key, otherFlags.key, withHeader.key]);
    expect(keys.size).toBe(4);
    expect(callAnswer(otherFlags.soPath)).toBe(1);
    expect(withHeader.headerPath).toBe(join(dirname(withHeader.soPath), "kernel.h"));
    expect(await readFile(withHeader.headerPath!, "utf8")).toBe("int md_answer(void);\n");
  });

  it("compiles a source that includes the header written beside it", async () => {
    const header = "#define MD_ANSWER 99\n";
    const source = '#include "kernel.h"\nextern "C" int md_answer() { return MD_ANSWER; }\n';
    const library = await compileSource(source, { cacheDir, header });
    expect(callAnswer(library.soPath)).toBe(99);
  });

  it("writes a manifest with the argv and the checksums", async () => {
    const library = await compileSource(ANSWER_SOURCE, { cacheDir, cxxflags: ["-O2", "-shared", "-fPIC"] });
    const manifest = JSON.parse(await readFile(join(dirname(library.soPath), "manifest.json"), "utf8"));
    expect(manifest.key).toBe(library.key);
    expect(manifest.argv).toEqual(["g++", "-O2", "-shared", "-fPIC", ...expectedLinkerFlags(), "-o", "kernel.so", "kernel.cpp"]);
    expect(Object.keys(manifest.checksums).sort()).toEqual(["kernel.cpp", "kernel.so"]);
    expect(manifest.compilerVersion).toMatch(/\d+\.\d+/);
  });

  it("links with the fastest linker the compiler can use, and keeps one the flags name", async () => {
    const [linker] = expectedLinkerFlags();
    const fast = await compileSource(answerSource(81), { cacheDir, cxxflags: ["-O2", "-shared", "-fPIC"] });
    expect(callAnswer(fast.soPath)).toBe(81);
    // gold marks what it links with a note section of its own; GNU ld does not
    const notes = async (so: string) => (await execa("readelf", ["-W", "-S", so])).stdout;
    if (linker === "-fuse-ld=gold") expect(await notes(fast.soPath)).toContain(".note.gnu.gold-version");

    const named = await compileSource(answerSource(82), { cacheDir, cxxflags: ["-O2", "-shared", "-fPIC", "-fuse-ld=bfd"] });
    expect(JSON.parse(await readFile(join(dirname(named.soPath), "manifest.json"), "utf8")).argv).toEqual(["g++", "-O2", "-shared", "-fPIC", "-fuse-ld=bfd", "-o", "kernel.so", "kernel.cpp"]);
    expect(await notes(named.soPath)).not.toContain("gold");
    expect(callAnswer(named.soPath)).toBe(82);

    // A compiler that knows no other linker builds with its own default
    const cxx = join(cacheDir, "g++-ld-only");
    await writeFile(cxx, `#!/bin/sh\ncase " $* " in *" -fuse-ld="*) echo "unrecognized linker" >&2; exit 1 ;; esac\nexec g++ "$@"\n`);
    await chmod(cxx, 0o755);
    const plain = await compileSource(answerSource(83), { cacheDir, cxx, cxxflags: ["-O2", "-shared", "-fPIC"] });
    expect(JSON.parse(await readFile(join(dirname(plain.soPath), "manifest.json"), "utf8")).argv).toEqual([cxx, "-O2", "-shared", "-fPIC", "-o", "kernel.so", "kernel.cpp"]);
    expect(callAnswer(plain.soPath)).toBe(83);
  });

  it("leaves no temp build or lock behind", async () => {
    const library = await compileSource(ANSWER_SOURCE, { cacheDir });
    expect(await readdir(join(cacheDir, "tmp"))).toEqual([]);
    expect(await readdir(join(cacheDir, library.key.slice(0, 2)))).toEqual([library.key]);
  });
});

describe("compileSource on a damaged cache", () => {
  async function compileTwiceDamaging(damage: (entry: string) => Promise<void>) {
    const first = await compileSource(answerSource(5), { cacheDir });
    await damage(dirname(first.soPath));
    _resetMemoryCacheForTests();
    return compileSource(answerSource(5), { cacheDir });
  }

  it("rebuilds a truncated library", async () => {
    const rebuilt = await compileTwiceDamaging(async (entry) => {
      const size = (await stat(join(entry, "kernel.so"))).size;
      await truncate(join(entry, "kernel.so"), Math.floor(size / 2));
    });
    expect(rebuilt.fromCache).toBe("compiled");
    expect(callAnswer(rebuilt.soPath)).toBe(5);
    expect(await readdir(join(cacheDir, "tmp"))).toEqual([]);
  });

  it("rebuilds when the kept source was altered", async () => {
    const rebuilt = await compileTwiceDamaging((entry) => appendFile(join(entry, "kernel.cpp"), "// edited\n"));
    expect(rebuilt.fromCache).toBe("compiled");
    expect(await readFile(rebuilt.sourcePath, "utf8")).toBe(answerSource(5));
  });

  it("does not count an entry without a manifest", async () => {
    const rebuilt = await compileTwiceDamaging((entry) => rm(join(entry, "manifest.json")));
    expect(rebuilt.fromCache).toBe("compiled");
    expect(callAnswer(rebuilt.soPath)).toBe(5);
  });

  it("does not trust a manifest that is not JSON", async () => {
    const rebuilt = await compileTwiceDamaging((entry) => writeFile(join(entry, "manifest.json"), "{"));
    expect(rebuilt.fromCache).toBe("compiled");
  });

  it("rebuilds a library removed behind the memory cache", async () => {
    const first = await compileSource(answerSource(6), { cacheDir });
    await clearCache(cacheDir);
    const again = await compileSource(answerSource(6), { cacheDir });
    expect(again.fromCache).toBe("compiled");
    expect(again.soPath).toBe(first.soPath);
    expect(callAnswer(again.soPath)).toBe(6);
  });
});

describe("compileSource errors", () => {
  it("throws CompileError with the compiler's stderr and the kept source", async () => {
    const broken = 'extern "C" int md_answer() { return undeclared_name; }\n';
    const error = await compileSource(broken, { cacheDir }).catch((e: unknown) => e);
    expect(error).toBeInstanceOf(CompileError);
    const compileError = error as CompileError;
    expect(compileError.stderr).toContain("undeclared_name");
    expect(compileError.sourcePath.startsWith(join(cacheDir, "failed"))).toBe(true);
    expect(compileError.sourcePath).toMatch(/[0-9a-f]{64}\.cpp$/);
    expect(await readFile(compileError.sourcePath, "utf8")).toBe(broken);
    expect(compileError.message).toContain(compileError.sourcePath);
    expect(await listCache(cacheDir)).toEqual([]);
    expect(await readdir(join(cacheDir, "tmp"))).toEqual([]);
  });

  it("does not remember a failure: a later call runs the compiler again", async () => {
    const broken = "this is not C++\n";
    const first = await compileSource(broken, { cacheDir }).catch((e: unknown) => e);
    const second = await compileSource(broken, { cacheDir }).catch((e: unknown) => e);
    expect(first).toBeInstanceOf(CompileError);
    expect(second).toBeInstanceOf(CompileError);
    expect(second).not.toBe(first);
  });

  it("throws CompilerNotFoundError naming the fix when the compiler is missing", async () => {
    const error = await compileSource(ANSWER_SOURCE, { cacheDir, cxx: "no-such-g++" }).catch((e: unknown) => e);
    expect(error).toBeInstanceOf(CompilerNotFoundError);
    expect((error as Error).message).toContain("no-such-g++");
    expect((error as Error).message).toContain("apt-get install g++");
    expect((error as Error).message).toContain("MINDUCTOR_CXX");
  });
});

describe("listCache and clearCache", () => {
  it("lists published entries with their size and removes them all", async () => {
    const a = await compileSource(answerSource(10), { cacheDir });
    const b = await compileSource(answerSource(11), { cacheDir });
    await compileSource("not C++ at all\n", { cacheDir }).catch(() => undefined);
    const listed = await listCache(cacheDir);
    expect(listed.map((e) => e.key).sort()).toEqual([a.key, b.key].sort());
    for (const entry of listed) {
      expect(entry.bytes).toBeGreaterThan((await stat(a.soPath)).size);
      expect(entry.mtime).toBeInstanceOf(Date);
    }
    expect(await clearCache(cacheDir)).toBe(2);
    expect(await listCache(cacheDir)).toEqual([]);
    await expect(stat(join(cacheDir, "failed"))).rejects.toThrow();
  });

  it("treats a missing cache dir as empty", async () => {
    expect(await listCache(join(cacheDir, "nothing-here"))).toEqual([]);
    expect(await clearCache(join(cacheDir, "nothing-here"))).toBe(0);
  });
});
