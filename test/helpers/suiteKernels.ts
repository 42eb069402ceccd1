/**
 * The kernels the suite's heaviest files build in the shared compile cache, in about the order they are needed:
 * test/globalSetup.ts builds them in the background while the first files run. Each file still compiles what it
 * uses (a hit, or a wait on the build in flight, when the prebuild got there first), so this list only decides
 * what is built early, never what is tested.
 */
import type { CompileOptions } from "../../src/compile/index.js";
import { demoGraph } from "../../src/demo/demo.js";
import type { AttentionGraph } from "../../src/ir/graph.js";
import { parseSpec } from "../../src/ir/spec.js";
import { DECODING_CXXFLAGS, decodingGraphs } from "../e2e/decodingGraphs.js";
import { DTYPES, inDType } from "../e2e/dtypeVariants.js";
import { quantizedKernels } from "../e2e/quantizedKernels.js";
import { FUZZ_CXXFLAGS, plannedSpecs, suiteSearches } from "../fuzz/runFuzz.js";
import { exampleGraphs } from "../native/harnessTools.js";
import { exampleCxxflags } from "./fastBuilds.js";

export interface SuiteKernel {
  graph: AttentionGraph;
  options: CompileOptions;
}

export function suiteKernels(env: Record<string, string | undefined> = process.env): SuiteKernel[] {
  const examples = exampleGraphs();
  const byName = new Map(examples);
  const kernels: SuiteKernel[] = [
    // e2e/quantized.test.ts
    ...quantizedKernels().map(({ graph, cxxflags }) => ({ graph, options: { cxxflags } })),
    // e2e/decoding.test.ts, and the example specs at this run's flags (e2e/examples, native/harness, ...)
    ...decodingGraphs().map((graph) => ({ graph, options: { cxxflags: [...DECODING_CXXFLAGS] } })),
    ...examples.map(([name, graph]) => ({ graph, options: flagsOption(exampleCxxflags(name)) })),
    // cli/demo.test.ts: what `npm start` builds
    { graph: demoGraph(), options: {} },
  ];
  // fuzz/kernels.test.ts, unless a longer or replayed search is asked for
  if (env.MINDUCTOR_FUZZ_RUNS === undefined && env.MINDUCTOR_FUZZ_PATH === undefined && env.MINDUCTOR_FUZZ_SEED === undefined && !env.MINDUCTOR_FUZZ_CXXFLAGS?.trim()) {
    for (const { seed, runs } of suiteSearches()) {
      for (const spec of plannedSpecs(seed, runs)) kernels.push({ graph: parseSpec(spec), options: { cxxflags: FUZZ_CXXFLAGS } });
    }
  }
  // e2e/examples.test.ts: two specs in every dtype
  // (in their own dtype they are the example specs above)
  for (const name of ["alibi", "document_mask"]) {
    for (const dtype of DTYPES) {
      const { graph, cxxflags } = inDType(byName.get(name)!, dtype);
      if (cxxflags) kernels.push({ graph, options: flagsOption(cxxflags) });
    }
  }
  return kernels;
}

const flagsOption = (cxxflags: readonly string[] | undefined): CompileOptions => (cxxflags ? { cxxflags: [...cxxflags] } : {});
