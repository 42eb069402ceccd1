import { mkdir, readFile, readdir, realpath, rm, stat } from "node:fs/promises";
import { join } from "node:path";
import { discardDir } from "./diskCache.js";
import { sourceIdentity } from "./cacheKey.js";
import {
  HEADER_FILE,
  KEY_PATTERN,
  LIBRARY_FILE,
  MANIFEST_FILE,
  type Manifest,
  SHARD_PATTERN,
  SOURCE_FILE,
  failedDir,
  lockDir,
  tempOwnerPid,
  tempRoot,
} from "./entryLayout.js";
import { CacheLockTimeoutError } from "./errors.js";
import { isStaleLock, withLock } from "./lock.js";
import { defaultCacheDir } from "./options.js";
import { indexRoot } from "./kernelIndex.js";
import { pchRoot } from "./precompiledHeader.js";
import { isProcessAlive } from "./processAlive.js";

export interface CacheEntrySummary {
  key: string;
  /** Total size of the entry's files. */
  bytes: number;
  /** When the entry was published (its manifest's mtime). */
  mtime: Date;
  /**
   * When the entry was last used as far as the filesystem tells: the later of its publication and the last read
   * of its library (atime; loading and checksumming read it). Under `relatime` a read moves atime at most once a
   * day, so this is day-accurate; under `noatime` it is the publication time.
   */
  lastUsed: Date;
}

/** Published entries (those with a manifest), newest first. Checksums are verified on use, not here. */
export async function listCache(dir: string = defaultCacheDir()): Promise<CacheEntrySummary[]> {
  const entries: CacheEntrySummary[] = [];
  for (const entryPath of await entryDirs(dir)) {
    const manifest = await statOrUndefined(join(entryPath, MANIFEST_FILE));
    if (!manifest) continue;
    let bytes = 0;
    for (const file of await readdir(entryPath)) bytes += (await statOrUndefined(join(entryPath, file)))?.size ?? 0;
    const libraryRead = (await statOrUndefined(join(entryPath, LIBRARY_FILE)))?.atimeMs ?? 0;
    const lastUsed = new Date(Math.max(manifest.mtimeMs, libraryRead));
    entries.push({ key: entryPath.slice(-64), bytes, mtime: manifest.mtime, lastUsed });
  }
  return entries.sort((a, b) => b.mtime.getTime() - a.mtime.getTime());
}

/**
 * Removes every entry, kept failed sources, abandoned temp builds, stale locks, precompiled preludes and the kernel
 * index (its records only point at entries); returns
 * how many published entries went. Builds and locks of live processes are left alone so a concurrent compile still finishes.
 */
export async function clearCache(dir: string = defaultCacheDir()): Promise<number> {
  let removed = 0;
  for (const entryPath of await entryDirs(dir)) {
    if (await statOrUndefined(join(entryPath, MANIFEST_FILE))) removed++;
    await rm(entryPath, { recursive: true, force: true });
  }
  for (const shard of await namesIn(dir, SHARD_PATTERN)) {
    for (const name of await namesIn(join(dir, shard), /\.lock$/)) {
      const lock = join(dir, shard, name);
      if (await isStaleLock(lock)) await rm(lock, { recursive: true, force: true });
    }
  }
  for (const name of await namesIn(tempRoot(dir), /./)) {
    const pid = tempOwnerPid(name);
    if (pid === undefined || !isProcessAlive(pid)) await rm(join(tempRoot(dir), name), { recursive: true, force: true });
  }
  await rm(failedDir(dir), { recursive: true, force: true });
  await rm(pchRoot(dir), { recursive: true, force: true });
  await rm(indexRoot(dir), { recursive: true, force: true });
  return removed;
}

export interface PruneResult {
  maxBytes: number;
  /** Total size of the published entries before and after. */
  bytesBefore: number;
  bytesAfter: number;
  /** What went, least recently used first. */
  removed: CacheEntrySummary[];
  /** Entries that were due to go but stayed because a live process is building or has loaded them. */
  kept: Array<CacheEntrySummary & { reason: string }>;
  /** Precompiled preludes removed (they go first: large, and rebuilt in about a second when next needed). */
  precompiledRemoved: { count: number; bytes: number };
}

