/** The runtime stage: load a compiled kernel, validate a call's inputs, run it and return its outputs. */
export { type BlockMask, type BlockMaskTarget, allocateBlockMask, blocksFor, validateBlockMask } from "./blockMask.js";
export { type BlockMaskGeometry, buildBlockMask, buildBlockMaskAsync } from "./buildBlockMask.js";
export { InputError, KernelRuntimeError, LibraryError, throwOnStatus } from "./errors.js";
export {
  type EntryPoint,
  MD_ABI_VERSION,
  type NativeArgs,
  type NativeLibrary,
  ModsMismatchError,
  mdArgsLayout,
  openLibrary,
  openSplitLibrary,
} from "./nativeLibrary.js";
export { type KernelOutputs, type PreparedCall, encodeArgs, prepareCall } from "./prepareCall.js";
export { runKernel, runKernelAsync } from "./runKernel.js";
export { type ResolvedRunOptions, type RunOptions, type RunTemplate, resolveRunOptions } from "./runOptions.js";
export { type CallShape, type KernelInputs, validateInputs } from "./validateInputs.js";
export type { DType, Tensor } from "./tensor.js";
