// A custom score_mod with a captured table: a learned relative-position bias per head, bucketed by distance
// (T5 style), read from a 2-D float32 buffer.
// Run: npx tsx examples/ts/custom_table.ts
import { compile, flexAttention, generateInputs, referenceAttention, tensor } from "minductor";
import { checkOutput } from "./checkOutput.js";

export async function main(): Promise<boolean> {
  const heads = 4;
  const buckets = 32;
  const graph = flexAttention({
    name: "relative_bias_table",
    query: { shape: [1, heads, 192, 64], dtype: "float32" },
    key: { shape: [1, heads, 192, 64], dtype: "float32" },
    value: { shape: [1, heads, 192, 64], dtype: "float32" },
    buffers: { table: { shape: [heads, buckets], dtype: "float32" } },
    // distance buckets of 8 positions, clamped to the table
    scoreMod: "score + table[h][clamp(abs(q_idx - kv_idx) // 8, 0, 31)]",
  });
  const kernel = await compile(graph);
  const inputs = generateInputs(graph, 5);
  inputs.buffers.table = tensor("float32", [heads, buckets], Float32Array.from({ length: heads * buckets }, (_, i) => -0.05 * (i % buckets) + 0.1 * Math.floor(i / buckets)));
  const { out } = kernel.run(inputs);
  const check = checkOutput(out, referenceAttention(graph, inputs).out, "float32");
  console.log(`relative bias table: max abs error ${check.maxAbs.toExponential(2)}`);
  return check.ok;
}

if (import.meta.url === `file://${process.argv[1]}`) await main();
