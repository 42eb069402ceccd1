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
