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
  // JSON framing keeps the fields unambiguous (no concatenation collisions between fields).
  const fields = JSON.stringify([CACHE_FORMAT_VERSION, source, argv, compilerVersion, cpuFeatures, header ?? null, ...(prelude ? [prelude.name, prelude.text] : [])]);
  return sha256(fields);
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

export function sha256(data: string | Uint8Array): string {
  return createHash("sha256").update(data).digest("hex");
}
