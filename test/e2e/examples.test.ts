import { readdirSync, readFileSync } from "node:fs";
import { join } from "node:path";
import { describe, it } from "vitest";
import { overrideDType } from "../../src/cli/overrideDType.js";
import { parseSpec } from "../../src/ir/spec.js";
import { expectMatchesReference, prebuild } from "../helpers/checkKernel.js";

const dir = join(import.meta.dirname, "..", "..", "examples", "specs");
const specs = readdirSync(dir).filter((f) => f.endsWith(".json")).sort();
const load = (file: string) => parseSpec(readFileSync(join(dir, file), "utf8"));

prebuild([
  ...specs.map(load),
  ...["float32", "bfloat16", "float16"].flatMap((dtype) => [overrideDType(load("alibi.json"), dtype), overrideDType(load("document_mask.json"), dtype)]),
]);

/** Smaller than the specs' defaults, with lengths that are not multiples of the block sizes. */
const SMALL = { qLen: 129, kvLen: 200 };

describe("every example spec matches the float64 reference", () => {
  it.each(specs)("%s in its own dtype, at the spec's shapes", async (file) => {
    const graph = load(file);
    await expectMatchesReference(graph, { shapes: graph.query.shape[2] === 1 ? { kvLen: 1000 } : SMALL });
  });
});

describe("dtypes", () => {
  it.each(["float32", "bfloat16", "float16"])("alibi (float buffer) in %s", async (dtype) => {
    await expectMatchesReference(overrideDType(load("alibi.json"), dtype), { shapes: SMALL });
  });
  it.each(["float32", "bfloat16", "float16"])("document mask (int buffer) in %s", async (dtype) => {
    await expectMatchesReference(overrideDType(load("document_mask.json"), dtype), { shapes: { qLen: 100, kvLen: 100 } });
  });
});