/**
 * Removes least-recently-used entries until the published entries total at most `maxBytes`. An entry whose key
 * is locked by a live process (a rebuild in progress) or whose library a live process has mapped stays, even if
 * the cache then remains over the limit: deleting a loaded library would not free its space anyway.
 */
export async function pruneCache(maxBytes: number, dir: string = defaultCacheDir()): Promise<PruneResult> {
  if (!Number.isSafeInteger(maxBytes) || maxBytes < 0) {
    throw new RangeError(`pruneCache: maxBytes must be a non-negative integer, got ${maxBytes}`);
  }
  const entries = (await listCache(dir)).sort(
    (a, b) => a.lastUsed.getTime() - b.lastUsed.getTime() || a.key.localeCompare(b.key),
  );
  const precompiled = await precompiledDirs(dir);
  const bytesBefore = entries.reduce((sum, e) => sum + e.bytes, 0) + precompiled.reduce((sum, p) => sum + p.bytes, 0);
  const result: PruneResult = { maxBytes, bytesBefore, bytesAfter: bytesBefore, removed: [], kept: [], precompiledRemoved: { count: 0, bytes: 0 } };
  if (bytesBefore <= maxBytes) return result;

  // discardDir moves an entry into tmp/ first, so no reader ever sees half of one.
  await mkdir(tempRoot(dir), { recursive: true });
  // A build that borrowed a .gch holds its own link to it, so removing the directory never breaks a build.
  for (const p of precompiled) {
    if (result.bytesAfter <= maxBytes) break;
    await discardDir(dir, p.path);
    result.precompiledRemoved.count++;
    result.precompiledRemoved.bytes += p.bytes;
    result.bytesAfter -= p.bytes;
  }
  const mapped = await mappedFiles();
  const needed = await neededByLoaded(dir, entries, mapped);
  for (const entry of entries) {
    if (result.bytesAfter <= maxBytes) break;
    const entryPath = join(dir, entry.key.slice(0, 2), entry.key);
    const manifest = await readManifest(entryPath);
    const user = manifest ? needed.get(manifestSourceIdentity(manifest) ?? "") : undefined;
    if (user) {
      result.kept.push({ ...entry, reason: `it is the engine of mod library ${user.key.slice(0, 12)}, loaded by live process ${user.pid}` });
      continue;
    }
    const reason = await removeUnlessBusy(dir, entryPath, lockDir(dir, entry.key), mapped);
    if (reason) {
      result.kept.push({ ...entry, reason });
    } else {
      result.removed.push(entry);
      result.bytesAfter -= entry.bytes;
    }
  }
  return result;
}

/** The precompiled prelude directories (`pch/<key>/`) with their sizes. */
async function precompiledDirs(dir: string): Promise<Array<{ path: string; bytes: number }>> {
  const found: Array<{ path: string; bytes: number }> = [];
  for (const key of await namesIn(pchRoot(dir), KEY_PATTERN)) {
    const path = join(pchRoot(dir), key);
    let bytes = 0;
    for (const file of await readdir(path).catch(() => [])) bytes += (await statOrUndefined(join(path, file)))?.size ?? 0;
    found.push({ path, bytes });
  }
  return found;
}

/**
 * The source hashes that loaded entries require (a mod library names its engine's), with the entry and a process
 * that loaded it: an engine must outlive every mod library that runs on it, loaded or not yet reopened.
 */
async function neededByLoaded(
  dir: string,
  entries: readonly CacheEntrySummary[],
  mapped: ReadonlyMap<string, number>,
): Promise<Map<string, { key: string; pid: number }>> {
  const needed = new Map<string, { key: string; pid: number }>();
  for (const entry of entries) {
    const entryPath = join(dir, entry.key.slice(0, 2), entry.key);
    const library = await realpath(join(entryPath, LIBRARY_FILE)).catch(() => undefined);
    const pid = library === undefined ? undefined : mapped.get(library);
    if (pid === undefined) continue;
    for (const hash of (await readManifest(entryPath))?.requires ?? []) needed.set(hash, { key: entry.key, pid });
  }
  return needed;
}

