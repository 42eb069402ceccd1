/**
 * Copies of a call's inputs for the bench to run in turn, so that each call finds its K/V in memory rather than in the
 * last-level cache where the call before left it. An engine calls attention once per layer per token: between two
 * calls on one layer's KV cache it reads every other layer's, so a decode step streams its cache from DRAM, and the
 * roofline divides its bytes by the probe's read bandwidth over 1 GiB. Timing one input set over and over let a
 * large last-level cache keep part of it: on a 2-core AVX-512 VM whose probe read 119 GB/s over 64 MiB and 78 over
 * 1 GiB, bf16 decode at kv 16384 (67 MB of K/V) ran 14% faster on one input set than rotated through four copies,
 * 8-bit K/V (34 MB) 8-14%, fp32 (134 MB) 2% (docs/benchmarks.md).
 */
import type { KernelInputs } from "../runtime/validateInputs.js";
import { type Tensor, type TensorData, allocate } from "../runtime/tensor.js";

/** The input sets together span at least this much memory, past any last-level cache measured so far. */
export const COLD_BYTES = 512 * 2 ** 20;
/** At most this many sets: small calls stay cache-resident anyway, and each set costs its copy. */
export const MAX_COPIES = 16;
/** Tensors smaller than this are shared by every set (page tables, sequence lengths, scales of small calls). */
const COPY_FROM_BYTES = 64 * 1024;

/** How many input sets of `bytes` each the bench runs in turn. */
export function setsFor(bytes: number): number {
  return Math.min(MAX_COPIES, Math.max(1, Math.ceil(COLD_BYTES / Math.max(1, bytes))));
}

/** The tensors' storage once: views of one buffer (a fused projection's q, k and v) count it once. */
export function inputBytes(inputs: KernelInputs): number {
  const seen = new Set<TensorData>();
  let bytes = 0;
  for (const t of tensorsOf(inputs)) {
    if (seen.has(t.data)) continue;
    seen.add(t.data);
    bytes += t.data.byteLength;
  }
  return bytes;
}

/**
 * `inputs` and copies of it, as many as make up COLD_BYTES (at least 1, at most MAX_COPIES): the first set is
 * `inputs` itself; each other copies every tensor of COPY_FROM_BYTES or more into storage of its own (views of one
 * buffer stay views of one buffer) and shares the rest, the block mask included.
 */
export function coldCopies(inputs: KernelInputs): KernelInputs[] {
  const count = setsFor(inputBytes(inputs));
  const sets = [inputs];
  for (let i = 1; i < count; i++) {
    const copied = new Map<TensorData, TensorData>();
    const copy = (t: Tensor): Tensor => {
      if (t.data.byteLength < COPY_FROM_BYTES) return t;
      let data = copied.get(t.data);
      if (!data) {
        data = allocate(t.dtype, t.data.length);
        (data as { set(source: ArrayLike<number | bigint>): void }).set(t.data);
        copied.set(t.data, data);
      }
      return { ...t, data };
    };
    const set: KernelInputs = { ...inputs, query: copy(inputs.query), key: copy(inputs.key), value: copy(inputs.value) };
    for (const name of ["pageTable", "seqLens", "qStartLoc", "kvStartLoc", "keyScale", "valueScale"] as const) {
      const t = inputs[name];
      if (t) set[name] = copy(t);
    }
    if (inputs.buffers) set.buffers = Object.fromEntries(Object.entries(inputs.buffers).map(([k, t]) => [k, copy(t)]));
    sets.push(set);
  }
  return sets;
}

function tensorsOf(inputs: KernelInputs): Tensor[] {
  const optional = [inputs.pageTable, inputs.seqLens, inputs.qStartLoc, inputs.kvStartLoc, inputs.keyScale, inputs.valueScale];
  return [inputs.query, inputs.key, inputs.value, ...optional.filter((t): t is Tensor => t !== undefined), ...Object.values(inputs.buffers ?? {})];
}
