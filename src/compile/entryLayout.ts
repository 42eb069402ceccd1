import { join } from "node:path";

/*
 * <cacheDir>/<key[0..2]>/<key>/       one published entry: kernel.cpp, kernel.so, kernel.h?, manifest.json
 * <cacheDir>/<key[0..2]>/<key>.lock/  the cross-process lock of a key while it is being built
 * <cacheDir>/tmp/<key>-<pid>-XXXXXX/  builds in progress (same filesystem, so publishing is one rename)
 * <cacheDir>/failed/<key>.cpp         sources g++ rejected, kept for reproduction
 */

export const SOURCE_FILE = "kernel.cpp";
export const LIBRARY_FILE = "kernel.so";
export const HEADER_FILE = "kernel.h";
export const MANIFEST_FILE = "manifest.json";

/** Written last in a build, so an entry without it is never trusted. */
export interface Manifest {
  formatVersion: number;
  key: string;
  argv: string[];
  compilerVersion: string;
  cpuFeatures: string;
  /** sha256 of every file of the entry except the manifest, by file name. */
  checksums: Record<string, string>;
  compileMs: number;
  createdAt: string;
  /** Source hashes of the libraries this one is built against (EntryContents.requires); absent when none. */
  requires?: string[];
  /** Translation units built at once and linked (EntryContents.units); absent when the source was built whole. */
  units?: number;
}

export const KEY_PATTERN = /^[0-9a-f]{64}$/;
export const SHARD_PATTERN = /^[0-9a-f]{2}$/;

export function entryDir(cacheDir: string, key: string): string {
  return join(cacheDir, key.slice(0, 2), key);
}

export function lockDir(cacheDir: string, key: string): string {
  return `${entryDir(cacheDir, key)}.lock`;
}

export function tempRoot(cacheDir: string): string {
  return join(cacheDir, "tmp");
}

export function failedDir(cacheDir: string): string {
  return join(cacheDir, "failed");
}

/** Temp names carry the builder's pid so a cleaner can tell abandoned builds from running ones. */
export function tempPrefix(cacheDir: string, tag: string): string {
  return join(tempRoot(cacheDir), `${tag}-${process.pid}-`);
}

export function tempOwnerPid(name: string): number | undefined {
  const match = /-(\d+)-[^-]+$/.exec(name);
  return match ? Number(match[1]) : undefined;
}
