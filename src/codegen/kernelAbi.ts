/**
 * Version of the C ABI in docs/abi.md that rendered kernels export through `md_abi_version()`; bump it whenever
 * `md_args`, an entry point or a status code changes, so a stale cached library is refused instead of misread.
 */
export const KERNEL_ABI_VERSION = 3;

/**
 * Batch sizes and q/kv lengths are below 2^31 (block indices are int32 in the ABI; the runtime refuses longer calls
 * and `md_args_ok` does too). The code generator relies on it: a position is an int32, so `kv_idx - q_idx` is
 * converted to float32 with the int32 instruction, which rounds exactly as the int64 conversion does.
 */
export const MAX_POSITIONS = 2 ** 31 - 1;
