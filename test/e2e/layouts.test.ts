/**
 * Tensor views, caller-owned outputs, KV batch broadcast and ragged batches against real kernels. Every layout is
 * checked against the contiguous call on the same values, bit for bit (a view changes where the kernel reads and
 * writes, never its arithmetic), and ragged and random-stride calls against the float64 reference.
 */
import fc from "fast-check";
import { describe, expect, it } from "vitest";
import { InputError, type Kernel } from "../../src/index.js";
import { flexAttention } from "../../src/ir/flexAttention.js";
import type { AttentionGraph } from "../../src/ir/graph.js";
import { generateInputs } from "../../src/io/generateInputs.js";
import { rng } from "../../src/io/random.js";
import { compareOutputs, TOLERANCE } from "../../src/reference/compareOutputs.js";
import { referenceAttention } from "../../src/reference/referenceAttention.js";
import { type Tensor, tensor, toFloat64 } from "../../src/runtime/tensor.js";
import type { KernelInputs } from "../../src/runtime/validateInputs.js";
import { copyInto, permute, view } from "../../src/runtime/view.js";
import { kernelFor, prebuild } from "../helpers/checkKernel.js";
import { useFastBuilds } from "../helpers/fastBuilds.js";

/** Configurations of this file's own: fast builds (test/helpers/fastBuilds.ts), the same semantics as the default -O3. */
useFastBuilds();

const HQ = 4;
const HKV = 2;
const D = 32;
const PAGE = 16;

/** Causal in absolute positions: query row i of sequence b sits at offset[b] + i (chunked prefill, decode). */
function graphOf(name: string, paged: boolean, maskMod = "q_idx + offset[b] >= kv_idx"): AttentionGraph {
  const kv = (paged ? [24, HKV, PAGE, D] : [2, HKV, 64, D]) as [number, number, number, number];
  return flexAttention({
    name,
    query: { shape: [2, HQ, 16, D], dtype: "float32" },
    key: { shape: kv, dtype: "float32" },
    value: { shape: kv, dtype: "float32" },
    maskMod,
    buffers: { offset: { shape: [2], dtype: "int32" } },
    blockSize: [16, 16],
    kvCache: paged ? { pageSize: PAGE } : undefined,
    returnLse: true,
  });
}

const unpaged = graphOf("layouts", false);
const paged = graphOf("layouts_paged", true);
/** The same configuration (one engine) with a mask whose blocks differ by head: kv heads get different partition
 * counts, which a decode task over every kv head of a token-major cache must handle. */
const byHead = graphOf("layouts_by_head", false, "q_idx + offset[b] >= kv_idx && kv_idx >= 16 * h");
prebuild([unpaged, paged, byHead]);

/** The same values as `t` (contiguous [d0, d1, d2, d3]) stored with dims 1 and 2 swapped: a BSHD view of BHSD data. */
function swapped12(t: Tensor): Tensor {
  const [a, b, c, d] = t.shape;
  const logical = permute(view(new (t.data.constructor as Float32ArrayConstructor)(t.data.length), "float32", [a, c, b, d]), [0, 2, 1, 3]);
  copyInto(t, logical);
  return logical;
}

function bits(t: Tensor): number[] {
  return Array.from(toFloat64(t));
}

function withOffset(inputs: KernelInputs, offsets: number[]): KernelInputs {
  return { ...inputs, buffers: { offset: tensor("int32", [offsets.length], Int32Array.from(offsets)) } };
}

function expectNearReference(graph: AttentionGraph, inputs: KernelInputs, result: { out: Tensor; lse?: Tensor }, label: string) {
  const ref = referenceAttention(graph, inputs);
  const out = compareOutputs(toFloat64(result.out), ref.out, TOLERANCE.float32);
  expect(out.ok, `${label} out ${JSON.stringify(out)}`).toBe(true);
  const lse = compareOutputs(toFloat64(result.lse!), ref.lse, TOLERANCE.float32);
  expect(lse.ok, `${label} lse ${JSON.stringify(lse)}`).toBe(true);
}

