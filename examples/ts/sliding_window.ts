// Sliding-window attention: each query sees the previous 128 positions. Blocks outside the window are never
// touched: the block mask is classified by interval reasoning, without evaluating the Lq x Lkv grid.
// Run: npx tsx examples/ts/sliding_window.ts
import { compile, flexAttention, generateInputs, referenceAttention } from "minductor";
import { checkOutput } from "./checkOutput.js";

export async function main(): Promise<boolean> {
  const graph = flexAttention({
    name: "sliding_window",
    query: { shape: [1, 4, 1024, 64], dtype: "float32" },
    key: { shape: [1, 4, 1024, 64], dtype: "float32" },
    value: { shape: [1, 4, 1024, 64], dtype: "float32" },
    maskMod: (_b, _h, q, kv) => q.ge(kv).and(q.sub(kv).lt(128)),
    blockSize: [64, 64],
  });
  const kernel = await compile(graph);
  const mask = kernel.createBlockMask(1, 600, 600);
  const inputs = generateInputs(graph, 2, { qLen: 600, kvLen: 600 });
  const { out } = kernel.run(inputs, { blockMask: mask });
  const check = checkOutput(out, referenceAttention(graph, inputs).out, "float32");
  const listed = mask.kvNumBlocks.reduce((a, b) => a + b, 0) + (mask.fullKvNumBlocks?.reduce((a, b) => a + b, 0) ?? 0);
  console.log(`sliding window: ${listed} of ${mask.qBlocks * mask.kvBlocks} blocks computed, max abs error ${check.maxAbs.toExponential(2)}`);
  return check.ok;
}

if (import.meta.url === `file://${process.argv[1]}`) await main();