/** The sourceIdentity of an entry from its manifest: its source's checksum and its prelude's (the one checksum of a
 * file that is neither the source, the header nor the library), if any. */
function manifestSourceIdentity(manifest: Manifest): string | undefined {
  const checksums = manifest.checksums ?? {};
  const source = checksums[SOURCE_FILE];
  if (!source) return undefined;
  const prelude = Object.keys(checksums).find((file) => file !== SOURCE_FILE && file !== HEADER_FILE && file !== LIBRARY_FILE);
  return sourceIdentity(source, prelude ? { name: prelude, checksum: checksums[prelude] } : undefined);
}

async function readManifest(entryPath: string): Promise<Manifest | undefined> {
  try {
    return JSON.parse(await readFile(join(entryPath, MANIFEST_FILE), "utf8")) as Manifest;
  } catch {
    return undefined;
  }
}

/** Removes an entry under its key's lock; returns why it was kept instead, if it was. */
async function removeUnlessBusy(
  cacheDir: string,
  entryPath: string,
  lockPath: string,
  mapped: ReadonlyMap<string, number>,
): Promise<string | undefined> {
  try {
    // Holding the lock keeps a concurrent compile of this key from publishing while the entry goes.
    return await withLock(
      lockPath,
      async () => {
        const library = await realpath(join(entryPath, LIBRARY_FILE)).catch(() => undefined);
        const pid = library === undefined ? undefined : mapped.get(library);
        if (pid !== undefined) return `its library is loaded by live process ${pid}`;
        await discardDir(cacheDir, entryPath);
        return undefined;
      },
      { timeoutMs: 0 },
    );
  } catch (error) {
    if (error instanceof CacheLockTimeoutError) return "its key is locked by a live process (a build in progress)";
    throw error;
  }
}

/**
 * Files mapped into live processes, by real path, with one pid that maps each. Read from /proc, so on systems
 * without it nothing counts as loaded (the lock check still applies); processes of other users are not visible.
 */
async function mappedFiles(): Promise<Map<string, number>> {
  const files = new Map<string, number>();
  let pids: string[];
  try {
    pids = (await readdir("/proc")).filter((name) => /^\d+$/.test(name));
  } catch {
    return files;
  }
  for (const pid of pids) {
    let maps: string;
    try {
      maps = await readFile(`/proc/${pid}/maps`, "utf8");
    } catch {
      continue; // exited meanwhile, or not ours to read
    }
    for (const line of maps.split("\n")) {
      // address perms offset dev inode path; the path is the rest of the line and may hold spaces.
      const match = /^\S+ \S+ \S+ \S+ \d+\s+(\/.*)$/.exec(line);
      if (match && !files.has(match[1])) files.set(match[1], Number(pid));
    }
  }
  return files;
}

async function entryDirs(dir: string): Promise<string[]> {
  const paths: string[] = [];
  for (const shard of await namesIn(dir, SHARD_PATTERN)) {
    for (const key of await namesIn(join(dir, shard), KEY_PATTERN)) {
      if (key.startsWith(shard)) paths.push(join(dir, shard, key));
    }
  }
  return paths;
}

/** Directory names matching `pattern`; a missing directory is an empty cache, not an error. */
async function namesIn(dir: string, pattern: RegExp): Promise<string[]> {
  try {
    const dirents = await readdir(dir, { withFileTypes: true });
    return dirents.filter((d) => d.isDirectory() && pattern.test(d.name)).map((d) => d.name);
  } catch (error) {
    const code = (error as NodeJS.ErrnoException).code;
    if (code === "ENOENT" || code === "ENOTDIR") return [];
    throw error;
  }
}

async function statOrUndefined(path: string) {
  try {
    return await stat(path);
  } catch {
    return undefined;
  }
}
