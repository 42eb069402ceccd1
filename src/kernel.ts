import { availableParallelism } from "node:os";
import { renderKernel, type KernelSource } from "./codegen/renderKernel.js";
import { renderMods } from "./codegen/renderMods.js";
import { raggedQueryRows } from "./io/generateInputs.js";
import { describeGraph } from "./ir/describeGraph.js";
import type { AttentionGraph, TemplateName } from "./ir/graph.js";
import type { BlockMask } from "./runtime/blockMask.js";
import type { NativeLibrary } from "./runtime/nativeLibrary.js";
import { type KernelOutputs, type TensorBinding, bindingsOf, prepareCall } from "./runtime/prepareCall.js";
import { runKernel, runKernelAsync } from "./runtime/runKernel.js";
import { type CallShape, type KernelInputs, validateInputs } from "./runtime/validateInputs.js";
import { type CallFeatures, callFeatures, type Choice } from "./select/features.js";
import { selectTemplate } from "./select/selectTemplate.js";
import { BlockMaskCache } from "./blockMaskCache.js";
import { describeChoice } from "./select/describeChoice.js";
import type { TunedChoice } from "./select/tunedChoice.js";
import type { KernelVariant, TunedVariants } from "./tune/tunedVariants.js";
import type { KernelLibrary } from "./kernelLibrary.js";
import type { Tensor } from "./runtime/tensor.js";

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
  /** Caller-owned output [B, Hq, Lq, V_DIM] (ragged: [totalQ, Hq, V_DIM]), a view allowed: written in place. */
  out?: Tensor;
  /** Caller-owned logsumexp [B, Hq, Lq] (ragged: [totalQ, Hq]), float32, when the graph returns it. */
  lse?: Tensor;
}

export interface CallShapeOverrides {
  batch?: number;
  qLen?: number;
  kvLen?: number;
  threads?: number;
}

/**
 * Threads OpenMP will use by default: OMP_NUM_THREADS when set, else every core. Read once per process, as libgomp
 * reads OMP_NUM_THREADS once when it loads (and counting the cores is a system call, which a call should not pay).
 */
export function defaultThreads(): number {
  if (defaultThreadCount === undefined) {
    const env = Number(process.env.OMP_NUM_THREADS);
    defaultThreadCount = Number.isSafeInteger(env) && env > 0 ? env : availableParallelism();
  }
  return defaultThreadCount;
}
let defaultThreadCount: number | undefined;

/**
 * A compiled FlexAttention kernel: one library serving every batch size and length, with both templates.
 * Each call validates its inputs, picks a template from the call's shapes, and runs it.
 */
export class Kernel {
  private readonly main: KernelVariant;
  private selfContained?: KernelSource;

  constructor(
    readonly graph: AttentionGraph,
    /** The engine and the mod library it runs on. */
    readonly library: KernelLibrary,
    native: NativeLibrary,
    /** Choices `minductor tune` stored for this graph on this machine, with their libraries. */
    private readonly tuning?: TunedVariants,
  ) {
    this.main = { graph, native, masks: new BlockMaskCache(graph, native) };
  }

  /** The kernel's C++ as one self-contained source (what `generate` and `--emit cpp` give), rendered on first use. */
  get source(): string {
    return this.generated().cpp;
  }

  /** The C header of `source`. */
  get header(): string {
    return this.generated().header;
  }

  private generated(): KernelSource {
    this.selfContained ??= renderKernel(this.graph, renderMods(this.graph));
    return this.selfContained;
  }

  /** The template the selector picks for the spec's own shapes. */
  get template(): TemplateName {
    const f = this.defaultFeatures();
    return this.choose(f, undefined, this.tuning?.lookup(f)?.choice).template;
  }

  /** Runs the kernel on the calling thread. */
  run(inputs: KernelInputs, options: RunOptions = {}): KernelOutputs {
    const { target, mask, runOptions, shape } = this.plan(inputs, options);
    return runKernel(target.native, target.graph, inputs, mask, runOptions, shape);
  }

  /**
   * Where a call with these inputs would read and write: for query, key, value, out and lse, the ArrayBuffer, byte
   * offset and strides the kernel is given (validated exactly as `run` validates). Views are passed as they are, so
   * the buffers are the caller's own: an engine can check that nothing it holds is copied.
   */
  bindings(inputs: KernelInputs, options: RunOptions = {}): Record<"query" | "key" | "value" | "out" | "lse", TensorBinding | null> {
    const { target, mask, runOptions, shape } = this.plan(inputs, options);
    return bindingsOf(prepareCall(target.graph, inputs, runOptions, shape, mask).args);
  }

  /** Runs the kernel on a worker thread, keeping the event loop free. */
  async runAsync(inputs: KernelInputs, options: RunOptions = {}): Promise<KernelOutputs> {
    const { target, mask, runOptions, shape } = this.plan(inputs, options, true);
    return runKernelAsync(target.native, target.graph, inputs, mask, runOptions, shape);
  }

  /** The choice the selector makes for a call with these inputs. */
  choiceFor(inputs: KernelInputs, options: RunOptions = {}): Choice {
    const f = this.featuresOf(validateInputs(this.graph, inputs), options);
    return this.choose(f, options.policy, this.tunedFor(f, inputs, options)?.choice);
  }

