// A causal LM prefill: bf16, GQA (32 query heads over 8 kv heads), head dim 128, with logsumexp.
// Run: npx tsx examples/ts/causal_prefill.ts
import { compile, flexAttention, generateInputs, referenceAttention } from "minductor";
import { checkOutput } from "./checkOutput.js";

export async function main(): Promise<boolean> {
  const graph = flexAttention({
    name: "causal_prefill",
    query: { shape: [1, 32, 512, 128], dtype: "bfloat16" },
    key: { shape: [1, 8, 512, 128], dtype: "bfloat16" },
    value: { shape: [1, 8, 512, 128], dtype: "bfloat16" },
    maskMod: "q_idx >= kv_idx",
    returnLse: true,
  });
  const kernel = await compile(graph);
  const inputs = generateInputs(graph, 1, { qLen: 200, kvLen: 200 }); // any length: lengths are runtime values
  const started = performance.now();
  const { out, lse } = kernel.run(inputs);
  const ms = performance.now() - started;
  const check = checkOutput(out, referenceAttention(graph, inputs).out, "bfloat16");
  console.log(`causal prefill: ${kernel.choiceFor(inputs).template} in ${ms.toFixed(1)} ms, out [${out.shape.join(", ")}], lse [${lse!.shape.join(", ")}], max abs error ${check.maxAbs.toExponential(2)}`);
  return check.ok;
}

if (import.meta.url === `file://${process.argv[1]}`) await main();
