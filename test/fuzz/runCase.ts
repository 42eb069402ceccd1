import { quantizeKv } from "../../src/runtime/quantize.js";
import { compile, type CompileOptions, type RunOptions } from "../../src/index.js";
import { type AttentionGraph, isQuantized } from "../../src/ir/graph.js";
import { rng } from "../../src/io/random.js";
import { compareOutputs, TOLERANCE, type Comparison } from "../../src/reference/compareOutputs.js";
import { referenceAttention } from "../../src/reference/referenceAttention.js";
import type { KernelInputs } from "../../src/runtime/validateInputs.js";
import { fromFloat64, type Tensor, tensor, toFloat64 } from "../../src/runtime/tensor.js";
import { FUZZ_BUFFERS, type FuzzBufferName } from "./conditionedMods.js";
import { type CallCase, effectiveCalls, type KernelCase } from "./kernelCase.js";

/** A kernel output that disagrees with the reference (or a call that failed), with what is needed to read it. */
export class FuzzMismatch extends Error {
  constructor(message: string) {
    super(message);
    this.name = "FuzzMismatch";
  }
}

/** flash_decoding is forced only where it is meant to serve (decode-shaped calls). */
export const DECODING_MAX_Q_LEN = 8;

export interface CaseStats {
  calls: number;
  /** Kernel invocations compared with the reference (one per template per call). */
  runs: number;
  fromCache: "memory" | "disk" | "compiled";
}

/**
 * Compiles the case's kernel and runs every call with the template the selector picks (under the call's policy,
 * and with a mask from kernel.createBlockMask when the call asks), with flash_attention forced, and with
 * flash_decoding forced when q_len <= 8; each output must match the float64 reference within the dtype's
 * tolerance (lse within float32's). Throws FuzzMismatch on the first difference.
 */
export async function checkKernelCase(kc: KernelCase, options: CompileOptions = {}): Promise<CaseStats> {
  const kernel = await compile(kc.spec, options);
  let runs = 0;
  for (const [index, call] of effectiveCalls(kc.calls).entries()) {
    const inputs = buildInputs(kernel.graph, call);
    const ref = referenceAttention(kernel.graph, inputs);
    const chosen = kernel.choiceFor(inputs, { numThreads: call.threads, policy: call.policy });
    const kvLen = inputs.seqLens ? Math.max(...(inputs.seqLens.data as Int32Array)) : call.kvLen;
    const blockMask = call.explicitMask ? kernel.createBlockMask(call.batch, call.qLen, kvLen, inputs) : undefined;
    const variants: Array<[string, RunOptions]> = [
      [
        `${call.policy} policy (${chosen.template})${blockMask ? " with a createBlockMask mask" : ""}`,
        { numThreads: call.threads, policy: call.policy, ...(blockMask ? { blockMask } : {}) },
      ],
      ["flash_attention", { template: "flash_attention", numThreads: call.threads }],
    ];
    if (call.qLen <= DECODING_MAX_Q_LEN) {
      const partitionSize = call.partitionBlocks * kernel.graph.blockSize[1];
      variants.push([`flash_decoding (partition ${partitionSize})`, { template: "flash_decoding", partitionSize, numThreads: call.threads }]);
    }
    for (const [label, run] of variants) {
      const where = `call ${index} ${describeCall(kernel.graph, call)}, ${label}`;
      let result;
      try {
        result = call.async ? await kernel.runAsync(inputs, run) : kernel.run(inputs, run);
      } catch (error) {
        throw new FuzzMismatch(`${where}: the kernel call failed: ${(error as Error).message}`);
      }
      runs++;
      expectClose(where, "out", compareOutputs(toFloat64(result.out), ref.out, TOLERANCE[kernel.graph.query.dtype]));
      if (kernel.graph.returnLse) expectClose(where, "lse", compareOutputs(toFloat64(result.lse!), ref.lse, TOLERANCE.float32));
    }
  }
  return { calls: kc.calls.length, runs, fromCache: kernel.library.fromCache };
}

