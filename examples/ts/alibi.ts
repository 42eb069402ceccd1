// ALiBi (attention with linear biases) on a causal mask, written as a traced TypeScript score_mod.
// Run: npx tsx examples/ts/alibi.ts
import { buffer, compile, flexAttention, generateInputs, referenceAttention, tensor } from "minductor";
import { checkOutput } from "./checkOutput.js";

export async function main(): Promise<boolean> {
  const heads = 8;
  const slopes = buffer("slopes");
  const graph = flexAttention({
    name: "alibi_causal",
    query: { shape: [1, heads, 256, 64], dtype: "float32" },
    key: { shape: [1, heads, 256, 64], dtype: "float32" },
    value: { shape: [1, heads, 256, 64], dtype: "float32" },
    buffers: { slopes: { shape: [heads], dtype: "float32" } },
    scoreMod: (score, _b, h, q_idx, kv_idx) => score.add(slopes.at(h).mul(kv_idx.sub(q_idx))),
    maskMod: (_b, _h, q_idx, kv_idx) => q_idx.ge(kv_idx),
  });
  const kernel = await compile(graph);
  const inputs = generateInputs(graph, 1);
  // The usual ALiBi slopes: a geometric sequence 2^(-8/heads), 2^(-16/heads), ...
  inputs.buffers.slopes = tensor("float32", [heads], Float32Array.from({ length: heads }, (_, i) => -(2 ** (-8 * (i + 1) / heads))));
  const { out } = kernel.run(inputs);
  const ref = referenceAttention(graph, inputs);
  const check = checkOutput(out, ref.out, "float32");
  console.log(`alibi: ${kernel.choiceFor(inputs).template}, out [${out.shape.join(", ")}], max abs error vs float64 ${check.maxAbs.toExponential(2)}`);
  return check.ok;
}

if (import.meta.url === `file://${process.argv[1]}`) await main();
