// An inference engine's layer loop around minductor, without a single copy of an attention tensor.
//
// Each layer of a Llama-style model projects its input with one fused matmul into a [tokens, (Hq + 2 Hkv) * D]
// buffer; q, k and v are views of it. New tokens' k and v are appended into a paged cache the engine owns, laid
// out token-major [numPages, pageSize, Hkv, D] as vLLM's is, and the attention writes straight into the
// [tokens, Hq * D] buffer that the output projection reads. The prompt of two sequences of different lengths is one
// ragged prefill call; then every decode step attends one token per sequence.
// Run: npx tsx examples/ts/engine_decode_loop.ts
import {
  compile,
  flexAttention,
  permute,
  referenceAttention,
  rng,
  tensor,
  type Kernel,
  type KernelInputs,
  view,
} from "minductor";
import { checkOutput } from "./checkOutput.js";

const [HQ, HKV, D, PAGE, PAGES, LAYERS] = [8, 2, 64, 16, 24, 2];
const HIDDEN = HQ * D;
const QKV = (HQ + 2 * HKV) * D;

/** y[t] = x[t] W for the rows of x ([tokens, n] row-major) into y ([tokens, m]). */
function matmul(x: Float32Array, w: Float32Array, y: Float32Array, tokens: number, n: number, m: number): void {
  y.fill(0);
  for (let t = 0; t < tokens; t++)
    for (let i = 0; i < n; i++) {
      const xi = x[t * n + i];
      for (let j = 0; j < m; j++) y[t * m + j] += xi * w[i * m + j];
    }
}