describe("strided views", () => {
  it("BSHD query, key, value and output give the contiguous call's bits", async () => {
    const kernel = await kernelFor(unpaged);
    const base = withOffset(generateInputs(unpaged, 3, { batch: 2, qLen: 21, kvLen: 45 }), [24, 0]);
    for (const template of ["flash_attention", "flash_decoding"] as const) {
      const want = kernel.run(base, { template });
      const bshd = { ...base, query: swapped12(base.query), key: swapped12(base.key), value: swapped12(base.value) };
      const out = swapped12(tensor("float32", [2, HQ, 21, D]));
      const got = kernel.run(bshd, { template, out });
      expect(got.out).toBe(out);
      expect(bits(out), template).toEqual(bits(want.out));
      expect(bits(got.lse!), template).toEqual(bits(want.lse!));
    }
  });

  it("BSHD decode with a mask whose active blocks differ by head gives the contiguous call's bits", async () => {
    const kernel = await kernelFor(byHead);
    const base = withOffset(generateInputs(byHead, 4, { batch: 2, qLen: 2, kvLen: 61 }), [59, 40]);
    for (const partitionSize of [16, 32, 64]) {
      const want = kernel.run(base, { template: "flash_decoding", partitionSize });
      const bshd = { ...base, query: swapped12(base.query), key: swapped12(base.key), value: swapped12(base.value) };
      const got = kernel.run(bshd, { template: "flash_decoding", partitionSize });
      expect(bits(got.out), `partition ${partitionSize}`).toEqual(bits(want.out));
      expect(bits(got.lse!), `partition ${partitionSize}`).toEqual(bits(want.lse!));
      expectNearReference(byHead, bshd, got, `by head, partition ${partitionSize}`);
    }
  });

  it("q, k and v as views of one fused projection; the output written as [B, S, Hq * D]", async () => {
    const kernel = await kernelFor(unpaged);
    const B = 2, S = 19, W = (HQ + 2 * HKV) * D;
    const r = rng(5);
    const fused = Float32Array.from({ length: B * S * W }, () => r.normal(0, 1));
    const headView = (heads: number, column: number) => view(fused, "float32", [B, heads, S, D], [S * W, D, W, 1], column);
    const inputs = withOffset({ query: headView(HQ, 0), key: headView(HKV, HQ * D), value: headView(HKV, (HQ + HKV) * D) }, [0, 0]);
    const dense = withOffset(
      { query: toDense(inputs.query), key: toDense(inputs.key), value: toDense(inputs.value) },
      [0, 0],
    );
    const attnOut = new Float32Array(B * S * HQ * D);
    const outView = view(attnOut, "float32", [B, HQ, S, D], [S * HQ * D, D, HQ * D, 1]);
    const lse = tensor("float32", [B, HQ, S]);
    const got = kernel.run(inputs, { out: outView, lse });
    expect(got.out).toBe(outView);
    expect(got.lse).toBe(lse);
    const want = kernel.run(dense);
    expect(bits(outView)).toEqual(bits(want.out));
    expect(bits(lse)).toEqual(bits(want.lse!));
    // The projection buffer is read in place, not copied, and still holds what it held.
    expect(inputs.query.data).toBe(fused);
    expectNearReference(unpaged, inputs, got, "fused");
  });

  it("a token-major page pool [numPages, pageSize, Hkv, D] gives the head-major pool's bits", async () => {
    const kernel = await kernelFor(paged);
    const base = withOffset(generateInputs(paged, 7, { batch: 2, qLen: 3, kvLen: 70 }), [0, 0]);
    const lens = base.seqLens!.data as Int32Array;
    base.buffers!.offset = tensor("int32", [2], Int32Array.from([lens[0] - 3, lens[1] - 3]));
    for (const template of ["flash_attention", "flash_decoding"] as const) {
      const want = kernel.run(base, { template, partitionSize: 32 });
      const tokenMajor = { ...base, key: swapped12(base.key), value: swapped12(base.value) };
      expect(tokenMajor.key.strides).toEqual([PAGE * HKV * D, D, HKV * D, 1]);
      const got = kernel.run(tokenMajor, { template, partitionSize: 32 });
      expect(bits(got.out), template).toEqual(bits(want.out));
      expect(bits(got.lse!), template).toEqual(bits(want.lse!));
    }
  });

  it("a key/value batch of 1 broadcasts over the query's batch (stride 0)", async () => {
    const kernel = await kernelFor(unpaged);
    const one = withOffset(generateInputs(unpaged, 9, { batch: 1, qLen: 5, kvLen: 40 }), [35]);
    const query = generateInputs(unpaged, 10, { batch: 3, qLen: 5, kvLen: 40 }).query;
    const broadcast = withOffset({ query, key: one.key, value: one.value }, [35, 20, 0]);
    const repeat = (t: Tensor) => {
      const data = new Float32Array(t.data.length * 3);
      for (let b = 0; b < 3; b++) data.set(t.data as Float32Array, b * t.data.length);
      return tensor("float32", [3, ...t.shape.slice(1)], data);
    };
    const repeated = withOffset({ query, key: repeat(one.key), value: repeat(one.value) }, [35, 20, 0]);
    for (const template of ["flash_attention", "flash_decoding"] as const) {
      const got = kernel.run(broadcast, { template });
      expect(bits(got.out), template).toEqual(bits(kernel.run(repeated, { template }).out));
    }
    expectNearReference(unpaged, broadcast, kernel.run(broadcast), "broadcast");
  });

  it("random strides and offsets match the float64 reference", async () => {
    const kernel = await kernelFor(unpaged);
    await fc.assert(
      fc.asyncProperty(
        fc.integer({ min: 1, max: 3 }),
        fc.integer({ min: 1, max: 20 }),
        fc.integer({ min: 1, max: 40 }),
        fc.array(fc.integer({ min: 0, max: 3 }), { minLength: 9, maxLength: 9 }),
        fc.integer({ min: 0, max: 1000 }),
        async (batch, qLen, kvLen, pads, seed) => {
          const base = withOffset(generateInputs(unpaged, seed, { batch, qLen, kvLen }), Array.from({ length: batch }, (_, b) => (b * 7) % 9));
          const padded = (t: Tensor, pad: number[]): Tensor => stridedCopy(t, pad, seed);
          const inputs = {
            ...base,
            query: padded(base.query, pads.slice(0, 3)),
            key: padded(base.key, pads.slice(3, 6)),
            value: padded(base.value, pads.slice(6, 9)),
          };
          const out = stridedCopy(tensor("float32", [batch, HQ, qLen, D]), [pads[2], pads[0], pads[1]], seed + 1);
          const got = kernel.run(inputs, { out });
          expectNearReference(unpaged, inputs, got, `B${batch} q${qLen} kv${kvLen} pads ${pads}`);
        },
      ),
      { numRuns: 12, seed: 4242 },
    );
  });
});

