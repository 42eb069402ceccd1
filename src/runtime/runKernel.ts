/** One kernel call: resolve the block mask, validate and encode, call the entry point, map its status. */
import type { AttentionGraph } from "../ir/graph.js";
import type { BlockMask } from "./blockMask.js";
import { buildBlockMask, buildBlockMaskAsync } from "./buildBlockMask.js";
import { BAD_SCALE_STATUS, throwOnStatus } from "./errors.js";
import type { EntryPoint, NativeLibrary } from "./nativeLibrary.js";
import { type KernelOutputs, type OutputTensors, prepareCall } from "./prepareCall.js";
import { type RunOptions, type RunTemplate, resolveRunOptions } from "./runOptions.js";
import { badScaleError, type CallShape, type KernelInputs } from "./validateInputs.js";

const ENTRIES: Record<RunTemplate, { entry: EntryPoint; symbol: string }> = {
  flash_attention: { entry: "flashAttention", symbol: "md_flash_attention" },
  flash_decoding: { entry: "flashDecoding", symbol: "md_flash_decoding" },
  naive: { entry: "naive", symbol: "md_naive_attention" },
};

/**
 * Runs the kernel synchronously. The mask is `blockMask`, else `inputs.blockMask`, else one built natively
 * from mask_mod (the naive template ignores masks, so it gets none). `validated`: see prepareCall.
 */
export function runKernel(
  lib: NativeLibrary,
  graph: AttentionGraph,
  inputs: KernelInputs,
  blockMask?: BlockMask,
  options: RunOptions & OutputTensors = {},
  validated?: CallShape,
): KernelOutputs {
  const { template } = resolveRunOptions(graph, options);
  let mask = blockMask ?? inputs.blockMask;
  if (!mask && template !== "naive") mask = buildBlockMask(lib, graph, inputs, {}, validated);
  const call = prepareCall(graph, inputs, options, validated, mask);
  const { entry, symbol } = ENTRIES[call.template];
  throwOnCallStatus(lib.call(entry, call.args), symbol, inputs);
  return call.outputs;
}

/** `runKernel` with the native work on koffi's worker threads, so the event loop stays free meanwhile. */
export async function runKernelAsync(
  lib: NativeLibrary,
  graph: AttentionGraph,
  inputs: KernelInputs,
  blockMask?: BlockMask,
  options: RunOptions & OutputTensors = {},
  validated?: CallShape,
): Promise<KernelOutputs> {
  const { template } = resolveRunOptions(graph, options);
  let mask = blockMask ?? inputs.blockMask;
  if (!mask && template !== "naive") mask = await buildBlockMaskAsync(lib, graph, inputs, {}, validated);
  const call = prepareCall(graph, inputs, options, validated, mask);
  const { entry, symbol } = ENTRIES[call.template];
  throwOnCallStatus(await lib.callAsync(entry, call.args), symbol, inputs);
  return call.outputs;
}

/** throwOnStatus for an attention entry point; a bad scale (status 4) is named from `inputs`. */
function throwOnCallStatus(status: number, symbol: string, inputs: KernelInputs): void {
  if (status === BAD_SCALE_STATUS) throw badScaleError(inputs);
  throwOnStatus(status, symbol);
}
