import { createHash } from "node:crypto";

/** Bump when the entry layout or manifest changes, so old entries are never misread. */
export const CACHE_FORMAT_VERSION = 2;

/**
 * The content address of a compiled kernel: everything that can change the bytes of the .so.
 * `header` and `prelude` are part of it because they are written beside the source and the source may include them.
 */
export function cacheKey(
  source: string,
  argv: string[],
  compilerVersion: string,
  cpuFeatures: string,
  header?: string,
  prelude?: { name: string; text: string },
): string {
  // JSON framing keeps the fields unambiguous (no concatenation collisions between fields). The texts enter by their
  // checksums, which a lookup computes anyway to check the entry's files (inspectEntry): a cache hit hashes each
  // text once instead of again inside one long JSON string.
  const texts = [sha256(source), header === undefined ? null : sha256(header), ...(prelude ? [prelude.name, sha256(prelude.text)] : [])];
  return sha256(JSON.stringify([CACHE_FORMAT_VERSION, argv, compilerVersion, cpuFeatures, ...texts]));
}

/**
 * The identity of a library's source, by which a library built against it names it (SourceOptions.requires): the
 * checksum of its source, combined with its prelude's when it includes one (the prelude holds the headers, so a
 * change to either is another identity). Computable from the texts before a build and from an entry's manifest
 * checksums after (cache prune matches them).
 */
export function sourceIdentity(sourceChecksum: string, prelude?: { name: string; checksum: string }): string {
  return prelude ? sha256(JSON.stringify([sourceChecksum, prelude.name, prelude.checksum])) : sourceChecksum;
}

/**
 * Checksums of the last long strings hashed. A kernel's sources and their prelude are hashed for its key, for the
 * engine's identity and for the entry check, by different callers; a fresh process's cache hit spent about a tenth
 * of its time hashing the same few texts again.
 */
const recentTexts = new Map<string, string>();
const REMEMBERED_TEXTS = 16;
const REMEMBERED_LENGTH = 4096;

export function sha256(data: string | Uint8Array): string {
  if (typeof data !== "string" || data.length < REMEMBERED_LENGTH) return createHash("sha256").update(data).digest("hex");
  let checksum = recentTexts.get(data);
  if (checksum === undefined) {
    checksum = createHash("sha256").update(data).digest("hex");
    if (recentTexts.size >= REMEMBERED_TEXTS) recentTexts.delete(recentTexts.keys().next().value as string);
    recentTexts.set(data, checksum);
  }
  return checksum;
}
