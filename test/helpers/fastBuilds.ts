/**
 * Flags for the test files whose kernels exercise machinery around the kernel (the bench's plumbing, tuning, cache
 * warming), not the kernel's arithmetic as shipped: -O1 without forced inlining (md_base.h) builds an engine in about
 * a third of the default -O3's time and computes the same values. Every file that checks kernels against the float64
 * reference through compile() keeps the default flags.
 */
export const FAST_BUILD_CXXFLAGS = ["-O1", "-DMD_NO_FORCED_INLINE", "-march=native", "-fopenmp", "-shared", "-fPIC", "-std=gnu++17"];

/** Sets MINDUCTOR_CXXFLAGS for the rest of this test file's process (and the processes it starts). */
export function useFastBuilds(): void {
  process.env.MINDUCTOR_CXXFLAGS = FAST_BUILD_CXXFLAGS.join(" ");
}
