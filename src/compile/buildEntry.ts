import { mkdir, mkdtemp, open, rm, writeFile } from "node:fs/promises";
import { join } from "node:path";
import { CACHE_FORMAT_VERSION, sha256 } from "./cacheKey.js";
import type { CompilerInfo } from "./compilerInfo.js";
import { splitBuilds, withCompilerSlot } from "./compilerSlots.js";
import { compilerEnv } from "./options.js";
import { existingPrecompiledPrelude, placePrecompiled } from "./precompiledHeader.js";
import type { EntryContents } from "./diskCache.js";
import { fileChecksum } from "./diskCache.js";
import {
  HEADER_FILE,
  LIBRARY_FILE,
  MANIFEST_FILE,
  type Manifest,
  SOURCE_FILE,
  failedDir,
  tempPrefix,
} from "./entryLayout.js";
import { CompileError, CompilerNotFoundError } from "./errors.js";

/** The compiler command line, identical on every machine: it runs inside the build dir with relative names. */
export function compilerArgv(cxx: string, cxxflags: readonly string[]): string[] {
  return [cxx, ...cxxflags, "-o", LIBRARY_FILE, SOURCE_FILE];
}

/**
 * Compiles into a fresh temp dir of the cache and writes the manifest last; returns the finished dir, ready to
 * be renamed into place. A process killed here leaves only a temp dir, which no lookup ever reads.
 */
export async function buildEntry(
  cacheDir: string,
  wanted: EntryContents,
  argv: string[],
  compiler: CompilerInfo,
  unitsAfter?: Promise<unknown>,
): Promise<string> {
  const started = performance.now();
  const dir = await mkdtemp(tempPrefix(cacheDir, wanted.key));
  try {
    await writeFile(join(dir, SOURCE_FILE), wanted.source);
    if (wanted.header !== undefined) await writeFile(join(dir, HEADER_FILE), wanted.header);
    // The prelude stays in the entry, so its source compiles from there alone; its .gch is only borrowed. Without
    // one yet, this build parses the prelude (compileSource precompiles it once the entry is published).
    let borrowed: string | undefined;
    if (wanted.prelude) {
      await writeFile(join(dir, wanted.prelude.name), wanted.prelude.text);
      const gch = await existingPrecompiledPrelude(cacheDir, wanted.prelude, argv, compiler);
      if (gch) borrowed = await placePrecompiled(gch, dir, wanted.prelude.name).catch(() => undefined);
    }
    const units = splitBuilds() ? (wanted.units ?? 1) : 1;
    const { result, command } = await runCompiler(dir, argv, units, unitsAfter);
    if (borrowed) await rm(borrowed, { force: true });
    if (result.code === "ENOENT" || result.code === "EACCES") throw new CompilerNotFoundError(argv[0]);
    if (result.failed) {
      const kept = await keepFailedSource(cacheDir, wanted);
      throw new CompileError(result.stderr || result.message || "", kept, command, result.exitCode);
    }
    const library = await fileChecksum(join(dir, LIBRARY_FILE));
    if (library === undefined) {
      const kept = await keepFailedSource(cacheDir, wanted);
      throw new CompileError(`the compiler exited 0 but wrote no ${LIBRARY_FILE}\n${result.stderr}`, kept, argv, 0);
    }
    if (!(await isSharedObject(join(dir, LIBRARY_FILE)))) {
      const kept = await keepFailedSource(cacheDir, wanted);
      throw new CompileError(`the compiler exited 0 but its ${LIBRARY_FILE} is not a shared library (no ELF header)\n${result.stderr}`, kept, argv, 0);
    }
    const checksums: Record<string, string> = { [SOURCE_FILE]: sha256(wanted.source), [LIBRARY_FILE]: library };
    if (wanted.header !== undefined) checksums[HEADER_FILE] = sha256(wanted.header);
    if (wanted.prelude) checksums[wanted.prelude.name] = sha256(wanted.prelude.text);
    const manifest: Manifest = {
      formatVersion: CACHE_FORMAT_VERSION,
      key: wanted.key,
      argv,
      compilerVersion: compiler.version,
      cpuFeatures: compiler.cpuFeatures,
      checksums,
      compileMs: Math.round(performance.now() - started),
      createdAt: new Date().toISOString(),
      ...(wanted.requires?.length ? { requires: [...wanted.requires] } : {}),
      ...(units > 1 ? { units } : {}),
    };
    await writeFile(join(dir, MANIFEST_FILE), `${JSON.stringify(manifest, null, 2)}\n`);
    return dir;
  } catch (error) {
    await rm(dir, { recursive: true, force: true });
    throw error;
  }
}

/**
 * Runs the compiler in a build dir: `argv` itself, or for a source in `units` translation units (`-DMD_UNIT=i`), each
 * unit compiled to an object at once, one compiler slot each, then linked with the same flags. An engine's two units
 * build in about two thirds of the time of the whole source on two cores. Units after the first take their slot once
 * `after` settles (compileSource's `unitsAfter`). Returns the first failed command, else the last.
 */
async function runCompiler(
  dir: string,
  argv: readonly string[],
  units: number,
  after?: Promise<unknown>,
): Promise<{ result: { failed: boolean; code?: string; stderr: string; message?: string; exitCode?: number }; command: string[] }> {
  // Loaded on first use: execa takes about 100 ms to import, and a cache hit never runs the compiler.
  const { execa } = await import("execa");
  const run = async (args: string[]) => ({
    result: await withCompilerSlot(() => execa(argv[0], args, { cwd: dir, reject: false, stdin: "ignore", env: compilerEnv() })),
    command: [argv[0], ...args],
  });
  if (units <= 1) return run(argv.slice(1));
  // argv is `cxx ...flags -o kernel.so kernel.cpp` (compilerArgv); -shared is ignored by a -c command.
  const flags = argv.slice(1, argv.lastIndexOf("-o"));
  const objects = Array.from({ length: units }, (_, i) => `unit${i + 1}.o`);
  const compiled = await Promise.all(
    objects.map(async (object, i) => {
      if (i > 0 && after) await after.catch(() => undefined);
      return run([...flags, `-DMD_UNIT=${i + 1}`, "-c", "-o", object, SOURCE_FILE]);
    }),
  );
  const failed = compiled.find((c) => c.result.failed);
  if (failed) return failed;
  const linked = await run([...flags, "-o", LIBRARY_FILE, ...objects]);
  await Promise.all(objects.map((object) => rm(join(dir, object), { force: true })));
  return linked;
}

/** Only an ELF file is ever published: a broken compiler's output must not poison the key for later runs. */
async function isSharedObject(path: string): Promise<boolean> {
  const handle = await open(path, "r");
  try {
    const head = Buffer.alloc(4);
    const { bytesRead } = await handle.read(head, 0, 4, 0);
    return bytesRead === 4 && head.equals(Buffer.from([0x7f, 0x45, 0x4c, 0x46]));
  } finally {
    await handle.close();
  }
}

async function keepFailedSource(cacheDir: string, wanted: EntryContents): Promise<string> {
  await mkdir(failedDir(cacheDir), { recursive: true });
  const sourcePath = join(failedDir(cacheDir), `${wanted.key}.cpp`);
  await writeFile(sourcePath, wanted.source);
  if (wanted.header !== undefined) await writeFile(join(failedDir(cacheDir), `${wanted.key}.h`), wanted.header);
  return sourcePath;
}
