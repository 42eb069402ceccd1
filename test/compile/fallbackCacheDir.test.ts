import { chmod, mkdir, readdir, writeFile } from "node:fs/promises";
import { join } from "node:path";
import { afterEach, beforeEach, describe, expect, it, vi } from "vitest";
import { CACHE_FALLBACK_WARNING_CODE, _resetMemoryCacheForTests, compileSource } from "../../src/compile/index.js";
import { answerSource, callAnswer, freshDir } from "./helpers.js";

let root: string;
let cleanup: () => Promise<void>;
let warnings: Error[];
const onWarning = (warning: Error) => {
  if ((warning as Error & { code?: string }).code === CACHE_FALLBACK_WARNING_CODE) warnings.push(warning);
};

beforeEach(async () => {
  ({ dir: root, cleanup } = await freshDir("fallback"));
  // The fallback lives under os.tmpdir(), which follows TMPDIR: point it into this test's own dir.
  await mkdir(join(root, "os-tmp"));
  vi.stubEnv("TMPDIR", join(root, "os-tmp"));
  _resetMemoryCacheForTests();
  warnings = [];
  process.on("warning", onWarning);
});
afterEach(async () => {
  process.off("warning", onWarning);
  vi.unstubAllEnvs();
  _resetMemoryCacheForTests();
  await cleanup();
});

/** Warnings are emitted on a later tick. */
const settle = () => new Promise((resolve) => setImmediate(resolve));

describe("an unusable cache dir", () => {
  it("falls back to a private temp dir with one warning per process", async () => {
    await writeFile(join(root, "a-file"), "");
    const unusable = join(root, "a-file", "cache"); // cannot be created, even by root
    const first = await compileSource(answerSource(21), { cacheDir: unusable });
    const second = await compileSource(answerSource(22), { cacheDir: unusable });
    await settle();

    const fallback = join(root, "os-tmp", `minductor-cache-${process.getuid?.() ?? "user"}`);
    expect(first.soPath.startsWith(fallback)).toBe(true);
    expect(second.soPath.startsWith(fallback)).toBe(true);
    expect(callAnswer(second.soPath)).toBe(22);
    expect(warnings).toHaveLength(1);
    expect(warnings[0].message).toContain(unusable);
    expect(warnings[0].message).toContain("MINDUCTOR_CACHE_DIR");
  });

  it("does not warn when the cache dir is usable", async () => {
    const library = await compileSource(answerSource(23), { cacheDir: join(root, "fine", "nested") });
    await settle();
    expect(library.soPath.startsWith(join(root, "fine", "nested"))).toBe(true);
    expect(warnings).toEqual([]);
  });

  // Root writes through permission bits, so a read-only dir only stops other users.
  it.skipIf(process.getuid?.() === 0)("falls back from a read-only cache dir", async () => {
    const readOnly = join(root, "read-only");
    await mkdir(readOnly);
    await chmod(readOnly, 0o555);
    try {
      const library = await compileSource(answerSource(24), { cacheDir: readOnly });
      await settle();
      expect(library.soPath.startsWith(readOnly)).toBe(false);
      expect(await readdir(readOnly)).toEqual([]);
      expect(warnings).toHaveLength(1);
    } finally {
      await chmod(readOnly, 0o755);
    }
  });

  it("refuses a fallback dir that another user could have planted", async () => {
    const fallback = join(root, "os-tmp", `minductor-cache-${process.getuid?.() ?? "user"}`);
    await mkdir(fallback);
    await chmod(fallback, 0o777);
    await writeFile(join(root, "a-file"), "");
    const error = await compileSource(answerSource(25), { cacheDir: join(root, "a-file", "cache") }).catch((e: unknown) => e);
    expect((error as Error).name).toBe("CacheDirError");
    expect((error as Error).message).toContain("not a private directory");
  });
});
