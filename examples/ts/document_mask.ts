// Document masking for packed sequences: a query attends causally within its own document only.
// The document ids are a captured int32 buffer.
// Run: npx tsx examples/ts/document_mask.ts
import { compile, flexAttention, generateInputs, referenceAttention, tensor } from "minductor";
import { checkOutput } from "./checkOutput.js";

export async function main(): Promise<boolean> {
  const length = 300;
  const graph = flexAttention({
    name: "document_mask",
    query: { shape: [1, 4, length, 64], dtype: "float32" },
    key: { shape: [1, 4, length, 64], dtype: "float32" },
    value: { shape: [1, 4, length, 64], dtype: "float32" },
    buffers: { doc: { shape: [length], dtype: "int32" } },
    maskMod: "doc[q_idx] == doc[kv_idx] && q_idx >= kv_idx",
    blockSize: [64, 64],
  });
  const kernel = await compile(graph);
  const inputs = generateInputs(graph, 3);
  // Three documents of 100, 150 and 50 tokens packed into one sequence.
  inputs.buffers.doc = tensor("int32", [length], Int32Array.from({ length }, (_, i) => (i < 100 ? 0 : i < 250 ? 1 : 2)));
  const { out } = kernel.run(inputs);
  const check = checkOutput(out, referenceAttention(graph, inputs).out, "float32");
  console.log(`document mask: 3 documents, max abs error ${check.maxAbs.toExponential(2)}`);
  return check.ok;
}

if (import.meta.url === `file://${process.argv[1]}`) await main();
