import { type SweepPart, sweepPart } from "./sweeps.js";

/**
 * -O0 without forced inlining (md_base.h): an engine in about a fifth of the default -O3's g++ time (1.2 s against
 * 6.3 of CPU on the AVX-512 VMs), running the same source: the same intrinsics, no fast-math at either level. The one
 * difference in the values is scalar code: -O0 never contracts `a * b + c` into an FMA, -O3 does (each rounding
 * stays within the tolerances of src/reference/compareOutputs.ts, which every such test checks). The test shapes are
 * small, so the slower code costs less than the build it saves (-O1 took 2.8 s of CPU an engine).
 *
 * Which files build with it: the fuzzer, the bf16 and int8 dot-product tests, the files whose kernels exercise the
 * machinery around the kernel (the bench's plumbing, tuning, cache warming, compile faults) and the e2e files that
 * check configurations of their own (decoding, layouts, IEEE semantics, example specs in another dtype), the CLI's
 * fp8 specs, and in `npm test` the example specs outside SHIPPING_SAMPLE (below) and the TypeScript examples. The
 * sampled example specs, the demo and the CLI's other kernels (an int8 key/value among them) keep the default flags:
 * the shipping build of both templates, every dtype, paging, ragged batches, GQA packing and an 8-bit key/value is
 * checked against the reference in `npm test`, and of every example spec and TypeScript example in
 * `npm run test:sweeps`.
 */
export const FAST_BUILD_CXXFLAGS = ["-O0", "-DMD_NO_FORCED_INLINE", "-march=native", "-fopenmp", "-shared", "-fPIC", "-std=gnu++17"];

/**
 * The example specs whose kernels `npm test` builds at the default flags (-O3), a sweep (test/helpers/sweeps.ts):
 * bf16 prefill with GQA packing in BSHD, fp32 ragged batches on a paged cache, fp16 paged decode at G 4, D 128. The
 * twelve example specs have ten engines, about 60 s of the suite's g++ CPU at -O3 (5-7 s each) against 9 s fast: the
 * specs outside this list build fast in `npm test` wherever the suite compiles them (every check of them still runs),
 * and e2e/examples.test.ts checks them at the default flags in `npm run test:sweeps`.
 */
export const SHIPPING_SAMPLE: ReadonlySet<string> = new Set(["bshd_prefill", "ragged_paged", "paged_decode"]);

/** The flags the example spec `name` (file name without `.json`) builds with in this run: undefined for the defaults. */
export function exampleCxxflags(name: string, part: SweepPart = sweepPart()): readonly string[] | undefined {
  return part === "sample" && !SHIPPING_SAMPLE.has(name) ? FAST_BUILD_CXXFLAGS : undefined;
}

/** Sets MINDUCTOR_CXXFLAGS for the rest of this test file's process (and the processes it starts). */
export function useFastBuilds(): void {
  process.env.MINDUCTOR_CXXFLAGS = FAST_BUILD_CXXFLAGS.join(" ");
}