function expectClose(where: string, what: string, c: Comparison): void {
  if (c.ok) return;
  const first = c.firstFailure ? ` first at flat index ${c.firstFailure.index}: got ${c.firstFailure.got}, want ${c.firstFailure.want};` : "";
  throw new FuzzMismatch(
    `${where}: ${what} differs from the reference in ${c.failures} element(s);${first} max abs ${c.maxAbs.toExponential(3)}, ` +
      `max rel ${c.maxRel.toExponential(3)}, non-finite mismatches ${c.nonFiniteMismatches}`,
  );
}

export function describeCall(graph: AttentionGraph, call: CallCase): string {
  const lens = graph.kvCache ? `seqLens [${call.seqLens.slice(0, call.batch).join(", ")}]` : `kvLen ${call.kvLen}`;
  return `(batch ${call.batch}, qLen ${call.qLen}, ${lens}, threads ${call.threads}${call.async ? ", async" : ""})`;
}

/**
 * The tensors of one call: q/k/v ~ N(0, 1) in the kernel's dtype, the case's buffer values, and with a paged cache
 * a pool whose pages are handed out in a shuffled order, spare pages no sequence uses and -1 in unused slots.
 */
export function buildInputs(graph: AttentionGraph, call: CallCase): KernelInputs {
  const r = rng(call.seed);
  const dtype = graph.query.dtype;
  const normal = (shape: number[]): Tensor => fromFloat64(Float64Array.from({ length: shape.reduce((a, b) => a * b, 1) }, () => r.normal()), dtype, shape);
  const [, hq, , d] = graph.query.shape;
  const hkv = graph.key.shape[1];
  const dv = graph.value.shape[3];
  const { batch, qLen } = call;
  const query = normal([batch, hq, qLen, d]);
  const buffers = bufferTensors(call);
  // A quantized key/value: the same normals quantized (int8 per token and head; fp8 with per-head scales of 0.5 .. 2).
  const kvDtype = graph.key.dtype;
  const quantized = isQuantized(kvDtype);
  const headScales = Array.from({ length: hkv }, (_, h) => 0.5 + (1.5 * h) / Math.max(1, hkv - 1));
  const kv = (keyShape: number[], valueShape: number[]): Pick<KernelInputs, "key" | "value" | "keyScale" | "valueScale"> => {
    const key = normal(keyShape);
    const value = normal(valueShape);
    if (!quantized) return { key, value };
    const options = kvDtype === "int8" ? {} : { scale: headScales };
    const k = quantizeKv(key, kvDtype, options);
    const v = quantizeKv(value, kvDtype, options);
    return { key: k.codes, value: v.codes, keyScale: k.scale, valueScale: v.scale };
  };
  if (!graph.kvCache) {
    return { query, ...kv([batch, hkv, call.kvLen, d], [batch, hkv, call.kvLen, dv]), buffers };
  }
  const pageSize = graph.kvCache.pageSize;
  const seqLens = call.seqLens.slice(0, batch);
  const pagesOf = seqLens.map((len) => Math.ceil(len / pageSize));
  const slots = Math.max(1, Math.max(...pagesOf) + call.spareSlots);
  const numPages = Math.max(1, pagesOf.reduce((a, b) => a + b, 0) + call.sparePages);
  const order = r.shuffle(Int32Array.from({ length: numPages }, (_, i) => i));
  const table = new Int32Array(batch * slots).fill(-1);
  let next = 0;
  for (let b = 0; b < batch; b++) for (let p = 0; p < pagesOf[b]; p++) table[b * slots + p] = order[next++];
  return {
    query,
    ...kv([numPages, hkv, pageSize, d], [numPages, hkv, pageSize, dv]),
    buffers,
    pageTable: tensor("int32", [batch, slots], table),
    seqLens: tensor("int32", [batch], Int32Array.from(seqLens)),
  };
}

function bufferTensors(call: CallCase): Record<string, Tensor> {
  const tensors: Record<string, Tensor> = {};
  for (const name of Object.keys(FUZZ_BUFFERS) as FuzzBufferName[]) {
    const { shape, dtype } = FUZZ_BUFFERS[name];
    const values = call.buffers[name];
    tensors[name] = dtype === "int64"
      ? tensor("int64", [...shape], BigInt64Array.from(values, (v) => BigInt(v)))
      : fromFloat64(values, dtype, [...shape]);
  }
  return tensors;
}
