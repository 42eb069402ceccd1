import { access } from "node:fs/promises";
import { join, resolve } from "node:path";
import { buildEntry, compilerArgv } from "./buildEntry.js";
import { cacheKey } from "./cacheKey.js";
import { type CompilerInfo, compilerInfo, OPENMP_FLAG, withoutOpenmp } from "./compilerInfo.js";
import { type EntryChecksums, type EntryContents, discardDir, inspectEntry, publishEntry } from "./diskCache.js";
import { HEADER_FILE, LIBRARY_FILE, SOURCE_FILE, entryDir, lockDir } from "./entryLayout.js";
import { withLock } from "./lock.js";
import { type Prelude, precompiledPrelude } from "./precompiledHeader.js";
import { type CompileOptions, type CompileProgressEvent, defaultCacheDir, defaultCxx, defaultCxxflags } from "./options.js";
import { _forgetCacheDirsForTests, usableCacheDir } from "./usableCacheDir.js";

export interface CompiledLibrary {
  key: string;
  soPath: string;
  sourcePath: string;
  headerPath?: string;
  fromCache: "memory" | "disk" | "compiled";
  /** Wall time this call spent, lookups included; the g++ time of the original build is in the manifest. */
  compileMs: number;
  /**
   * Built with OpenMP (`-fopenmp` in the flags it was built with): its parallel loops run on OMP_NUM_THREADS threads,
   * else every core. False when the flags have none or the compiler could not use it: it runs on one thread.
   */
  threaded: boolean;
}

/** In-flight and finished builds of this process by (requested cache dir, key): a repeat call runs no g++. */
const builds = new Map<string, Promise<CompiledLibrary>>();

/** What a source brings besides its text (src/compile/diskCache.ts, EntryContents, says what each means). */
export interface SourceOptions extends CompileOptions {
  header?: string;
  requires?: readonly string[];
  prelude?: Prelude;
  units?: number;
  /**
   * Resolve once the library is published, while its prelude (when it has none precompiled yet) precompiles on; the
   * process does not exit before that ends. Default: resolve after it.
   */
  precompileLater?: boolean;
  /**
   * For a source built in units: the units after the first take a compiler slot only once this settles. compile()
   * passes its mod library's build, so that on two cores the engine's first unit and the small mod library compile
   * together and the engine's second unit follows, instead of the mod library waiting for a unit.
   */
  unitsAfter?: Promise<unknown>;
}

/** Compiles `source` to a shared library, or returns the cached one for the same source, flags and machine. */
export async function compileSource(source: string, opts: SourceOptions = {}): Promise<CompiledLibrary> {
  const started = performance.now();
  const { requestedDir, compiler, argv } = await buildTarget(opts);
  const wanted: EntryContents = {
    key: cacheKey(source, argv, compiler.version, compiler.cpuFeatures, opts.header, opts.prelude),
    source,
    header: opts.header,
    prelude: opts.prelude,
    requires: opts.requires,
    units: opts.units,
  };
  const buildId = `${requestedDir}\0${wanted.key}`;
  const progress = (phase: CompileProgressEvent["phase"]) => opts.onProgress?.({ phase, key: wanted.key });
  const elapsed = () => performance.now() - started;

  const known = builds.get(buildId);
  if (known) {
    // A build in flight is shared, its failure included; failed builds leave the map, so a later call retries.
    const library = await known;
    // Existence is the cheap check; a library removed by clearCache since is rebuilt below.
    if (await exists(library.soPath)) {
      progress("cache-hit-memory");
      progress("done");
      return { ...library, fromCache: "memory", compileMs: elapsed() };
    }
  }
  const later: Array<() => void> = [];
  const build = findOrBuild(requestedDir, wanted, argv, compiler, progress, elapsed, opts, later);
  builds.set(buildId, build);
  build.catch(() => {
    if (builds.get(buildId) === build) builds.delete(buildId);
  });
  const library = await build;
  progress("done");
  for (const start of later) start();
  return library;
}

/** What the builds of these options run: the compiler, its argv and the cache dir asked for. */
export interface BuildTarget {
  /** Absolute, so the paths handed to the loader do not depend on a later chdir. */
  requestedDir: string;
  compiler: CompilerInfo;
  argv: string[];
}

export async function buildTarget(opts: CompileOptions): Promise<BuildTarget> {
  const cxx = opts.cxx ?? defaultCxx();
  const requestedFlags = opts.cxxflags ?? defaultCxxflags();
  const requestedDir = resolve(opts.cacheDir ?? defaultCacheDir());
  const compiler = await compilerInfo(cxx, requestedFlags, requestedDir);
  // A compiler that cannot build with -fopenmp builds without it (the kernels then run on one thread), once said.
  const cxxflags = compiler.openmp ? requestedFlags : withoutOpenmp(requestedFlags);
  if (!compiler.openmp) warnNoOpenmp(cxx, requestedFlags, compiler.openmpProblem);
  // The faster linker the probe found (compilerInfo's FAST_LINKERS): on the command line, so in the cache key too.
  return { requestedDir, compiler, argv: compilerArgv(cxx, compiler.linker ? [...cxxflags, compiler.linker] : cxxflags) };
}

