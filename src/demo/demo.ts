import { compile, type Kernel } from "../index.js";
import { rng } from "../io/random.js";
import type { AttentionGraph } from "../ir/graph.js";
import { flexAttention } from "../ir/flexAttention.js";
import { compareOutputs, TOLERANCE } from "../reference/compareOutputs.js";
import { referenceAttention } from "../reference/referenceAttention.js";
import { f32ToBf16Bits } from "../runtime/dtypes.js";
import { type Tensor, allocate, tensor, toFloat64 } from "../runtime/tensor.js";
import type { Choice } from "../select/features.js";

/** The demo's model: one Llama-style attention layer (GQA 32/8 heads, head dim 128, bf16) over a paged KV cache. */
export const DEMO = { hq: 32, hkv: 8, dim: 128, promptLen: 1024, prefillRuns: 5, decodeSteps: 128, warmupCalls: 512, pageSize: 64, poolPages: 24, seed: 7 } as const;

export interface DemoReporter {
  phase(name: string, detail: string): void;
  progress(done: number, total: number, label: string): void;
  line(text: string): void;
}

export interface DemoMachine {
  readBandwidthGBs: number;
  fmaPeakGflops: number;
  /** Where the CPU has AVX512-BF16: the peak of VDPBF16PS, on which a bf16 prefill does its products. */
  bf16DotPeakGflops?: number;
  /** Where the CPU has AMX-BF16 and Linux grants the tiles: their peak, on which a bf16 prefill then does its products. */
  amxBf16PeakGflops?: number;
}

export interface DemoResult {
  prefill: { ms: number; gflops: number; choice: Choice };
  /** medianMs: of the timed steps, after the warm-up calls; coldMedianMs: of the process's first decodeSteps calls. */
  decode: { tokensPerSecond: number; medianMs: number; coldMedianMs: number; gbs: number; choice: Choice; compiles: number };
  checks: Array<{ what: string; maxAbs: number; ok: boolean }>;
}

/**
 * One compiled kernel serves both phases: its mask `q_idx + offset[0] >= kv_idx` is causal for the prompt
 * (offset 0) and lets a decode step at absolute position p see the whole cache (offset p), and its lengths are
 * runtime values, so the decode loop never recompiles.
 */
export function demoGraph(): AttentionGraph {
  const { hq, hkv, dim, pageSize, poolPages } = DEMO;
  return flexAttention({
    name: "llama_layer",
    query: { shape: [1, hq, DEMO.promptLen, dim], dtype: "bfloat16" },
    key: { shape: [poolPages, hkv, pageSize, dim], dtype: "bfloat16" },
    value: { shape: [poolPages, hkv, pageSize, dim], dtype: "bfloat16" },
    maskMod: "q_idx + offset[0] >= kv_idx",
    buffers: { offset: { shape: [1], dtype: "int32" } },
    kvCache: { pageSize },
    returnLse: true,
  });
}

function median(xs: readonly number[]): number {
  return [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)];
}

/** Random bf16 data, as a projection of hidden states would produce (seeded, so runs are comparable). */
function randomBf16(r: ReturnType<typeof rng>, shape: number[]): Tensor {
  const n = shape.reduce((a, b) => a * b, 1);
  return tensor("bfloat16", shape, fillRandomBf16(r, allocate("bfloat16", n)));
}

/** Overwrites `bits` with random bf16 values, as a projection writes into the buffer it owns. */
function fillRandomBf16(r: ReturnType<typeof rng>, bits: Uint16Array): Uint16Array {
  for (let i = 0; i < bits.length; i++) bits[i] = f32ToBf16Bits(r.normal(0, 1));
  return bits;
}

/** Writes token `pos`'s K and V rows (one per kv head) into the page pool through the page table. */
function appendToCache(pool: { key: Tensor; value: Tensor }, table: Int32Array, pos: number, k: Uint16Array, v: Uint16Array): void {
  const { hkv, dim, pageSize } = DEMO;
  const page = table[Math.floor(pos / pageSize)];
  for (let h = 0; h < hkv; h++) {
    const at = ((page * hkv + h) * pageSize + (pos % pageSize)) * dim;
    (pool.key.data as Uint16Array).set(k.subarray(h * dim, (h + 1) * dim), at);
    (pool.value.data as Uint16Array).set(v.subarray(h * dim, (h + 1) * dim), at);
  }
}