  /** The block mask of mask_mod for a call's lengths (PyTorch's layout), computed once and reusable across calls. */
  createBlockMask(batch: number, qLen: number, kvLen: number, inputs?: Pick<KernelInputs, "buffers" | "seqLens">): BlockMask {
    return this.main.masks.build(batch, qLen, kvLen, inputs?.buffers, inputs?.seqLens);
  }

  /**
   * The graph, its mods' IR, and the template decision for the given (default: the spec's) shapes; the decision
   * says `policy tuned` when a choice stored by `minductor tune` for the shapes' bucket was used.
   */
  explain(shapes: CallShapeOverrides = {}, policy?: "auto" | "pytorch"): string {
    const f = this.defaultFeatures(shapes);
    return `${describeGraph(this.graph)}\n\n${describeChoice(f, this.choose(f, policy, this.tuning?.lookup(f)?.choice))}`;
  }

  /** Shape buckets with a tuned choice for this graph on this machine (see `minductor tune`). */
  get tunedBuckets(): string[] {
    return this.tuning?.buckets ?? [];
  }

  /** `async`: the call runs on a worker thread, so a mask built here must stay as it is while other calls run. */
  private plan(inputs: KernelInputs, options: RunOptions, async = false) {
    const shape = validateInputs(this.graph, inputs);
    if (options.template === "naive") {
      return { target: this.main, mask: undefined, shape, runOptions: { template: "naive" as const, partitionSize: options.partitionSize, numThreads: options.numThreads ?? 0, out: options.out, lse: options.lse } };
    }
    const f = this.featuresOf(shape, options);
    const tuned = this.tunedFor(f, inputs, options);
    const choice = this.choose(f, options.policy, tuned?.choice);
    const target = (choice.policy === "tuned" && tuned?.variant) || this.main;
    const template = options.template ?? choice.template;
    const mask = options.blockMask ?? inputs.blockMask ?? target.masks.get(shape, inputs, async);
    return {
      target,
      mask,
      shape,
      runOptions: {
        template,
        partitionSize: options.partitionSize ?? choice.partitionSize,
        numThreads: options.numThreads ?? choice.numThreads ?? 0,
        out: options.out,
        lse: options.lse,
      },
    };
  }

  /**
   * The tuned choice for a call, unless the caller steers it: a forced template or partition size, the pytorch
   * policy, or a block mask of the graph's block sizes that a variant with other blocks could not read.
   */
  private tunedFor(f: CallFeatures, inputs: KernelInputs, options: RunOptions) {
    if (!this.tuning || options.template !== undefined || options.partitionSize !== undefined || options.policy === "pytorch") return undefined;
    const tuned = this.tuning.lookup(f);
    const ownMask = options.blockMask ?? inputs.blockMask;
    if (!tuned || (ownMask && tuned.variant)) return undefined;
    return tuned;
  }

  private choose(f: CallFeatures, policy?: "auto" | "pytorch", tuned?: TunedChoice): Choice {
    return selectTemplate(f, policy ?? this.graph.kernelOptions.policy ?? "auto", tuned);
  }

  /** A ragged call is judged by its shortest sequence: the decoding entry decodes the short ones and runs the prefill
   * template over the others, in one call. */
  private featuresOf(shape: CallShape, options: RunOptions): CallFeatures {
    const kvTokens = shape.paged ? shape.paged.numPages * this.graph.kvCache!.pageSize : shape.kvLen;
    const qLen = shape.qStartLoc ? shape.minQLen : shape.qLen;
    const queryRows = shape.totalQ ?? shape.batch * shape.qLen;
    return callFeatures(this.graph, { batch: shape.batch, qLen, kvLen: shape.kvLen, kvTokens, threads: this.threads(options.numThreads), queryRows });
  }

  private defaultFeatures(shapes: CallShapeOverrides = {}): CallFeatures {
    return specFeatures(this.graph, { ...shapes, threads: shapes.threads ?? this.threads() });
  }

  /** The threads a call runs on: one for an engine built without OpenMP, whatever was asked. */
  private threads(requested?: number): number {
    return this.library.engine.threaded ? requested || defaultThreads() : 1;
  }
}

/**
 * Features of a call at the spec's own shapes, or the given ones (what `explain` decides for). A ragged spec's call
 * is judged by its shortest sequence, as `run` judges it: at these shapes, the shortest of the batch that
 * generated inputs (and so `minductor run`) would draw, whose longest sequence has qLen rows.
 */
export function specFeatures(g: AttentionGraph, shapes: CallShapeOverrides = {}): CallFeatures {
  const batch = shapes.batch ?? g.query.shape[0];
  const paged = g.kvCache !== undefined;
  const poolTokens = g.key.shape[0] * (g.kvCache?.pageSize ?? 0);
  const kvLen = shapes.kvLen ?? (paged ? Math.max(1, Math.floor(g.key.shape[0] / batch)) * g.kvCache!.pageSize : g.key.shape[2]);
  const qLen = shapes.qLen ?? g.query.shape[2];
  const rows = g.raggedQuery ? Array.from({ length: batch }, (_, b) => raggedQueryRows(batch, qLen, b)) : [];
  return callFeatures(g, {
    batch,
    qLen: g.raggedQuery ? rows.reduce((a, b) => Math.min(a, b)) : qLen,
    queryRows: g.raggedQuery ? rows.reduce((a, b) => a + b) : batch * qLen,
    kvLen,
    kvTokens: paged ? Math.max(poolTokens, batch * kvLen) : kvLen,
    threads: shapes.threads ?? defaultThreads(),
  });
}
