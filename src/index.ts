/**
 * minductor's public API. The pipeline, in order:
 *   parseSpec / flexAttention   spec or TS builder -> typed, simplified AttentionGraph      (src/ir)
 *   generate                    graph -> C++ source + C header (mods, templates)           (src/codegen)
 *   compile                     graph -> engine + mod library, cached and loaded -> Kernel (src/compile, src/runtime)
 *   kernel.run                  inputs -> validated -> template chosen per call -> outputs (src/select, src/runtime)
 */
import type { CompileOptions } from "./compile/index.js";
import { renderKernel, type KernelSource } from "./codegen/renderKernel.js";
import { renderMods } from "./codegen/renderMods.js";
import type { AttentionGraph } from "./ir/graph.js";
import { parseSpec } from "./ir/spec.js";
import { Kernel } from "./kernel.js";
import { buildKernelLibrary } from "./kernelLibrary.js";
import { loadTunedVariants } from "./tune/tunedVariants.js";

/**
 * The C++ of a graph as one self-contained source exporting the C ABI of docs/abi.md, and its header: engine and
 * mods together, for embedding (`compile()` builds and caches them apart, see src/kernelLibrary.ts).
 */
export function generate(graph: AttentionGraph): KernelSource {
  return renderKernel(graph, renderMods(graph));
}

type SpecLike = AttentionGraph | string | object;

/**
 * Generates, compiles (or finds in the cache) and loads the kernel of a graph: the engine of its configuration,
 * built once per configuration, and its mod library. A spec object or JSON text is accepted too and validated
 * first. Choices `minductor tune` stored for this graph on this machine are loaded too (with their block-size
 * variants) unless `tuning` is false. Given several specs, builds them together, up to one compiler per core.
 */
export async function compile(specs: readonly SpecLike[], options?: CompileOptions & { tuning?: boolean }): Promise<Kernel[]>;
export async function compile(spec: SpecLike, options?: CompileOptions & { tuning?: boolean }): Promise<Kernel>;
export async function compile(spec: SpecLike | readonly SpecLike[], options: CompileOptions & { tuning?: boolean } = {}): Promise<Kernel | Kernel[]> {
  if (Array.isArray(spec)) {
    // Parse every spec first, so a bad one fails before any compiler starts.
    const graphs = spec.map((s: SpecLike) => (isGraph(s) ? s : parseSpec(s)));
    return Promise.all(graphs.map((graph) => compileGraph(graph, options)));
  }
  return compileGraph(isGraph(spec) ? spec : parseSpec(spec), options);
}

async function compileGraph(graph: AttentionGraph, options: CompileOptions & { tuning?: boolean }): Promise<Kernel> {
  const { tuning, ...compileOptions } = options;
  const { library, native } = await buildKernelLibrary(graph, compileOptions);
  const tuned = tuning === false ? undefined : await loadTunedVariants(graph, compileOptions);
  return new Kernel(graph, library, native, tuned);
}

function isGraph(x: unknown): x is AttentionGraph {
  return typeof x === "object" && x !== null && "scoreMod" in x && typeof (x as AttentionGraph).scoreMod === "object" && "hash" in (x as AttentionGraph).scoreMod;
}

export { Kernel, type RunOptions, type CallShapeOverrides, defaultThreads } from "./kernel.js";
export type { KernelSource } from "./codegen/renderKernel.js";
export type { KernelLibrary } from "./kernelLibrary.js";
export type { CompileOptions, CompiledLibrary, CompileProgressEvent, CacheEntrySummary } from "./compile/index.js";
export { CompileError, CompilerNotFoundError, NO_OPENMP_WARNING_CODE } from "./compile/index.js";
export { listCache, clearCache, defaultCacheDir } from "./compile/index.js";

export { parseSpec, type Spec } from "./ir/spec.js";
export { flexAttention, type FlexAttentionOptions } from "./ir/flexAttention.js";
export { buffer, where, minimum, maximum, clamp, Sym, type SymLike, type ScoreModFn, type MaskModFn } from "./ir/trace.js";
export type { AttentionGraph, TensorSpec, TensorLayout, BufferSpec, KernelOptions, TemplateName, KvDType, QuantizedDType } from "./ir/graph.js";
export type { Expr } from "./ir/expr.js";
export { printExpr } from "./ir/printExpr.js";
export { describeGraph } from "./ir/describeGraph.js";
export { SpecError } from "./ir/errors.js";

export { selectTemplate, autoPartitionSize } from "./select/selectTemplate.js";
export type { TunedChoice } from "./select/tunedChoice.js";
export { callFeatures, type CallFeatures, type Choice, type Clause } from "./select/features.js";

export { createBlockMask, type CreateBlockMaskOptions } from "./runtime/createBlockMask.js";
export type { BlockMask } from "./runtime/blockMask.js";
export type { KernelInputs } from "./runtime/validateInputs.js";
export type { KernelOutputs, TensorBinding } from "./runtime/prepareCall.js";
export { InputError, KernelRuntimeError } from "./runtime/errors.js";
export { tensor, toFloat64, fromFloat64, type Tensor, type DType } from "./runtime/tensor.js";
export { view, permute, contiguous, contiguousStrides } from "./runtime/view.js";
export { quantizeKv, type QuantizedKv, type QuantizeOptions } from "./runtime/quantize.js";
export { toBfloat16, fromBfloat16, toFloat16, fromFloat16 } from "./runtime/dtypes.js";

export { referenceAttention, type ReferenceInputs, type ReferenceOutputs } from "./reference/referenceAttention.js";
export { generateInputs, type GeneratedInputs, type ShapeOverrides } from "./io/generateInputs.js";
export { readNpy, readNpyAs, writeNpy } from "./io/npy.js";
export { compareOutputs, TOLERANCE, type Comparison } from "./reference/compareOutputs.js";
export { rng } from "./io/random.js";