export async function main(): Promise<boolean> {
  // Causal in absolute positions: row q_idx of sequence b sits at position offset[b] + q_idx of its cache.
  const graph = flexAttention({
    name: "engine_layer",
    query: { shape: [2, HQ, 1, D], dtype: "float32" },
    key: { shape: [PAGES, HKV, PAGE, D], dtype: "float32" },
    value: { shape: [PAGES, HKV, PAGE, D], dtype: "float32" },
    maskMod: "q_idx + offset[b] >= kv_idx",
    buffers: { offset: { shape: [2], dtype: "int32" } },
    kvCache: { pageSize: PAGE },
  });
  const kernel: Kernel = await compile(graph);

  const r = rng(21);
  const weights = (n: number) => Float32Array.from({ length: n }, () => r.normal(0, 1 / Math.sqrt(HIDDEN)));
  const layers = Array.from({ length: LAYERS }, () => ({
    wqkv: weights(HIDDEN * QKV),
    wo: weights(HIDDEN * HIDDEN),
    // The engine's own cache: token-major pages, seen by the kernel as the logical [numPages, Hkv, pageSize, D].
    kPool: new Float32Array(PAGES * PAGE * HKV * D),
    vPool: new Float32Array(PAGES * PAGE * HKV * D),
  }));
  const poolView = (pool: Float32Array) => permute(view(pool, "float32", [PAGES, PAGE, HKV, D]), [0, 2, 1, 3]);
  // Sequence 0 owns pages 0, 2, 4, ...; sequence 1 pages 1, 3, 5, ...
  const maxPages = PAGES / 2;
  const pageTable = tensor("int32", [2, maxPages], Int32Array.from({ length: PAGES }, (_, i) => (i % maxPages) * 2 + Math.floor(i / maxPages)));
  const seqLens = tensor("int32", [2], new Int32Array(2));

  // Scratch of the layer loop, allocated once for the longest step.
  const prompt = [37, 5];
  const maxTokens = prompt[0] + prompt[1];
  const hidden = new Float32Array(maxTokens * HIDDEN);
  const qkv = new Float32Array(maxTokens * QKV);
  const attnOut = new Float32Array(maxTokens * HIDDEN);
  const projected = new Float32Array(maxTokens * HIDDEN);

  let ok = true;
  let worst = 0;
  let checked = 0;
  /** One forward pass of `rows[b]` new tokens per sequence, packed token-major in `hidden`. */
  const step = (rows: number[], check: boolean) => {
    const tokens = rows[0] + rows[1];
    const starts = Int32Array.of(0, rows[0], tokens);
    const qStartLoc = tensor("int32", [3], starts);
    const lens = seqLens.data as Int32Array;
    const offset = tensor("int32", [2], Int32Array.from(lens)); // the new rows follow what is cached
    for (const layer of layers) {
      matmul(hidden, layer.wqkv, qkv, tokens, HIDDEN, QKV);
      // Append the new tokens' k and v to the cache: the one write an engine does anyway.
      for (let b = 0; b < 2; b++)
        for (let i = 0; i < rows[b]; i++) {
          const t = starts[b] + i;
          const pos = lens[b] + i;
          const page = (pageTable.data as Int32Array)[b * maxPages + Math.floor(pos / PAGE)];
          const slot = (page * PAGE + (pos % PAGE)) * HKV * D;
          layer.kPool.set(qkv.subarray(t * QKV + HQ * D, t * QKV + (HQ + HKV) * D), slot);
          layer.vPool.set(qkv.subarray(t * QKV + (HQ + HKV) * D, (t + 1) * QKV), slot);
        }
      const layerLens = tensor("int32", [2], Int32Array.from(lens, (l, b) => l + rows[b]));
      const inputs: KernelInputs = {
        // q: the first Hq * D columns of each token's fused row, [totalQ, Hq, D]
        query: view(qkv, "float32", [tokens, HQ, D], [QKV, D, 1]),
        key: poolView(layer.kPool),
        value: poolView(layer.vPool),
        pageTable,
        seqLens: layerLens,
        qStartLoc,
        buffers: { offset },
      };
      // out: [totalQ, Hq, D] written into the [tokens, Hq * D] input of the output projection
      const out = view(attnOut, "float32", [tokens, HQ, D]);

      // Nothing the engine holds is copied: the kernel is given the engine's own buffers.
      const bound = kernel.bindings(inputs, { out });
      ok &&= bound.query!.buffer === qkv.buffer && bound.key!.buffer === layer.kPool.buffer;
      ok &&= bound.value!.buffer === layer.vPool.buffer && bound.out!.buffer === attnOut.buffer;
      const result = kernel.run(inputs, { out });
      ok &&= result.out === out;

      if (check) {
        const c = checkOutput(out, referenceAttention(graph, inputs).out, "float32");
        worst = Math.max(worst, c.maxAbs);
        ok &&= c.ok;
        checked++;
      }
      matmul(attnOut, layer.wo, projected, tokens, HIDDEN, HIDDEN);
      for (let i = 0; i < tokens * HIDDEN; i++) hidden[i] += projected[i];
    }
    lens[0] += rows[0];
    lens[1] += rows[1];
    // The next step's input: each sequence's last token (a stand-in for sampling and embedding).
    const last = [rows[0] - 1, tokens - 1];
    const next = new Float32Array(2 * HIDDEN);
    for (let b = 0; b < 2; b++) next.set(hidden.subarray(last[b] * HIDDEN, (last[b] + 1) * HIDDEN), b * HIDDEN);
    hidden.set(next);
  };

  for (let i = 0; i < prompt[0] * HIDDEN + prompt[1] * HIDDEN; i++) hidden[i] = r.normal(0, 1);
  step(prompt, true); // ragged prefill: 37 and 5 rows in one call
  for (let s = 0; s < 40; s++) step([1, 1], s % 10 === 9); // decode
  const lens = Array.from(seqLens.data as Int32Array);
  console.log(`engine loop: ${LAYERS} layers, prefill [${prompt}] then 40 decode steps, lengths ${lens.join(" and ")}, ` +
    `no attention tensor copied, max abs error at ${checked} checked calls ${worst.toExponential(2)}`);
  return ok && lens[0] === prompt[0] + 40 && lens[1] === prompt[1] + 40;
}

if (import.meta.url === `file://${process.argv[1]}`) await main();
