import { readdirSync, readFileSync } from "node:fs";
import { join } from "node:path";
import { describe, it } from "vitest";
import { overrideDType } from "../../src/cli/overrideDType.js";
import { parseSpec } from "../../src/ir/spec.js";
import { expectMatchesReference, prebuild } from "../helpers/checkKernel.js";
import { FAST_BUILD_CXXFLAGS } from "../helpers/fastBuilds.js";

const dir = join(import.meta.dirname, "..", "..", "examples", "specs");
const specs = readdirSync(dir).filter((f) => f.endsWith(".json")).sort();
const load = (file: string) => parseSpec(readFileSync(join(dir, file), "utf8"));

/**
 * Every spec at the default flags (-O3), as users build it; a spec in another dtype than its own is a configuration
 * of this file's own and builds fast (test/helpers/fastBuilds.ts).
 */
const DTYPES = ["float32", "bfloat16", "float16"] as const;
const inDType = (file: string, dtype: string) => {
  const graph = load(file);
  return { graph: overrideDType(graph, dtype), cxxflags: graph.query.dtype === dtype ? undefined : FAST_BUILD_CXXFLAGS };
};

prebuild(specs.map(load));
for (const dtype of DTYPES) {
  for (const file of ["alibi.json", "document_mask.json"]) {
    const { graph, cxxflags } = inDType(file, dtype);
    prebuild([graph], cxxflags);
  }
}

/** Smaller than the specs' defaults, with lengths that are not multiples of the block sizes. */
const SMALL = { qLen: 129, kvLen: 200 };

describe("every example spec matches the float64 reference", () => {
  it.each(specs)("%s in its own dtype, at the spec's shapes", async (file) => {
    const graph = load(file);
    await expectMatchesReference(graph, { shapes: graph.query.shape[2] === 1 ? { kvLen: 1000 } : SMALL });
  });
});

describe("dtypes", () => {
  it.each(DTYPES)("alibi (float buffer) in %s", async (dtype) => {
    const { graph, cxxflags } = inDType("alibi.json", dtype);
    await expectMatchesReference(graph, { shapes: SMALL, cxxflags });
  });
  it.each(DTYPES)("document mask (int buffer) in %s", async (dtype) => {
    const { graph, cxxflags } = inDType("document_mask.json", dtype);
    await expectMatchesReference(graph, { shapes: { qLen: 100, kvLen: 100 }, cxxflags });
  });
});
