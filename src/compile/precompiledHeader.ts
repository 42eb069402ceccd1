/**
 * Precompiled preludes. A source may begin with `#include "<prelude name>"`, a fixed header (the mod library's:
 * md_base.h and mod_helpers.h, with <immintrin.h> and the C++ headers behind them), whose parsing is most of a small
 * build. The header is compiled once per (text, compiler, flags, CPU) into `<cacheDir>/pch/<key>/<name>.gch`, and
 * a build that uses it finds it beside its source, where g++ looks first. Everything here is best effort: without a
 * usable .gch (a failed build) g++ reads the header itself and the result is the same library.
 *
 * g++ only: clang never looks for a .gch beside an `#include`d header (only for `-include`), so for clang a .gch
 * would cost a build and save none. clang's own PCH (`-include-pch`) would need a prelude that can be included
 * twice and a PCH that does not name its build dir; not done, and a clang build parses the prelude every time.
 */
import { copyFile, link, mkdir, mkdtemp, rename, rm, stat, writeFile } from "node:fs/promises";
import { join } from "node:path";
import { sha256 } from "./cacheKey.js";
import type { CompilerInfo } from "./compilerInfo.js";
import { withCompilerSlot } from "./compilerSlots.js";
import { tempPrefix } from "./entryLayout.js";
import { withLock } from "./lock.js";
import { compilerEnv } from "./options.js";

/** A header a source includes first, by name; its text is part of the including entry's cache key. */
export interface Prelude {
  name: string;
  text: string;
}

/** Bump when the layout below changes. */
const PCH_FORMAT = 1;

export function pchRoot(cacheDir: string): string {
  return join(cacheDir, "pch");
}

/** In-flight and finished precompilations of this process, by directory. */
const pending = new Map<string, Promise<string | undefined>>();

function pchDir(cacheDir: string, prelude: Prelude, argv: readonly string[], compiler: CompilerInfo): string {
  return join(pchRoot(cacheDir), sha256(JSON.stringify([PCH_FORMAT, prelude.name, prelude.text, argv, compiler.version, compiler.cpuFeatures])));
}

/** The path of `<prelude.name>.gch` for these flags if it has been precompiled, else undefined. */
export async function existingPrecompiledPrelude(cacheDir: string, prelude: Prelude, argv: readonly string[], compiler: CompilerInfo): Promise<string | undefined> {
  if (compiler.family !== "gcc") return undefined;
  const gch = join(pchDir(cacheDir, prelude, argv, compiler), `${prelude.name}.gch`);
  return (await exists(gch)) ? gch : undefined;
}

/**
 * The path of `<prelude.name>.gch` for these flags, precompiled now if needed; undefined when it cannot be made
 * (a build then parses the header, as without this cache).
 */
export function precompiledPrelude(
  cacheDir: string,
  prelude: Prelude,
  argv: readonly string[],
  compiler: CompilerInfo,
  options: { background?: boolean } = {},
): Promise<string | undefined> {
  if (compiler.family !== "gcc") return Promise.resolve(undefined);
  const dir = pchDir(cacheDir, prelude, argv, compiler);
  let result = pending.get(dir);
  if (!result) {
    result = findOrPrecompile(cacheDir, dir, prelude, argv, options.background ?? false).catch(() => undefined);
    pending.set(dir, result);
    // A failure is retried by a later build of this process, once.
    void result.then((path) => path === undefined && pending.delete(dir));
  }
  return result;
}

/**
 * The .gch in `dir`, made now if no process has made it. One process at a time makes it (a lock beside the directory,
 * `<dir>.lock`), and the others wait and then find it: processes that each compile their first kernel of the same
 * flags at once (the test files, `cache warm` beside a server) otherwise each made their own, of which one was kept
 * (a cold `npm test` made the -O0 prelude 9 times, 1.5 s of g++ each).
 */
async function findOrPrecompile(cacheDir: string, dir: string, prelude: Prelude, argv: readonly string[], background: boolean): Promise<string | undefined> {
  const gch = join(dir, `${prelude.name}.gch`);
  if (await exists(gch)) return gch;
  await mkdir(pchRoot(cacheDir), { recursive: true });
  return withLock(`${dir}.lock`, () => precompile(cacheDir, dir, prelude, argv, background));
}

async function precompile(cacheDir: string, dir: string, prelude: Prelude, argv: readonly string[], background: boolean): Promise<string | undefined> {
  const gch = join(dir, `${prelude.name}.gch`);
  // Whoever held the lock before us may have just made it.
  if (await exists(gch)) return gch;
  await mkdir(join(cacheDir, "tmp"), { recursive: true });
  const build = await mkdtemp(tempPrefix(cacheDir, "pch"));
  try {
    await writeFile(join(build, prelude.name), prelude.text);
    const { execa } = await import("execa");
    // The including build's own flags (its `-o kernel.so kernel.cpp` tail replaced): g++ uses a .gch only when they match.
    const flags = argv.slice(1, argv.indexOf("-o"));
    const result = await withCompilerSlot(() =>
      execa(argv[0], [...flags, "-x", "c++-header", prelude.name, "-o", `${prelude.name}.gch`], { cwd: build, reject: false, stdin: "ignore", env: compilerEnv() }),
      { background },
    );
    if (result.failed || !(await exists(join(build, `${prelude.name}.gch`)))) return undefined;
    try {
      await rename(build, dir);
    } catch {
      // Another process published it first: theirs serves.
      if (!(await exists(gch))) return undefined;
    }
    return gch;
  } finally {
    await rm(build, { recursive: true, force: true });
  }
}

/** Puts the .gch beside the header in a build dir: a hard link (same filesystem), else a copy. */
export async function placePrecompiled(gch: string, buildDir: string, name: string): Promise<string> {
  const target = join(buildDir, `${name}.gch`);
  try {
    await link(gch, target);
  } catch {
    await copyFile(gch, target);
  }
  return target;
}

async function exists(path: string): Promise<boolean> {
  try {
    await stat(path);
    return true;
  } catch {
    return false;
  }
}
