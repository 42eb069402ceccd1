/** The kernels of quantized.test.ts, shared with the suite's prebuild (test/globalSetup.ts). */
import type { AttentionGraph, QuantizedDType } from "../../src/ir/graph.js";
import { FAST_BUILD_CXXFLAGS } from "../helpers/fastBuilds.js";
import { sweep } from "../helpers/sweeps.js";
import { exampleGraphs } from "../native/harnessTools.js";

export const QUANTIZED: QuantizedDType[] = ["int8", "float8_e4m3fn", "float8_e5m2"];
export const EXAMPLES = exampleGraphs();
export const identity = EXAMPLES.find(([name]) => name === "identity")![1];
/** Semantics, not speed: the suite's fast builds (-O0 without forced inlining, test/helpers/fastBuilds.ts). */
export const CXXFLAGS = FAST_BUILD_CXXFLAGS;

/**
 * The vector paths of the conversions: this machine's (AVX-512 or AVX2), AVX2 + F16C, and plain x86-64 (scalar), each
 * run where it is compiled (every x86-64 CPU runs the narrower ones).
 */
export const ISAS: Record<string, string[]> = { native: [], avx2: ["-march=haswell"], scalar: ["-march=x86-64"] };

export function quantizedGraph(graph: AttentionGraph, dtype: QuantizedDType): AttentionGraph {
  return { ...graph, key: { ...graph.key, dtype }, value: { ...graph.value, dtype } };
}

/**
 * Every example spec with each 8-bit key/value format: a sweep (test/helpers/sweeps.ts). `npm test` checks every spec
 * in one format (the formats in turn, so each appears with paged and unpaged, decode and prefill specs) and the
 * identity spec in all three, whose engines the code tests build anyway; `npm run test:sweeps` the other pairs.
 */
export const EXAMPLE_CASES = sweep(
  EXAMPLES.flatMap(([name, graph], i) => QUANTIZED.map((dtype, f) => ({ name, dtype, graph: quantizedGraph(graph, dtype), inSample: name === "identity" || i % QUANTIZED.length === f }))),
  (c) => c.inSample,
);

/** The cxxflags of the build of a graph for an ISA of ISAS. */
export function cxxflagsFor(isa: string): string[] {
  return [...CXXFLAGS, ...ISAS[isa]];
}

/** Every (graph, cxxflags) the file builds. */
export function quantizedKernels(): Array<{ graph: AttentionGraph; cxxflags: string[] }> {
  return [
    ...EXAMPLE_CASES.map((c) => ({ graph: c.graph, cxxflags: cxxflagsFor("native") })),
    ...QUANTIZED.flatMap((dtype) => ["avx2", "scalar"].map((isa) => ({ graph: quantizedGraph(identity, dtype), cxxflags: cxxflagsFor(isa) }))),
  ];
}
