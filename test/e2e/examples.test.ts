/**
 * Every example spec against the float64 reference, and two of them in every dtype. `npm test` checks every spec, the
 * shipping sample at the default flags and the others built fast (test/helpers/fastBuilds.ts, SHIPPING_SAMPLE);
 * `npm run test:sweeps` checks the others at the default flags, and only that.
 */
import { readdirSync, readFileSync } from "node:fs";
import { basename, join } from "node:path";
import { describe, it } from "vitest";
import { parseSpec } from "../../src/ir/spec.js";
import { expectMatchesReference, prebuild } from "../helpers/checkKernel.js";
import { exampleCxxflags, SHIPPING_SAMPLE } from "../helpers/fastBuilds.js";
import { sweep, sweepPart } from "../helpers/sweeps.js";
import { DTYPES, inDType } from "./dtypeVariants.js";

const dir = join(import.meta.dirname, "..", "..", "examples", "specs");
const allSpecs = readdirSync(dir).filter((f) => f.endsWith(".json")).sort();
const nameOf = (file: string) => basename(file, ".json");
/** The sweep's rest: the specs outside the shipping sample, at the default flags. */
const rest = sweepPart() === "rest";
const specs = rest ? sweep(allSpecs, (file) => SHIPPING_SAMPLE.has(nameOf(file))) : allSpecs;
const load = (file: string) => parseSpec(readFileSync(join(dir, file), "utf8"));

for (const file of specs) prebuild([load(file)], exampleCxxflags(nameOf(file)));
if (!rest) {
  for (const dtype of DTYPES) {
    for (const file of ["alibi.json", "document_mask.json"]) {
      const { graph, cxxflags } = inDType(load(file), dtype);
      prebuild([graph], cxxflags);
    }
  }
}

/** Smaller than the specs' defaults, with lengths that are not multiples of the block sizes. */
const SMALL = { qLen: 129, kvLen: 200 };

describe("every example spec matches the float64 reference", () => {
  const builds = specs.map((file) => [file, exampleCxxflags(nameOf(file)) ? "built fast" : "at the default flags"]);
  it.each(builds)("%s in its own dtype, at the spec's shapes, %s", async (file) => {
    const graph = load(file);
    await expectMatchesReference(graph, { shapes: graph.query.shape[2] === 1 ? { kvLen: 1000 } : SMALL, cxxflags: exampleCxxflags(nameOf(file)) });
  });
});

describe.skipIf(rest)("dtypes", () => {
  it.each(DTYPES)("alibi (float buffer) in %s", async (dtype) => {
    const { graph, cxxflags } = inDType(load("alibi.json"), dtype);
    await expectMatchesReference(graph, { shapes: SMALL, cxxflags });
  });
  it.each(DTYPES)("document mask (int buffer) in %s", async (dtype) => {
    const { graph, cxxflags } = inDType(load("document_mask.json"), dtype);
    await expectMatchesReference(graph, { shapes: { qLen: 100, kvLen: 100 }, cxxflags });
  });
});
