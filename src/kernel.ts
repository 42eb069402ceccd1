import { availableParallelism } from "node:os";
import type { CompiledLibrary } from "./compile/index.js";
import { describeGraph } from "./ir/describeGraph.js";
import type { AttentionGraph, TemplateName } from "./ir/graph.js";
import type { BlockMask } from "./runtime/blockMask.js";
import type { NativeLibrary } from "./runtime/nativeLibrary.js";
import { type KernelOutputs } from "./runtime/prepareCall.js";
import { runKernel, runKernelAsync } from "./runtime/runKernel.js";
import { type CallShape, type KernelInputs, validateInputs } from "./runtime/validateInputs.js";
import { type CallFeatures, callFeatures, type Choice } from "./select/features.js";
import { selectTemplate } from "./select/selectTemplate.js";
import { BlockMaskCache } from "./blockMaskCache.js";
import { describeChoice } from "./select/describeChoice.js";

export interface RunOptions {
  /** Force a template for this call (default: the selector's choice). `naive` is the materialising baseline. */
  template?: TemplateName | "naive";
  /** kv positions per flash-decoding partition, a multiple of the kv block size (default: the selector's). */
  partitionSize?: number;
  /** OpenMP threads (default: OMP_NUM_THREADS, else every core). */
  numThreads?: number;
  /** A block mask from `kernel.createBlockMask` (default: built from mask_mod and reused while it stays valid). */
  blockMask?: BlockMask;
  /** `auto` (default) or `pytorch`: which rule picks the template. */
  policy?: "auto" | "pytorch";
}

export interface CallShapeOverrides {
  batch?: number;
  qLen?: number;
  kvLen?: number;
  threads?: number;
}

/** Threads OpenMP will use by default: OMP_NUM_THREADS when set, else every core. */
export function defaultThreads(): number {
  const env = Number(process.env.OMP_NUM_THREADS);
  return Number.isSafeInteger(env) && env > 0 ? env : availableParallelism();
}

/**
 * A compiled FlexAttention kernel: one library serving every batch size and length, with both templates.
 * Each call validates its inputs, picks a template from the call's shapes, and runs it.
 */
export class Kernel {
  private readonly masks: BlockMaskCache;

  constructor(
    readonly graph: AttentionGraph,
    /** The generated C++ (self-contained) and its C header. */
    readonly source: string,
    readonly header: string,
    readonly library: CompiledLibrary,
    private readonly native: NativeLibrary,
  ) {
    this.masks = new BlockMaskCache(graph, native);
  }

  /** The template the selector picks for the spec's own shapes. */
  get template(): TemplateName {
    return this.choose(this.defaultFeatures()).template;
  }

  /** Runs the kernel on the calling thread. */
  run(inputs: KernelInputs, options: RunOptions = {}): KernelOutputs {
    const { mask, runOptions } = this.plan(inputs, options);
    return runKernel(this.native, this.graph, inputs, mask, runOptions);
  }

  /** Runs the kernel on a worker thread, keeping the event loop free. */
  async runAsync(inputs: KernelInputs, options: RunOptions = {}): Promise<KernelOutputs> {
    const { mask, runOptions } = this.plan(inputs, options);
    return runKernelAsync(this.native, this.graph, inputs, mask, runOptions);
  }

  /** The choice the selector makes for a call with these inputs. */
  choiceFor(inputs: KernelInputs, options: RunOptions = {}): Choice {
    return this.choose(this.featuresOf(validateInputs(this.graph, inputs), options), options.policy);
  }

  /** The block mask of mask_mod for a call's lengths (PyTorch's layout), computed once and reusable across calls. */
  createBlockMask(batch: number, qLen: number, kvLen: number, inputs?: Pick<KernelInputs, "buffers" | "seqLens">): BlockMask {
    return this.masks.build(batch, qLen, kvLen, inputs?.buffers, inputs?.seqLens);
  }

  /** The graph, its mods' IR, and the template decision for the given (default: the spec's) shapes. */
  explain(shapes: CallShapeOverrides = {}, policy?: "auto" | "pytorch"): string {
    const f = this.defaultFeatures(shapes);
    return `${describeGraph(this.graph)}\n\n${describeChoice(f, this.choose(f, policy))}`;
  }

  private plan(inputs: KernelInputs, options: RunOptions) {
    const shape = validateInputs(this.graph, inputs);
    const choice = options.template === "naive" ? undefined : this.choose(this.featuresOf(shape, options), options.policy);
    const template = options.template ?? choice!.template;
    const mask = options.blockMask ?? inputs.blockMask ?? (template === "naive" ? undefined : this.masks.get(shape, inputs));
    return {
      mask,
      runOptions: {
        template,
        partitionSize: options.partitionSize ?? choice?.partitionSize,
        numThreads: options.numThreads ?? 0,
      },
    };
  }

  private choose(f: CallFeatures, policy?: "auto" | "pytorch"): Choice {
    return selectTemplate(f, policy ?? this.graph.kernelOptions.policy ?? "auto");
  }

  private featuresOf(shape: CallShape, options: RunOptions): CallFeatures {
    const kvTokens = shape.paged ? shape.paged.numPages * this.graph.kvCache!.pageSize : shape.kvLen;
    return callFeatures(this.graph, { batch: shape.batch, qLen: shape.qLen, kvLen: shape.kvLen, kvTokens, threads: options.numThreads || defaultThreads() });
  }

  private defaultFeatures(shapes: CallShapeOverrides = {}): CallFeatures {
    const g = this.graph;
    const batch = shapes.batch ?? g.query.shape[0];
    const paged = g.kvCache !== undefined;
    const poolTokens = g.key.shape[0] * (g.kvCache?.pageSize ?? 0);
    const kvLen = shapes.kvLen ?? (paged ? Math.max(1, Math.floor(g.key.shape[0] / batch)) * g.kvCache!.pageSize : g.key.shape[2]);
    return callFeatures(g, {
      batch,
      qLen: shapes.qLen ?? g.query.shape[2],
      kvLen,
      kvTokens: paged ? Math.max(poolTokens, batch * kvLen) : kvLen,
      threads: shapes.threads ?? defaultThreads(),
    });
  }
}
