/**
 * Tuned choices on disk: one JSON file per machine (the probe's identity) in the kernel cache dir, keyed by a
 * hash of the graph's compile-time meaning and then by shape bucket. A choice measured on one machine says
 * nothing about another, so a changed identity simply finds no file.
 */
import { createHash, randomBytes } from "node:crypto";
import { readFile, rename, rm, writeFile } from "node:fs/promises";
import { join, resolve } from "node:path";
import { z } from "zod";
import { defaultCacheDir } from "../compile/index.js";
import { withLock } from "../compile/lock.js";
import { usableCacheDir } from "../compile/usableCacheDir.js";
import type { AttentionGraph } from "../ir/graph.js";
import type { TunedChoice } from "../select/tunedChoice.js";
import { identityHash, machineIdentity } from "./machineIdentity.js";

/** Bumped when a stored choice changes meaning, so older files are ignored rather than misread. */
export const TUNING_FORMAT_VERSION = 1;

/** The spec's rule for block sizes: a hand-edited store cannot smuggle in a size the spec would refuse. */
const blockSize = z.number().int().min(16).max(1024).refine((n) => n % 16 === 0);

const tunedChoiceSchema = z.object({
  template: z.enum(["flash_attention", "flash_decoding"]),
  qBlock: blockSize,
  kvBlock: blockSize,
  partitionSize: z.number().int().positive(),
  numThreads: z.number().int().positive(),
  tunedMs: z.number().positive(),
  heuristicMs: z.number().positive(),
  measuredAt: z.iso.datetime(),
  shape: z.object({ batch: z.number().int().positive(), qLen: z.number().int().positive(), kvLen: z.number().int().positive() }),
});

const storeSchema = z.object({
  formatVersion: z.literal(TUNING_FORMAT_VERSION),
  identity: z.object({ cpu: z.string(), cores: z.number(), isa: z.string(), ompNumThreads: z.string() }),
  graphs: z.record(z.string(), z.object({ name: z.string(), choices: z.record(z.string(), tunedChoiceSchema) })),
});

type StoreFile = z.infer<typeof storeSchema>;

/**
 * What a tuned choice depends on: everything compile-time except the block sizes (tuning varies them) and the
 * partition size (tuning chooses it). The name is left out: renaming a spec does not change its kernel.
 */
export function tuningKey(graph: AttentionGraph): string {
  const fields = {
    dtype: graph.query.dtype,
    hq: graph.query.shape[1],
    hkv: graph.key.shape[1],
    qkDim: graph.query.shape[3],
    vDim: graph.value.shape[3],
    scale: graph.scale,
    scoreMod: graph.scoreMod.hash,
    maskMod: graph.maskMod.hash,
    buffers: graph.buffers.map((b) => [b.name, b.dtype, b.shape.length]),
    pageSize: graph.kvCache?.pageSize ?? null,
    returnLse: graph.returnLse,
    // a quantized key/value is another kernel (said only when present, so the keys of other graphs stay as they were)
    ...(graph.key.dtype !== graph.query.dtype ? { kvDtype: graph.key.dtype } : {}),
  };
  return createHash("sha256").update(JSON.stringify(fields)).digest("hex").slice(0, 24);
}

/** The store file of this machine under `cacheDir` (default: the kernel cache dir). */
export async function tuningStorePath(cacheDir?: string): Promise<string> {
  const dir = await usableCacheDir(resolve(cacheDir ?? defaultCacheDir()));
  return join(dir, `tuning-${identityHash(await machineIdentity())}.json`);
}

/** The tuned choices of `graph` on this machine by shape bucket; empty when nothing was tuned. */
export async function readTunedChoices(graph: AttentionGraph, cacheDir?: string): Promise<Map<string, TunedChoice>> {
  const store = await readStore(await tuningStorePath(cacheDir));
  return new Map(Object.entries(store?.graphs[tuningKey(graph)]?.choices ?? {}));
}

/** Adds (or replaces) the choice of one bucket; returns the store file's path. */
export async function storeTunedChoice(graph: AttentionGraph, bucket: string, choice: TunedChoice, cacheDir?: string): Promise<string> {
  const path = await tuningStorePath(cacheDir);
  const identity = await machineIdentity();
  // Read-modify-write under the lock, so two tuning runs of different graphs both survive.
  await withLock(`${path}.lock`, async () => {
    const store: StoreFile = (await readStore(path)) ?? { formatVersion: TUNING_FORMAT_VERSION, identity, graphs: {} };
    const key = tuningKey(graph);
    const entry = store.graphs[key] ?? { name: graph.name, choices: {} };
    entry.choices[bucket] = choice;
    store.graphs[key] = entry;
    await publish(path, `${JSON.stringify(store, null, 2)}\n`);
  });
  return path;
}

/** Anything unreadable counts as no store: tuning again rewrites it. */
async function readStore(path: string): Promise<StoreFile | undefined> {
  let text: string;
  try {
    text = await readFile(path, "utf8");
  } catch {
    return undefined;
  }
  try {
    return storeSchema.parse(JSON.parse(text));
  } catch {
    return undefined;
  }
}

async function publish(path: string, text: string): Promise<void> {
  const temp = `${path}.tmp-${process.pid}-${randomBytes(4).toString("hex")}`;
  try {
    await writeFile(temp, text);
    await rename(temp, path);
  } catch (error) {
    await rm(temp, { force: true });
    throw error;
  }
}
