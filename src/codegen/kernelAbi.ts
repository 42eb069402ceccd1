/**
 * Version of the C ABI in docs/abi.md that rendered kernels export through `md_abi_version()`; bump it whenever
 * `md_args`, an entry point or a status code changes, so a stale cached library is refused instead of misread.
 */
export const KERNEL_ABI_VERSION = 1;