describe("ragged batches", () => {
  /** Sequences of the given query rows packed token-major, with kv lengths; each sequence attends causally at the end
   * of its kv (chunked prefill and decode: offset = kv - q). */
  function raggedInputs(graph: AttentionGraph, qRows: number[], kvLens: number[], seed: number) {
    const B = qRows.length;
    const total = qRows.reduce((a, b) => a + b, 0);
    const qStart = Int32Array.from([0, ...qRows.map((_, b) => qRows.slice(0, b + 1).reduce((x, y) => x + y, 0))]);
    const r = rng(seed);
    const query = tensor("float32", [total, HQ, D], Float32Array.from({ length: total * HQ * D }, () => r.normal(0, 1)));
    const offsets = qRows.map((q, b) => Math.max(0, kvLens[b] - q));
    const inputs = { query, qStartLoc: tensor("int32", [B + 1], qStart), buffers: { offset: tensor("int32", [B], Int32Array.from(offsets)) } } as unknown as KernelInputs;
    if (graph.kvCache) {
      const g = generateInputs(graph, seed + 1, { batch: B, qLen: 1, kvLen: Math.max(...kvLens) });
      (g.seqLens!.data as Int32Array).set(kvLens);
      Object.assign(inputs, { key: g.key, value: g.value, pageTable: g.pageTable, seqLens: g.seqLens });
    } else {
      const totalKv = kvLens.reduce((a, b) => a + b, 0);
      const kvStart = Int32Array.from([0, ...kvLens.map((_, b) => kvLens.slice(0, b + 1).reduce((x, y) => x + y, 0))]);
      const kv = () => tensor("float32", [totalKv, HKV, D], Float32Array.from({ length: totalKv * HKV * D }, () => r.normal(0, 1)));
      Object.assign(inputs, { key: kv(), value: kv(), kvStartLoc: tensor("int32", [B + 1], kvStart) });
    }
    return { inputs, qStart, offsets };
  }

  /** Sequence b of a ragged call as a dense call of batch 1. */
  function sequence(graph: AttentionGraph, inputs: KernelInputs, qStart: Int32Array, offsets: number[], b: number): KernelInputs {
    const rows = qStart[b + 1] - qStart[b];
    const q = permute(view(inputs.query.data as Float32Array, "float32", [rows, HQ, D], undefined, qStart[b] * HQ * D), [1, 0, 2]);
    const one: KernelInputs = {
      query: { ...q, shape: [1, ...q.shape], strides: [0, ...q.strides!] },
      key: inputs.key,
      value: inputs.value,
      buffers: { offset: tensor("int32", [1], Int32Array.from([offsets[b]])) },
    };
    if (graph.kvCache) {
      const maxPages = inputs.pageTable!.shape[1];
      one.pageTable = tensor("int32", [1, maxPages], (inputs.pageTable!.data as Int32Array).slice(b * maxPages, (b + 1) * maxPages));
      one.seqLens = tensor("int32", [1], Int32Array.from([(inputs.seqLens!.data as Int32Array)[b]]));
    } else {
      const kvStart = inputs.kvStartLoc!.data as Int32Array;
      const len = kvStart[b + 1] - kvStart[b];
      const kvView = (t: Tensor) => {
        const v = permute(view(t.data as Float32Array, "float32", [len, HKV, D], undefined, kvStart[b] * HKV * D), [1, 0, 2]);
        return { ...v, shape: [1, ...v.shape], strides: [0, ...v.strides!] };
      };
      one.key = kvView(inputs.key);
      one.value = kvView(inputs.value);
    }
    return one;
  }

  /** The mixed call (decode rows and prefill chunks in one) against one dense call per sequence, bit for bit. */
  async function checkMixed(graph: AttentionGraph, qRows: number[], kvLens: number[], seed: number) {
    const kernel: Kernel = await kernelFor(graph);
    const { inputs, qStart, offsets } = raggedInputs(graph, qRows, kvLens, seed);
    const got = kernel.run(inputs, { template: "flash_decoding", partitionSize: 32 });
    expect(got.out.shape).toEqual([qStart[qRows.length], HQ, D]);
    expect(got.lse!.shape).toEqual([qStart[qRows.length], HQ]);
    expectNearReference(graph, inputs, got, `${graph.name} ragged ${qRows} / ${kvLens}`);
    const out = toFloat64(got.out);
    const lse = toFloat64(got.lse!);
    for (let b = 0; b < qRows.length; b++) {
      if (qRows[b] === 0) continue;
      const alone = kernel.run(sequence(graph, inputs, qStart, offsets, b), {
        template: qRows[b] <= 8 ? "flash_decoding" : "flash_attention",
        partitionSize: 32,
      });
      // alone: [1, Hq, rows, D]; the ragged rows are [rows][Hq][D]
      const want = toFloat64(permute(alone.out, [0, 2, 1, 3]));
      const wantLse = toFloat64(permute(alone.lse!, [0, 2, 1]));
      const from = qStart[b] * HQ;
      expect(Array.from(out.subarray(from * D, (from + qRows[b] * HQ) * D)), `sequence ${b}`).toEqual(Array.from(want));
      expect(Array.from(lse.subarray(from, from + qRows[b] * HQ)), `sequence ${b} lse`).toEqual(Array.from(wantLse));
    }
  }

  it("packed key/value: decode rows and prefill chunks in one call", async () => {
    await checkMixed(unpaged, [1, 37, 0, 5, 20, 1], [50, 37, 3, 64, 20, 1], 11);
  });

  it("paged: decode rows and prefill chunks in one call", async () => {
    await checkMixed(paged, [1, 24, 3, 1], [70, 30, 17, 1], 12);
  });

  it("through the selector, and as flash attention alone", async () => {
    const kernel = await kernelFor(unpaged);
    const { inputs } = raggedInputs(unpaged, [2, 30, 1], [40, 33, 9], 13);
    expectNearReference(unpaged, inputs, kernel.run(inputs), "auto");
    expectNearReference(unpaged, inputs, kernel.run(inputs, { template: "flash_attention" }), "flash_attention");
  });

  it("random ragged lengths match the float64 reference", async () => {
    const kernel = await kernelFor(paged);
    await fc.assert(
      fc.asyncProperty(
        fc.array(fc.tuple(fc.integer({ min: 0, max: 20 }), fc.integer({ min: 1, max: 60 })), { minLength: 1, maxLength: 4 }),
        fc.integer({ min: 0, max: 1000 }),
        async (seqs, seed) => {
          const { inputs } = raggedInputs(paged, seqs.map(([q]) => q), seqs.map(([, kv]) => kv), seed);
          expectNearReference(paged, inputs, kernel.run(inputs), `ragged ${JSON.stringify(seqs)}`);
        },
      ),
      { numRuns: 10, seed: 777 },
    );
  });
});

