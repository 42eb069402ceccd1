// A decode loop over a paged KV cache: each step appends one token's K/V to the cache (through the page
// table) and attends with one query token. One compiled kernel serves every step: lengths are runtime values.
// Run: npx tsx examples/ts/decode_loop.ts
import { compile, flexAttention, fromFloat64, referenceAttention, rng, tensor, type Tensor } from "minductor";
import { checkOutput } from "./checkOutput.js";

export async function main(): Promise<boolean> {
  const [hq, hkv, dim, pageSize, pages] = [16, 4, 64, 16, 32];
  const graph = flexAttention({
    name: "paged_decode",
    query: { shape: [1, hq, 1, dim], dtype: "bfloat16" },
    key: { shape: [pages, hkv, pageSize, dim], dtype: "bfloat16" },
    value: { shape: [pages, hkv, pageSize, dim], dtype: "bfloat16" },
    kvCache: { pageSize },
  });
  const kernel = await compile(graph);
  const r = rng(9);
  const random = (n: number) => Array.from({ length: n }, () => r.normal());
  const pool = { key: fromFloat64(new Float64Array(pages * hkv * pageSize * dim), "bfloat16", [pages, hkv, pageSize, dim]), value: fromFloat64(new Float64Array(pages * hkv * pageSize * dim), "bfloat16", [pages, hkv, pageSize, dim]) };
  const pageTable = tensor("int32", [1, pages], Int32Array.from({ length: pages }, (_, i) => (i * 7) % pages)); // any permutation
  const append = (pos: number, t: Tensor, row: Tensor) => {
    const page = (pageTable.data as Int32Array)[Math.floor(pos / pageSize)];
    for (let h = 0; h < hkv; h++) (t.data as Uint16Array).set((row.data as Uint16Array).subarray(h * dim, (h + 1) * dim), ((page * hkv + h) * pageSize + (pos % pageSize)) * dim);
  };
  let worst = 0;
  let ok = true;
  let template = "";
  for (let pos = 0; pos < 300; pos++) {
    append(pos, pool.key, fromFloat64(random(hkv * dim), "bfloat16", [hkv, dim]));
    append(pos, pool.value, fromFloat64(random(hkv * dim), "bfloat16", [hkv, dim]));
    const inputs = { query: fromFloat64(random(hq * dim), "bfloat16", [1, hq, 1, dim]), ...pool, pageTable, seqLens: tensor("int32", [1], Int32Array.of(pos + 1)) };
    const { out } = kernel.run(inputs);
    template = kernel.choiceFor(inputs).template;
    if (pos % 100 === 99) {
      const check = checkOutput(out, referenceAttention(graph, inputs).out, "bfloat16");
      worst = Math.max(worst, check.maxAbs);
      ok &&= check.ok;
    }
  }
  console.log(`decode loop: 300 steps, one compile, last template ${template}, max abs error at sampled steps ${worst.toExponential(2)}`);
  return ok;
}

if (import.meta.url === `file://${process.argv[1]}`) await main();
