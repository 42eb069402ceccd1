// Logit soft-capping (Gemma 2 style): score -> 30 * tanh(score / 30), in fp16.
// Run: npx tsx examples/ts/softcap.ts
import { compile, flexAttention, generateInputs, referenceAttention } from "minductor";
import { checkOutput } from "./checkOutput.js";

export async function main(): Promise<boolean> {
  const graph = flexAttention({
    name: "softcap",
    query: { shape: [2, 8, 128, 128], dtype: "float16" },
    key: { shape: [2, 8, 128, 128], dtype: "float16" },
    value: { shape: [2, 8, 128, 128], dtype: "float16" },
    scoreMod: (score) => score.div(30).tanh().mul(30),
    maskMod: "q_idx >= kv_idx",
  });
  const kernel = await compile(graph);
  const inputs = generateInputs(graph, 4);
  const { out } = kernel.run(inputs);
  const check = checkOutput(out, referenceAttention(graph, inputs).out, "float16");
  console.log(`soft-cap (fp16): max abs error ${check.maxAbs.toExponential(2)}`);
  return check.ok;
}

if (import.meta.url === `file://${process.argv[1]}`) await main();