describe("caller-owned outputs", () => {
  it("refuses an output that overlaps an input", async () => {
    const kernel = await kernelFor(unpaged);
    const inputs = withOffset(generateInputs(unpaged, 1, { batch: 2, qLen: 4, kvLen: 8 }), [4, 4]);
    const out = view(inputs.query.data as Float32Array, "float32", [2, HQ, 4, D]);
    expect(() => kernel.run(inputs, { out })).toThrow(InputError);
    expect(() => kernel.run(inputs, { out })).toThrow(/out overlaps query/);
  });
});

/** A contiguous copy of a view's values. */
function toDense(t: Tensor): Tensor {
  return tensor("float32", t.shape, Float32Array.from(toFloat64(t)));
}

/**
 * `t`'s values in a larger buffer: each of the first three dims padded by pad[i] elements of stride, and the whole at
 * a seeded offset, the padding filled with NaN (a kernel that reads it produces NaN).
 */
function stridedCopy(t: Tensor, pad: number[], seed: number): Tensor {
  const [a, b, c, d] = t.shape;
  const s2 = d + pad[2];
  const s1 = c * s2 + pad[1];
  const s0 = b * s1 + pad[0];
  const offset = seed % 5;
  const data = new Float32Array(offset + a * s0 + 1).fill(NaN);
  const v = view(data, "float32", [a, b, c, d], [s0, s1, s2, 1], offset);
  copyInto(t, v);
  return v;
}
