/**
 * -O0 without forced inlining (md_base.h): an engine in about a fifth of the default -O3's g++ time (1.2 s against
 * 6.3 of CPU on the AVX-512 VMs), running the same source: the same intrinsics, no fast-math at either level. The one
 * difference in the values is scalar code: -O0 never contracts `a * b + c` into an FMA, -O3 does (each rounding
 * stays within the tolerances of src/reference/compareOutputs.ts, which every such test checks). The test shapes are
 * small, so the slower code costs less than the build it saves (-O1 took 2.8 s of CPU an engine).
 *
 * Which files build with it: the fuzzer, the bf16 and int8 dot-product tests, the files whose kernels exercise the
 * machinery around the kernel (the bench's plumbing, tuning, cache warming, compile faults) and the e2e files that
 * check configurations of their own (decoding, layouts, IEEE semantics, example specs in another dtype), and the CLI's
 * fp8 specs. The example specs in their own dtype, the CLI's other kernels (an int8 key/value among them) and the
 * TypeScript examples' kernels keep the default flags: the shipping build of every template, dtype, paging, GQA
 * packing and 8-bit key/value is checked against the reference there.
 */
export const FAST_BUILD_CXXFLAGS = ["-O0", "-DMD_NO_FORCED_INLINE", "-march=native", "-fopenmp", "-shared", "-fPIC", "-std=gnu++17"];

/** Sets MINDUCTOR_CXXFLAGS for the rest of this test file's process (and the processes it starts). */
export function useFastBuilds(): void {
  process.env.MINDUCTOR_CXXFLAGS = FAST_BUILD_CXXFLAGS.join(" ");
}
