import { readdirSync, readFileSync } from "node:fs";
import { join } from "node:path";
import { describe, it } from "vitest";
import { parseSpec } from "../../src/ir/spec.js";
import { expectMatchesReference, prebuild } from "../helpers/checkKernel.js";
import { DTYPES, inDType } from "./dtypeVariants.js";

const dir = join(import.meta.dirname, "..", "..", "examples", "specs");
const specs = readdirSync(dir).filter((f) => f.endsWith(".json")).sort();
const load = (file: string) => parseSpec(readFileSync(join(dir, file), "utf8"));

prebuild(specs.map(load));
for (const dtype of DTYPES) {
  for (const file of ["alibi.json", "document_mask.json"]) {
    const { graph, cxxflags } = inDType(load(file), dtype);
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
    const { graph, cxxflags } = inDType(load("alibi.json"), dtype);
    await expectMatchesReference(graph, { shapes: SMALL, cxxflags });
  });
  it.each(DTYPES)("document mask (int buffer) in %s", async (dtype) => {
    const { graph, cxxflags } = inDType(load("document_mask.json"), dtype);
    await expectMatchesReference(graph, { shapes: { qLen: 100, kvLen: 100 }, cxxflags });
  });
});
