/** The tuned choices of a kernel at run time: the stored choices of its graph and the variant libraries they run on. */
import { BlockMaskCache } from "../blockMaskCache.js";
import type { CompileOptions } from "../compile/index.js";
import type { AttentionGraph } from "../ir/graph.js";
import { buildKernelLibrary } from "../kernelLibrary.js";
import type { NativeLibrary } from "../runtime/nativeLibrary.js";
import type { CallFeatures } from "../select/features.js";
import { type TunedChoice, shapeBucket } from "../select/tunedChoice.js";
import { readTunedChoices } from "./tuningStore.js";

export const TUNED_VARIANT_WARNING_CODE = "MINDUCTOR_TUNED_VARIANT";

/** A library of the graph compiled with some block sizes, with the block masks of its calls. */
export interface KernelVariant {
  readonly graph: AttentionGraph;
  readonly native: NativeLibrary;
  readonly masks: BlockMaskCache;
}

/** The graph with other block sizes: a PARTITION_SIZE that is no longer a multiple of the kv block is dropped. */
export function withBlockSize(graph: AttentionGraph, qBlock: number, kvBlock: number): AttentionGraph {
  if (graph.blockSize[0] === qBlock && graph.blockSize[1] === kvBlock) return graph;
  const { PARTITION_SIZE, ...rest } = graph.kernelOptions;
  const kernelOptions = PARTITION_SIZE !== undefined && PARTITION_SIZE % kvBlock === 0 ? graph.kernelOptions : rest;
  return { ...graph, blockSize: [qBlock, kvBlock], kernelOptions };
}

/** A tuned choice and the library it runs on; no variant: the kernel's own library (the graph's block sizes). */
export interface TunedEntry {
  readonly choice: TunedChoice;
  readonly variant?: KernelVariant;
}

/** The tuned choices of a kernel by shape bucket. */
export class TunedVariants {
  constructor(private readonly byBucket: ReadonlyMap<string, TunedEntry>) {}

  lookup(f: CallFeatures): TunedEntry | undefined {
    return this.byBucket.get(shapeBucket(f));
  }

  get buckets(): string[] {
    return [...this.byBucket.keys()];
  }
}

/**
 * Loads the tuned choices stored for `graph` on this machine; a choice with other block sizes than the graph's
 * brings its variant library (normally a cache hit: tuning compiled it). A variant that no longer compiles drops
 * its choices with a warning: the heuristic serves those calls. Undefined when nothing usable was tuned.
 */
export async function loadTunedVariants(graph: AttentionGraph, options: CompileOptions): Promise<TunedVariants | undefined> {
  const choices = await readTunedChoices(graph, options.cacheDir);
  if (choices.size === 0) return undefined;
  const variants = new Map<string, Promise<KernelVariant | undefined>>();
  const variantFor = (qBlock: number, kvBlock: number): Promise<KernelVariant | undefined> => {
    const id = `${qBlock}x${kvBlock}`;
    let variant = variants.get(id);
    if (!variant) {
      const other = withBlockSize(graph, qBlock, kvBlock);
      variant = other === graph ? Promise.resolve(undefined) : compileVariant(other, options);
      variants.set(id, variant);
    }
    return variant;
  };
  const entries = await Promise.all(
    [...choices].map(async ([bucket, choice]) => {
      try {
        return [[bucket, { choice, variant: await variantFor(choice.qBlock, choice.kvBlock) }] as const];
      } catch (e) {
        process.emitWarning(`tuned choice for ${graph.name} (${bucket}, blocks ${choice.qBlock} x ${choice.kvBlock}) ignored: ${e instanceof Error ? e.message.split("\n")[0] : String(e)}`, { code: TUNED_VARIANT_WARNING_CODE });
        return [];
      }
    }),
  );
  return entries.flat().length === 0 ? undefined : new TunedVariants(new Map(entries.flat()));
}

/** A variant with other block sizes is another configuration: its own engine, and a mod library built for it. */
async function compileVariant(graph: AttentionGraph, options: CompileOptions): Promise<KernelVariant> {
  const { native } = await buildKernelLibrary(graph, options);
  return { graph, native, masks: new BlockMaskCache(graph, native) };
}
