import { describe, expect, it } from "vitest";
import { generateInputs } from "../../src/io/generateInputs.js";
import { parseSpec } from "../../src/ir/spec.js";
import { specFeatures } from "../../src/kernel.js";
import { callCost } from "../../src/select/describeChoice.js";

/** What `explain` reports a call moves: checked against the bytes of the tensors such a call is given. */
describe("callCost", () => {
  const spec = (dtype: string, extra: object = {}) => ({
    name: "cost",
    query: { shape: [2, 8, 16, 64], dtype: dtype === "int8" || dtype.startsWith("float8") ? "float32" : dtype },
    key: { shape: [2, 2, 40, 64], dtype },
    value: { shape: [2, 2, 40, 32], dtype },
    ...extra,
  });

  it.each(["float32", "bfloat16", "int8", "float8_e5m2"])("K/V bytes are those of the key and value (and int8 scales): %s", (dtype) => {
    const graph = parseSpec(spec(dtype));
    const inputs = generateInputs(graph, 1);
    // int8's scales are per (token, head) and counted; an fp8 cache's optional per-head scale is a few bytes, not.
    const scales = dtype === "int8" ? [inputs.keyScale, inputs.valueScale] : [];
    const bytes = [inputs.key, inputs.value, ...scales].reduce((n, t) => n + t!.data.byteLength, 0);
    expect(callCost(specFeatures(graph)).kvBytes).toBe(bytes);
  });

  it("FLOPs count every query row of a ragged call, not its shortest sequence times the batch", () => {
    const graph = parseSpec(spec("float32", { raggedQuery: true, query: { shape: [3, 8, 16, 64], dtype: "float32" }, key: { shape: [3, 2, 40, 64], dtype: "float32" }, value: { shape: [3, 2, 40, 32], dtype: "float32" } }));
    const inputs = generateInputs(graph, 1);
    const starts = inputs.qStartLoc!.data as Int32Array;
    const totalQ = starts[starts.length - 1];
    const f = specFeatures(graph);
    expect(f.qLen).toBe(Math.min(...Array.from({ length: 3 }, (_, b) => starts[b + 1] - starts[b])));
    expect(f.qLen * 3).toBeLessThan(totalQ);
    // QK^T and PV: 2 FLOPs per multiply-add, D + Dv multiply-adds per (row, head, kv position)
    expect(callCost(f).flops).toBe(2 * totalQ * 8 * f.kvLen * (64 + 32));
  });
});