/**
 * The peak a prefill is measured against, as the bench's roofline takes it (src/bench/roofline.ts, bf16DotFlops): the
 * AMX tiles' where the machine has them and the prefill runs on them (bf16 K/V, head dims in 32s), else the bf16 dot
 * products' where the machine has them and the call runs its products on them (bf16 K/V: both templates run all their
 * products there), else the fp32 FMA peak.
 */
export function prefillPeak(machine: DemoMachine, graph: AttentionGraph): { name: string; gflops: number } {
  const onDot = machine.bf16DotPeakGflops !== undefined && graph.key.dtype === "bfloat16";
  const onTiles = machine.amxBf16PeakGflops !== undefined && graph.key.dtype === "bfloat16" && graph.query.shape[3] % 32 === 0;
  if (onTiles) return { name: "AMX-BF16 tile", gflops: machine.amxBf16PeakGflops! };
  return onDot ? { name: "bf16 dot-product (VDPBF16PS)", gflops: machine.bf16DotPeakGflops! } : { name: "fp32 FMA", gflops: machine.fmaPeakGflops };
}

export async function runDemo(report: DemoReporter, machine?: DemoMachine): Promise<DemoResult> {
  const { hq, hkv, dim, promptLen, decodeSteps, warmupCalls, pageSize, poolPages } = DEMO;
  const graph = demoGraph();
  const r = rng(DEMO.seed);
  report.phase("compile", "one kernel for prefill and decode (bf16, GQA 32/8, D = 128, paged, page size 64)");
  const kernel = await compile(graph);
  report.line(`  kernel ${kernel.library.key.slice(0, 12)} ${kernel.library.fromCache === "compiled" ? `compiled in ${(kernel.library.compileMs / 1000).toFixed(1)} s` : `loaded from the ${kernel.library.fromCache} cache`}`);

  // The page pool, and a shuffled page table: the kernel follows it natively.
  const pool = { key: tensor("bfloat16", [poolPages, hkv, pageSize, dim]), value: tensor("bfloat16", [poolPages, hkv, pageSize, dim]) };
  const maxPages = Math.ceil((promptLen + decodeSteps) / pageSize);
  const table = r.shuffle(Int32Array.from({ length: poolPages }, (_, i) => i)).slice(0, maxPages);
  const pageTable = tensor("int32", [1, maxPages], table);
  const promptK = randomBf16(r, [promptLen, hkv * dim]);
  const promptV = randomBf16(r, [promptLen, hkv * dim]);
  for (let p = 0; p < promptLen; p++) {
    const row = (t: Tensor) => (t.data as Uint16Array).subarray(p * hkv * dim, (p + 1) * hkv * dim);
    appendToCache(pool, table, p, row(promptK), row(promptV));
  }

  // Prefill: the whole prompt, causal.
  const query = randomBf16(r, [1, hq, promptLen, dim]);
  const prefillInputs = {
    query, ...pool, pageTable,
    seqLens: tensor("int32", [1], Int32Array.of(promptLen)),
    buffers: { offset: tensor("int32", [1], Int32Array.of(0)) },
  };
  const prefillChoice = kernel.choiceFor(prefillInputs);
  report.phase("prefill", `${promptLen} tokens, causal: ${prefillChoice.template} (${prefillChoice.reasons.join("; ")})`);
  // The first call pages in the pool, builds the block mask and allocates the outputs, which the timed calls then
  // write into, as an engine's buffers live across calls. Timed as one call that allocated its outputs, the same
  // prefill took 35 ms where these calls take 19.5 (AVX-512 VM).
  const prefillOut = kernel.run(prefillInputs);
  const prefillTimes: number[] = [];
  for (let i = 0; i < DEMO.prefillRuns; i++) {
    const started = performance.now();
    kernel.run(prefillInputs, { out: prefillOut.out, ...(prefillOut.lse ? { lse: prefillOut.lse } : {}) });
    prefillTimes.push(performance.now() - started);
  }
  const prefillMs = median(prefillTimes);
  // Useful work of a causal prefill: query row i attends to i + 1 keys, 2 * D FLOPs for QK and 2 * D for PV each.
  const prefillFlops = 4 * hq * dim * ((promptLen * (promptLen + 1)) / 2);
  const prefillGflops = prefillFlops / prefillMs / 1e6;
  const peak = machine && prefillPeak(machine, graph);
  report.line(`  ${prefillMs.toFixed(1)} ms, ${prefillGflops.toFixed(1)} GFLOP/s${peak ? ` (${((100 * prefillGflops) / peak.gflops).toFixed(0)}% of the measured ${peak.name} peak ${peak.gflops.toFixed(0)} GFLOP/s)` : ""}`);

  // Decode: one token at a time, appended to the cache before it attends. As an engine does, a step's query, new
  // K/V rows, lengths and offset are written into tensors that live across steps, and the attention writes into
  // output buffers owned by the loop (the next layer's input): a step allocates no tensor.
  const stepMs: number[] = [];
  const kept = new Map<number, { inputs: typeof prefillInputs; out: Tensor }>();
  const sampled = new Set([0, Math.floor(decodeSteps / 2), decodeSteps - 1]);
  const seqLens = tensor("int32", [1], new Int32Array(1));
  const offset = tensor("int32", [1], new Int32Array(1));
  const outputs = { out: tensor("bfloat16", [1, hq, 1, dim]), lse: tensor("float32", [1, hq, 1]) };
  const stepQuery = tensor("bfloat16", [1, hq, 1, dim]);
  const newK = new Uint16Array(hkv * dim);
  const newV = new Uint16Array(hkv * dim);
  // One decode step at absolute position pos: its K/V rows appended, its query written, then the attention (timed).
  const decodeStep = (pos: number) => {
    appendToCache(pool, table, pos, fillRandomBf16(r, newK), fillRandomBf16(r, newV));
    fillRandomBf16(r, stepQuery.data as Uint16Array);
    seqLens.data[0] = pos + 1;
    offset.data[0] = pos;
    const inputs = { query: stepQuery, ...pool, pageTable, seqLens, buffers: { offset } };
    const t0 = performance.now();
    kernel.run(inputs, outputs);
    return { inputs, ms: performance.now() - t0 };
  };
  // Warm-up: the first calls of a process run V8's interpreter and baseline code for run() (its validation, plan and
  // block mask), while an engine makes millions of calls. The steps are timed after `warmupCalls` untimed runs of the
  // same steps (positions the timed steps then write again before they read them); the median of the first
  // `decodeSteps` of those is reported beside them.
  const warmMs: number[] = [];
  for (let call = 0; call < warmupCalls; call++) warmMs.push(decodeStep(promptLen + (call % decodeSteps)).ms);
  let decodeChoice: Choice | undefined;
  for (let step = 0; step < decodeSteps; step++) {
    const { inputs, ms } = decodeStep(promptLen + step);
    stepMs.push(ms);
    if (step === 0) {
      decodeChoice = kernel.choiceFor(inputs);
      report.phase("decode", `${decodeSteps} steps after ${warmupCalls} untimed ones: ${decodeChoice.template}, partition ${decodeChoice.partitionSize} (${decodeChoice.reasons.join("; ")})`);
    }
    if (sampled.has(step)) {
      kept.set(step, {
        inputs: { ...inputs, query: copy(stepQuery), key: copy(pool.key), value: copy(pool.value), seqLens: copy(seqLens), buffers: { offset: copy(offset) } },
        out: copy(outputs.out),
      });
    }
    report.progress(step + 1, decodeSteps, "decode");
  }
  const medianMs = median(stepMs);
  const coldMedianMs = median(warmMs.slice(0, decodeSteps));
  const totalMs = stepMs.reduce((a, b) => a + b, 0);
  const meanLen = promptLen + (decodeSteps + 1) / 2;
  const kvBytes = hkv * meanLen * 2 * dim * 2; // K and V, bf16, each kv head read once
  // The rate of a typical step: the median, as the bench reports, so that a collection of the demo's own garbage or a
  // preempted core during a few steps does not speak for the kernel (tokens/s counts every step).
  const gbs = kvBytes / medianMs / 1e6;
  report.line(`  ${(decodeSteps / (totalMs / 1000)).toFixed(0)} tokens/s, median step ${medianMs.toFixed(3)} ms, ${gbs.toFixed(1)} GB/s of K/V in the median step${machine ? ` (${((100 * gbs) / machine.readBandwidthGBs).toFixed(0)}% of the measured read bandwidth ${machine.readBandwidthGBs.toFixed(0)} GB/s; a ${((2 * kvBytes) / 2 ** 20).toFixed(1)} MiB cache can sit in the CPU's caches)` : ""}`);
  report.line(`  the process's first ${decodeSteps} decode calls (JavaScript not yet optimised): median ${coldMedianMs.toFixed(3)} ms`);
  report.line(`  one compiled kernel served the prefill and all ${warmupCalls + decodeSteps} decode calls (lengths are runtime values)`);

  // Check sampled steps, and the last prompt rows, against the float64 reference.
  report.phase("check", "sampled outputs against the float64 reference");
  const checks: DemoResult["checks"] = [];
  const tol = TOLERANCE.bfloat16;
  for (const [step, { inputs, out }] of kept) {
    const ref = referenceAttention(graph, inputs);
    const c = compareOutputs(toFloat64(out), ref.out, tol);
    checks.push({ what: `decode step ${step}`, maxAbs: c.maxAbs, ok: c.ok });
  }
  checks.push(checkPrefillRows(graph, prefillInputs, prefillOut.out, promptLen - 16, promptLen));
  for (const c of checks) report.line(`  ${c.ok ? "ok  " : "FAIL"} ${c.what}: max abs error ${c.maxAbs.toExponential(2)} (bf16 tolerance ${tol.atol} + ${tol.rtol} x |ref|)`);
  return {
    prefill: { ms: prefillMs, gflops: prefillGflops, choice: prefillChoice },
    decode: { tokensPerSecond: decodeSteps / (totalMs / 1000), medianMs, coldMedianMs, gbs, choice: decodeChoice!, compiles: 1 },
    checks,
  };
}

const copy = (t: Tensor): Tensor => tensor(t.dtype, t.shape, t.data.slice());

/**
 * The reference for query rows [from, to) only: with the offset buffer set to `from`, rows 0.. of the slice see
 * exactly what rows from.. of the prompt saw, so the full prompt need not be recomputed in float64.
 */
function checkPrefillRows(
  graph: AttentionGraph,
  inputs: { query: Tensor; key: Tensor; value: Tensor; pageTable: Tensor; seqLens: Tensor },
  out: Tensor,
  from: number,
  to: number,
): DemoResult["checks"][number] {
  const { hq, dim, promptLen } = DEMO;
  const rows = to - from;
  const q = new Uint16Array(hq * rows * dim);
  const got = new Float64Array(hq * rows * dim);
  const all = toFloat64(out);
  for (let h = 0; h < hq; h++) {
    q.set((inputs.query.data as Uint16Array).subarray((h * promptLen + from) * dim, (h * promptLen + to) * dim), h * rows * dim);
    got.set(all.subarray((h * promptLen + from) * dim, (h * promptLen + to) * dim), h * rows * dim);
  }
  const ref = referenceAttention(graph, {
    ...inputs,
    query: tensor("bfloat16", [1, hq, rows, dim], q),
    buffers: { offset: tensor("int32", [1], Int32Array.of(from)) },
  });
  const c = compareOutputs(got, ref.out, TOLERANCE.bfloat16);
  return { what: `prefill rows ${from}..${to - 1}`, maxAbs: c.maxAbs, ok: c.ok };
}

export type { Kernel };
