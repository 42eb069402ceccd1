import { readFileSync } from "node:fs";
import { mkdir, mkdtemp, readFile, rename, rm, stat } from "node:fs/promises";
import { basename, dirname } from "node:path";
import { CACHE_FORMAT_VERSION, sha256 } from "./cacheKey.js";
import {
  HEADER_FILE,
  LIBRARY_FILE,
  MANIFEST_FILE,
  type Manifest,
  SOURCE_FILE,
  entryDir,
  tempPrefix,
} from "./entryLayout.js";
import type { Prelude } from "./precompiledHeader.js";

/** What a build must reproduce; an entry is only as good as its match with these. */
export interface EntryContents {
  key: string;
  source: string;
  header?: string;
  /** A header the source includes first (written beside it, precompiled when the compiler can). */
  prelude?: Prelude;
  /**
   * sha256 hashes (hex) of the sources of the libraries this one is built against: a mod library names its engine's.
   * Its binary must contain each one as text (the mod library's `md_mods.engine_hash`), so an entry built against
   * another engine is found before it is loaded, and `cache prune` keeps the engines that loaded entries need.
   */
  requires?: readonly string[];
  /**
   * Translation units the source splits into by `-DMD_UNIT=1..units` (absent: one). Not part of the key: built whole
   * or in units, the library is the same code.
   */
  units?: number;
}

export type EntryState =
  | { status: "absent" }
  | { status: "corrupt"; reason: string }
  | { status: "valid"; dir: string; manifest: Manifest };

/**
 * What an entry must hold, by checksum: the sha256 of each file (the library's is the manifest's own) and the source
 * identities its library names (EntryContents.requires). A lookup that has the texts computes it (entryChecksums);
 * the kernel index (src/kernelIndex.ts) stores it, so that a cache hit needs no text at all.
 */
export interface EntryChecksums {
  key: string;
  /** sha256 by file name: the source, the header when there is one, the prelude when there is one. */
  files: Record<string, string>;
  requires?: readonly string[];
}

export function entryChecksums(wanted: EntryContents): EntryChecksums {
  return {
    key: wanted.key,
    files: {
      [SOURCE_FILE]: sha256(wanted.source),
      ...(wanted.header === undefined ? {} : { [HEADER_FILE]: sha256(wanted.header) }),
      ...(wanted.prelude ? { [wanted.prelude.name]: sha256(wanted.prelude.text) } : {}),
    },
    ...(wanted.requires ? { requires: wanted.requires } : {}),
  };
}

/**
 * Reads an entry and checks every file against the manifest and the manifest against what was asked for.
 * A truncated or edited .so, source or header makes the entry corrupt, never half-trusted. The reads are
 * synchronous: a cache hit reads a few files of a few hundred KB, and in a fresh process the thread-pool round
 * trips of the promise API cost more than the reads themselves.
 */
export async function inspectEntry(cacheDir: string, wanted: EntryContents | EntryChecksums): Promise<EntryState> {
  const expected = "files" in wanted ? wanted : entryChecksums(wanted);
  const dir = entryDir(cacheDir, expected.key);
  let manifestText: string;
  try {
    manifestText = readFileSync(`${dir}/${MANIFEST_FILE}`, "utf8");
  } catch (error) {
    if (isMissing(error)) return (await exists(dir)) ? { status: "corrupt", reason: "no manifest" } : { status: "absent" };
    throw error;
  }
  let manifest: Manifest;
  try {
    manifest = JSON.parse(manifestText) as Manifest;
  } catch {
    return { status: "corrupt", reason: "manifest is not JSON" };
  }
  if (manifest.formatVersion !== CACHE_FORMAT_VERSION || manifest.key !== expected.key) {
    return { status: "corrupt", reason: "manifest belongs to another key or format" };
  }
  const files: Record<string, string | undefined> = { ...expected.files, [LIBRARY_FILE]: manifest.checksums?.[LIBRARY_FILE] };
  let library: Buffer | undefined;
  for (const [file, checksum] of Object.entries(files)) {
    if (checksum === undefined) continue;
    if (manifest.checksums?.[file] !== checksum) return { status: "corrupt", reason: `manifest checksum of ${file} differs` };
    const bytes = readOrUndefined(`${dir}/${file}`);
    if (file === LIBRARY_FILE) library = bytes;
    const actual = bytes === undefined ? undefined : sha256(bytes);
    if (actual !== checksum) return { status: "corrupt", reason: `${file} ${actual === undefined ? "is missing" : "was altered"}` };
  }
  if (library === undefined) return { status: "corrupt", reason: `manifest has no checksum of ${LIBRARY_FILE}` };
  const missing = expected.requires?.find((hash) => !library.includes(hash));
  if (missing !== undefined) return { status: "corrupt", reason: `${LIBRARY_FILE} was built against another engine than ${missing.slice(0, 12)}` };
  return { status: "valid", dir, manifest };
}

function readOrUndefined(path: string): Buffer | undefined {
  try {
    return readFileSync(path);
  } catch (error) {
    if (isMissing(error)) return undefined;
    throw error;
  }
}

export type PublishOutcome = "ours" | "theirs";

/**
 * Moves a finished build (manifest already written) into place with one rename, so readers see either no
 * entry or a complete one. If another process published the same key first, a valid entry of theirs wins.
 */
export async function publishEntry(cacheDir: string, buildDir: string, wanted: EntryContents): Promise<PublishOutcome> {
  const dir = entryDir(cacheDir, wanted.key);
  await mkdir(dirname(dir), { recursive: true });
  for (let attempt = 0; ; attempt++) {
    try {
      await rename(buildDir, dir);
      return "ours";
    } catch (error) {
      const code = (error as NodeJS.ErrnoException).code;
      if (code !== "ENOTEMPTY" && code !== "EEXIST") throw error;
    }
    if ((await inspectEntry(cacheDir, wanted)).status === "valid") {
      await rm(buildDir, { recursive: true, force: true });
      return "theirs";
    }
    if (attempt > 0) throw new Error(`cannot publish cache entry '${dir}': it keeps being replaced by a corrupt one`);
    await discardDir(cacheDir, dir);
  }
}

/** Renames a directory into tmp/ before deleting it, so no reader ever sees it half-deleted. */
export async function discardDir(cacheDir: string, dir: string): Promise<void> {
  const trash = await mkdtemp(tempPrefix(cacheDir, `trash.${basename(dir)}`));
  try {
    await rename(dir, `${trash}/${basename(dir)}`);
  } catch (error) {
    if (!isMissing(error)) throw error;
  }
  await rm(trash, { recursive: true, force: true });
}

export async function fileChecksum(path: string): Promise<string | undefined> {
  try {
    return sha256(await readFile(path));
  } catch (error) {
    if (isMissing(error)) return undefined;
    throw error;
  }
}

async function exists(path: string): Promise<boolean> {
  try {
    await stat(path);
    return true;
  } catch (error) {
    if (isMissing(error)) return false;
    throw error;
  }
}

export function isMissing(error: unknown): boolean {
  const code = (error as NodeJS.ErrnoException).code;
  return code === "ENOENT" || code === "ENOTDIR";
}
