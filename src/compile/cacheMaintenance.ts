import { readdir, rm, stat } from "node:fs/promises";
import { join } from "node:path";
import { KEY_PATTERN, MANIFEST_FILE, SHARD_PATTERN, failedDir, tempOwnerPid, tempRoot } from "./entryLayout.js";
import { isStaleLock } from "./lock.js";
import { defaultCacheDir } from "./options.js";
import { isProcessAlive } from "./processAlive.js";

export interface CacheEntrySummary {
  key: string;
  /** Total size of the entry's files. */
  bytes: number;
  /** When the entry was published (its manifest's mtime). */
  mtime: Date;
}

/** Published entries (those with a manifest), newest first. Checksums are verified on use, not here. */
export async function listCache(dir: string = defaultCacheDir()): Promise<CacheEntrySummary[]> {
  const entries: CacheEntrySummary[] = [];
  for (const entryPath of await entryDirs(dir)) {
    const manifest = await statOrUndefined(join(entryPath, MANIFEST_FILE));
    if (!manifest) continue;
    let bytes = 0;
    for (const file of await readdir(entryPath)) bytes += (await statOrUndefined(join(entryPath, file)))?.size ?? 0;
    entries.push({ key: entryPath.slice(-64), bytes, mtime: manifest.mtime });
  }
  return entries.sort((a, b) => b.mtime.getTime() - a.mtime.getTime());
}

/**
 * Removes every entry, kept failed sources, abandoned temp builds and stale locks; returns how many published
 * entries went. Builds and locks of live processes are left alone so a concurrent compile still finishes.
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
  return removed;
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
