import { accessSync, constants, lstatSync, mkdirSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { tempRoot } from "./entryLayout.js";
import { CacheDirError } from "./errors.js";

/** Per requested dir, the dir actually used; the one-warning promise is per process, so both live here. */
const resolvedDirs = new Map<string, Promise<string>>();
let fallbackWarned = false;

export const CACHE_FALLBACK_WARNING_CODE = "MINDUCTOR_CACHE_FALLBACK";

/**
 * The requested cache dir if it can be created and written, else a private dir under the OS temp dir.
 * A read-only home (containers, CI sandboxes) should slow the first run down, not break it.
 */
export function usableCacheDir(requested: string): Promise<string> {
  let resolved = resolvedDirs.get(requested);
  if (!resolved) {
    resolved = resolveCacheDir(requested);
    resolved.catch(() => resolvedDirs.delete(requested));
    resolvedDirs.set(requested, resolved);
  }
  return resolved;
}

export function fallbackCacheDir(): string {
  return join(tmpdir(), `minductor-cache-${process.getuid?.() ?? "user"}`);
}

export function _forgetCacheDirsForTests(): void {
  resolvedDirs.clear();
  fallbackWarned = false;
}

async function resolveCacheDir(requested: string): Promise<string> {
  try {
    await ensureWritable(requested);
    return requested;
  } catch (problem) {
    const fallback = fallbackCacheDir();
    try {
      await ensureWritable(fallback);
      await ensurePrivate(fallback);
    } catch (fallbackProblem) {
      throw new CacheDirError(requested, fallback, `${message(problem)}; ${message(fallbackProblem)}`);
    }
    if (!fallbackWarned) {
      fallbackWarned = true;
      process.emitWarning(
        `kernel cache dir '${requested}' cannot be created or written (${message(problem)}); using '${fallback}' instead. ` +
          "Set MINDUCTOR_CACHE_DIR to a writable directory to keep compiled kernels across reboots.",
        { code: CACHE_FALLBACK_WARNING_CODE },
      );
    }
    return fallback;
  }
}

/* Synchronous, as the cache-hit path is: a few metadata calls, cheaper than thread-pool round trips. */
async function ensureWritable(dir: string): Promise<void> {
  mkdirSync(tempRoot(dir), { recursive: true, mode: 0o700 });
  accessSync(dir, constants.W_OK | constants.X_OK);
  accessSync(tempRoot(dir), constants.W_OK | constants.X_OK);
}

/** The shared temp dir is writable by everyone: refuse a fallback someone else planted, or we would load their .so. */
async function ensurePrivate(dir: string): Promise<void> {
  const info = lstatSync(dir);
  const uid = process.getuid?.();
  if (!info.isDirectory() || (uid !== undefined && info.uid !== uid) || (info.mode & 0o022) !== 0) {
    throw new Error(`'${dir}' is not a private directory owned by this user`);
  }
}

function message(error: unknown): string {
  return error instanceof Error ? error.message : String(error);
}