/**
 * The published entry of `expected` for this target, checked file by file as any cache hit is, without its texts (the
 * kernel index holds their checksums); undefined when it is absent or fails a check. Nothing is built or removed: the
 * caller then renders and calls compileSource, which rebuilds a corrupt entry.
 */
export async function findPublished(target: BuildTarget, expected: EntryChecksums, onProgress?: CompileOptions["onProgress"]): Promise<CompiledLibrary | undefined> {
  const started = performance.now();
  const cacheDir = await usableCacheDir(target.requestedDir);
  if ((await inspectEntry(cacheDir, expected)).status !== "valid") return undefined;
  onProgress?.({ phase: "cache-hit-disk", key: expected.key });
  onProgress?.({ phase: "done", key: expected.key });
  return describe(cacheDir, expected.key, expected.files[HEADER_FILE] !== undefined, "disk", performance.now() - started, usesOpenmp(target.argv));
}

/** Emitted once per process and (compiler, flags) when `-fopenmp` is dropped. */
export const NO_OPENMP_WARNING_CODE = "MINDUCTOR_NO_OPENMP";

const warnedNoOpenmp = new Set<string>();

function warnNoOpenmp(cxx: string, cxxflags: readonly string[], problem: string | undefined): void {
  const id = JSON.stringify([cxx, cxxflags]);
  if (warnedNoOpenmp.has(id)) return;
  warnedNoOpenmp.add(id);
  process.emitWarning(
    `C++ compiler '${cxx}' cannot build with -fopenmp${problem ? ` (${problem.replace(/\s*\n\s*/g, " | ")})` : ""}; ` +
      "building without OpenMP, so kernels run on one thread. Install OpenMP for this compiler (e.g. libomp-dev " +
      "for clang on Debian), or set MINDUCTOR_CXXFLAGS without -fopenmp to build single-threaded without this warning.",
    { code: NO_OPENMP_WARNING_CODE },
  );
}

/** Forgets every build and cache-dir decision of this process, so a test can observe the disk cache again. */
export function _resetMemoryCacheForTests(): void {
  builds.clear();
  warnedNoOpenmp.clear();
  _forgetCacheDirsForTests();
}

async function findOrBuild(
  requestedDir: string,
  wanted: EntryContents,
  argv: string[],
  compiler: CompilerInfo,
  progress: (phase: CompileProgressEvent["phase"]) => void,
  elapsed: () => number,
  opts: Pick<SourceOptions, "precompileLater" | "unitsAfter">,
  later: Array<() => void>,
): Promise<CompiledLibrary> {
  const cacheDir = await usableCacheDir(requestedDir);
  const library = (fromCache: CompiledLibrary["fromCache"]) => describe(cacheDir, wanted.key, wanted.header !== undefined, fromCache, elapsed(), usesOpenmp(argv));

  if ((await inspectEntry(cacheDir, wanted)).status === "valid") {
    progress("cache-hit-disk");
    return library("disk");
  }
  return withLock(lockDir(cacheDir, wanted.key), async () => {
    // Whoever held the lock before us may have just published this very key.
    const state = await inspectEntry(cacheDir, wanted);
    if (state.status === "valid") {
      progress("cache-hit-disk");
      return library("disk");
    }
    if (state.status === "corrupt") await discardDir(cacheDir, entryDir(cacheDir, wanted.key));
    progress("compiling");
    const built = await buildEntry(cacheDir, wanted, argv, compiler, opts.unitsAfter);
    const outcome = await publishEntry(cacheDir, built, wanted);
    // A build without a precompiled prelude leaves one for the next: before it returns, or once it has returned, and
    // then behind every other build waiting for a compiler (withCompilerSlot's `background`).
    const prelude = wanted.prelude;
    if (prelude && opts.precompileLater) later.push(() => void precompiledPrelude(cacheDir, prelude, argv, compiler, { background: true }));
    else if (prelude) await precompiledPrelude(cacheDir, prelude, argv, compiler);
    return library(outcome === "ours" ? "compiled" : "disk");
  });
}

/** `-fopenmp` (or `-fopenmp=<runtime>`), not `-fopenmp-simd`, which threads nothing. */
function usesOpenmp(argv: readonly string[]): boolean {
  return argv.some((a) => a === OPENMP_FLAG || a.startsWith(`${OPENMP_FLAG}=`));
}

function describe(cacheDir: string, key: string, hasHeader: boolean, fromCache: CompiledLibrary["fromCache"], ms: number, threaded: boolean): CompiledLibrary {
  const dir = entryDir(cacheDir, key);
  return {
    key,
    soPath: join(dir, LIBRARY_FILE),
    sourcePath: join(dir, SOURCE_FILE),
    ...(hasHeader ? { headerPath: join(dir, HEADER_FILE) } : {}),
    fromCache,
    compileMs: ms,
    threaded,
  };
}

async function exists(path: string): Promise<boolean> {
  try {
    await access(path);
    return true;
  } catch {
    return false;
  }
}
