import { homedir } from "node:os";
import { join } from "node:path";

/** Progress of one `compileSource` call; `done` always comes last when a library is returned. */
export interface CompileProgressEvent {
  phase: "cache-hit-memory" | "cache-hit-disk" | "compiling" | "done";
  key: string;
}

export interface CompileOptions {
  /** Default: $MINDUCTOR_CACHE_DIR, else $XDG_CACHE_HOME/minductor, else ~/.cache/minductor. */
  cacheDir?: string;
  /** Default: $MINDUCTOR_CXX or "g++". */
  cxx?: string;
  /** Default: $MINDUCTOR_CXXFLAGS split on whitespace, else DEFAULT_CXXFLAGS. Replaces the defaults entirely. */
  cxxflags?: string[];
  onProgress?: (event: CompileProgressEvent) => void;
}

/** Flags of the kernel ABI contract (docs/abi.md): a shared library tuned for this machine, with OpenMP. */
export const DEFAULT_CXXFLAGS: readonly string[] = ["-O3", "-march=native", "-fopenmp", "-shared", "-fPIC", "-std=gnu++17"];

/** An unset and an empty variable mean the same: a blank `MINDUCTOR_CXX=` in a shell profile must not break builds. */
function env(name: string): string | undefined {
  const value = process.env[name]?.trim();
  return value ? value : undefined;
}

export function defaultCacheDir(): string {
  const explicit = env("MINDUCTOR_CACHE_DIR");
  if (explicit) return explicit;
  const xdg = env("XDG_CACHE_HOME");
  return join(xdg ?? join(homedir(), ".cache"), "minductor");
}

export function defaultCxx(): string {
  return env("MINDUCTOR_CXX") ?? "g++";
}

export function defaultCxxflags(): string[] {
  const fromEnv = env("MINDUCTOR_CXXFLAGS");
  return fromEnv ? fromEnv.split(/\s+/) : [...DEFAULT_CXXFLAGS];
}

/**
 * glibc malloc settings for the compiler's processes: its heap on transparent huge pages where the kernel allows them
 * on request (`madvise`, the common default), and grown 64 MiB at a time. cc1plus touches 100-270 MB an engine, a 4
 * KiB page fault at a time otherwise; measured on a 2-core AVX-512 VM (g++ 12, median of 7 builds, user + system CPU):
 * an -O0 engine 0.86-0.89 -> 0.76-0.77 s, an -O3 engine 5.35 -> 4.97 s, a mod library 0.34 -> 0.25 s, the precompiled
 * prelude 1.70 -> 1.31 s (docs/benchmarks.md, "Builds on huge pages"). The output is the same. A name the caller's
 * own GLIBC_TUNABLES sets keeps the caller's value; a glibc too old to know these names (before 2.35) ignores them.
 */
export const COMPILER_TUNABLES: Readonly<Record<string, string>> = { "glibc.malloc.hugetlb": "1", "glibc.malloc.top_pad": String(64 << 20) };

/** The environment additions for a compiler process: GLIBC_TUNABLES with COMPILER_TUNABLES merged in (see above). */
export function compilerEnv(base: Record<string, string | undefined> = process.env): { GLIBC_TUNABLES: string } {
  const own = (base.GLIBC_TUNABLES ?? "").split(":").filter((t) => t.includes("="));
  const named = new Set(own.map((t) => t.slice(0, t.indexOf("="))));
  const added = Object.entries(COMPILER_TUNABLES)
    .filter(([name]) => !named.has(name))
    .map(([name, value]) => `${name}=${value}`);
  return { GLIBC_TUNABLES: [...own, ...added].join(":") };
}
