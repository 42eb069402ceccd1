/**
 * The kernel index: a cache hit that renders nothing. A kernel is two cache entries (engine and mod library), each
 * keyed by its source text, so finding them has meant rendering both sources first: in a fresh process, loading the
 * template environment and the first renders were about two thirds of a cache hit's time. The index maps what the sources
 * are rendered from (the graph, and the identity of the code and templates that render it) and the build target to
 * the two entries' keys and the checksums of their files:
 *
 *   <cacheDir>/index/<key[0..2]>/<key>.json   { format, engine: EntryChecksums, mods: EntryChecksums, engineHash }
 *
 * A record only points: both entries are checked file by file exactly as any cache hit checks them (inspectEntry),
 * and the mod library against the engine the record names, so a record that points at a pruned or altered entry, or
 * at a mod library of another engine, is a miss and never loads. A record is trusted as an entry's manifest is: it is
 * checked for consistency, not against forgery (a record written to name another graph's mod library of the same
 * engine would be believed, as would a manifest vouching for another library). A miss renders and builds as before
 * and then writes the record (a temp file renamed into place, so no reader sees half of one). Best effort
 * throughout: an index that cannot be read or written costs only the time it would have saved.
 */
import { mkdirSync, readFileSync, renameSync, writeFileSync } from "node:fs";
import { access } from "node:fs/promises";
import { join } from "node:path";
import { CACHE_FORMAT_VERSION, sha256, sourceIdentity } from "./cacheKey.js";
import { type BuildTarget, type CompiledLibrary, findPublished } from "./compileSource.js";
import type { EntryChecksums } from "./diskCache.js";
import { HEADER_FILE, KEY_PATTERN, SOURCE_FILE } from "./entryLayout.js";
import type { CompileOptions } from "./options.js";
import { usableCacheDir } from "./usableCacheDir.js";

/** Bump when the record's layout or the key's parts change. */
const INDEX_FORMAT = 1;

export interface IndexedKernel {
  engine: CompiledLibrary;
  mods: CompiledLibrary;
  /** The engine's source identity, which the mod library names (kernelLibrary.ts, engineSourceHash). */
  engineHash: string;
}

interface IndexRecord {
  format: number;
  engine: EntryChecksums;
  mods: EntryChecksums;
  engineHash: string;
}

export function indexRoot(cacheDir: string): string {
  return join(cacheDir, "index");
}

function recordPath(cacheDir: string, key: string): string {
  return join(indexRoot(cacheDir), key.slice(0, 2), `${key}.json`);
}

/**
 * The index key of a kernel: `rendered` says what its sources are rendered from (JSON; the caller makes it complete),
 * the target how they are built.
 */
export function kernelIndexKey(rendered: unknown, target: BuildTarget): string {
  return sha256(JSON.stringify([INDEX_FORMAT, CACHE_FORMAT_VERSION, rendered, target.argv, target.compiler.version, target.compiler.cpuFeatures]));
}

/** Kernels this process found or built, by cache dir and index key: a repeat lookup reads no file. */
const known = new Map<string, IndexedKernel>();

/** The engine and mod library the index holds for `key`, both checked; undefined on any miss. */
export async function findIndexed(target: BuildTarget, key: string, onProgress?: CompileOptions["onProgress"]): Promise<IndexedKernel | undefined> {
  const started = performance.now();
  const cacheDir = await usableCacheDir(target.requestedDir);
  const seen = known.get(`${cacheDir}\0${key}`);
  if (seen && (await stillThere(seen))) {
    const compileMs = performance.now() - started;
    for (const library of [seen.engine, seen.mods]) {
      onProgress?.({ phase: "cache-hit-memory", key: library.key });
      onProgress?.({ phase: "done", key: library.key });
    }
    return { ...seen, engine: { ...seen.engine, fromCache: "memory", compileMs }, mods: { ...seen.mods, fromCache: "memory", compileMs } };
  }
  const record = readRecord(recordPath(cacheDir, key));
  if (!record) return undefined;
  const engine = await findPublished(target, record.engine, onProgress);
  const mods = engine && (await findPublished(target, record.mods, onProgress));
  if (!engine || !mods) return undefined;
  const found = { engine, mods, engineHash: record.engineHash };
  known.set(`${cacheDir}\0${key}`, found);
  return found;
}

/** Records the entries a kernel was found or built in, for the next process. */
export async function recordIndexed(target: BuildTarget, key: string, kernel: IndexedKernel, files: { engine: EntryChecksums; mods: EntryChecksums }): Promise<void> {
  const cacheDir = await usableCacheDir(target.requestedDir);
  known.set(`${cacheDir}\0${key}`, kernel);
  const path = recordPath(cacheDir, key);
  const temp = `${path}.${process.pid}.tmp`;
  try {
    mkdirSync(join(indexRoot(cacheDir), key.slice(0, 2)), { recursive: true });
    writeFileSync(temp, JSON.stringify({ format: INDEX_FORMAT, ...files, engineHash: kernel.engineHash } satisfies IndexRecord));
    renameSync(temp, path);
  } catch {
    // A read-only or full cache dir: the next process renders again, as it would without the index.
  }
}

export function _forgetIndexedForTests(): void {
  known.clear();
}

/**
 * The record at `path` if it is well formed and consistent: its engine hash is the identity of its engine entry's
 * source and prelude, and its mod library requires that hash (which inspectEntry then finds in the library).
 */
function readRecord(path: string): IndexRecord | undefined {
  let record: Partial<IndexRecord>;
  try {
    record = JSON.parse(readFileSync(path, "utf8")) as Partial<IndexRecord>;
  } catch {
    return undefined;
  }
  if (record.format !== INDEX_FORMAT || !isChecksums(record.engine) || !isChecksums(record.mods)) return undefined;
  const { [SOURCE_FILE]: source, [HEADER_FILE]: _header, ...rest } = record.engine.files;
  const preludes = Object.entries(rest);
  if (source === undefined || preludes.length > 1) return undefined;
  const identity = sourceIdentity(source, preludes.length ? { name: preludes[0][0], checksum: preludes[0][1] } : undefined);
  if (record.engineHash !== identity || !record.mods.requires?.includes(identity)) return undefined;
  return record as IndexRecord;
}

/** A record is read from disk: its file names must be plain names inside the entry, its checksums strings. */
function isChecksums(x: unknown): x is EntryChecksums {
  const c = x as EntryChecksums | undefined;
  return (
    typeof c === "object" && c !== null && typeof c.key === "string" && KEY_PATTERN.test(c.key) &&
    typeof c.files === "object" && c.files !== null &&
    Object.entries(c.files).every(([name, v]) => /^\w[\w.-]*$/.test(name) && typeof v === "string") &&
    (c.requires === undefined || (Array.isArray(c.requires) && c.requires.every((v) => typeof v === "string")))
  );
}

async function stillThere(kernel: IndexedKernel): Promise<boolean> {
  try {
    await access(kernel.engine.soPath);
    await access(kernel.mods.soPath);
    return true;
  } catch {
    return false;
  }
}
