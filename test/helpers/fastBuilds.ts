/**
 * -O1 without forced inlining (md_base.h): an engine in about a third of the default -O3's time, computing the same
 * values. The fuzzer, the bf16 dot-product tests and the test files whose kernels exercise machinery around the
 * kernel (the bench's plumbing, tuning, cache warming, compile faults) build with it; every other file that checks
 * kernels against the float64 reference through compile() keeps the default flags.
 */
export const FAST_BUILD_CXXFLAGS = ["-O1", "-DMD_NO_FORCED_INLINE", "-march=native", "-fopenmp", "-shared", "-fPIC", "-std=gnu++17"];

/** Sets MINDUCTOR_CXXFLAGS for the rest of this test file's process (and the processes it starts). */
export function useFastBuilds(): void {
  process.env.MINDUCTOR_CXXFLAGS = FAST_BUILD_CXXFLAGS.join(" ");
}
