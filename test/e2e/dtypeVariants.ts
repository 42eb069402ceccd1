/** The example specs that e2e/examples.test.ts runs in every dtype, shared with the suite's prebuild (test/helpers/suiteKernels.ts). */
import { overrideDType } from "../../src/cli/overrideDType.js";
import type { AttentionGraph } from "../../src/ir/graph.js";
import { FAST_BUILD_CXXFLAGS } from "../helpers/fastBuilds.js";

export const DTYPES = ["float32", "bfloat16", "float16"] as const;

/**
 * A spec in `dtype`: in its own dtype it is the example spec itself, at the default flags (-O3) as users build it; in
 * another it is a configuration of the test's own and builds fast (test/helpers/fastBuilds.ts).
 */
export function inDType(graph: AttentionGraph, dtype: string): { graph: AttentionGraph; cxxflags?: readonly string[] } {
  return graph.query.dtype === dtype ? { graph } : { graph: overrideDType(graph, dtype), cxxflags: FAST_BUILD_CXXFLAGS };
}
