import { beforeAll, describe, expect, it } from "vitest";
import { buildKernel, type KernelConfig } from "./harness/buildKernel.js";
import { expectAttention, expectClose } from "./harness/compare.js";
import { alibiOffsetCausalMods, type Mods, softcapShiftedMods } from "./harness/mods.js";
import {
  type AttentionResult,
  argsFor,
  type KernelLibrary,
  maskFields,
  openKernel,
  runAttention,
} from "./harness/native.js";
import { decode, makeProblem, type NativeData, type Problem, rng } from "./harness/problem.js";
import { type BlockKind, type BlockMaskArrays, blockMaskFromKinds, referenceAttention } from "./harness/reference.js";

interface Kernel {
  config: KernelConfig;
  mods: Mods;
  lib?: KernelLibrary;
}

const kernel = (config: KernelConfig, mods: Mods): Kernel => ({ config, mods });
const ALIBI_OFFSET: KernelConfig["buffers"] = ["float32", "int64"];

const kernels = {
  /** fp32, G = 1, D 64, 64-blocks: the partition sweep */
  g1: kernel(
    { dtype: "float32", hq: 4, hkv: 4, qDim: 64, vDim: 64, blockSize: [64, 64], scale: 0.5, buffers: ALIBI_OFFSET },
    alibiOffsetCausalMods,
  ),
  /** bf16, G = 2, D 128, paged with pages smaller than a block */
  g2paged: kernel(
    { dtype: "bfloat16", hq: 8, hkv: 4, qDim: 128, vDim: 128, blockSize: [64, 64], pageSize: 16, buffers: ALIBI_OFFSET },
    alibiOffsetCausalMods,
  ),
  /** fp16, G = 4, D 72 -> V 40, q blocks of 4 so that 8 queries span two mask rows */
  g4: kernel(
    { dtype: "float16", hq: 8, hkv: 2, qDim: 72, vDim: 40, blockSize: [4, 64], buffers: ALIBI_OFFSET },
    alibiOffsetCausalMods,
  ),
  /** fp32, G = 8, D 128, soft-cap score_mod (also on full blocks) and rows masked depending on b and h */
  g8: kernel({ dtype: "float32", hq: 8, hkv: 1, qDim: 128, vDim: 128, blockSize: [128, 128] }, softcapShiftedMods),
};

beforeAll(async () => {
  await Promise.all(
    Object.values(kernels).map(async (k) => {
      k.lib = openKernel(await buildKernel(k.config, k.mods.cpp));
    }),
  );
});

/**
 * The harness's alibi adds slope * (kv_idx - q_idx) with q_idx the query row, so it grows with the kv length; slopes
 * from 1/64 keep fp32 scores near 64 at kv 4099, where their rounding stays inside the fp32 tolerance.
 */
const slopes = (hq: number) => Float32Array.from({ length: hq }, (_, h) => 2 ** -(h + 6));

/** Decode-shaped inputs: query row i of sequence b sits at absolute position offset[b] + i. */
function decodeProblem(k: Kernel, o: { batch: number; qLen: number; kvLen: number; seed: number; seqLens?: number[]; offsets?: number[] }): Problem {
  const lens = o.seqLens ?? Array(o.batch).fill(o.kvLen);
  const offsets = o.offsets ?? lens.map((len) => len - o.qLen);
  const buffers = k.config.buffers ? [slopes(k.config.hq), BigInt64Array.from(offsets, BigInt)] : [];
  return makeProblem(k.config, { ...o, buffers });
}

/** md_flash_decoding with a partition size (the harness's runAttention passes 0). */
function runDecoding(k: Kernel, p: Problem, o: { partitionSize: number; mask?: BlockMaskArrays; numThreads?: number }): AttentionResult {
  const c = k.config;
  const n = p.batch * c.hq * p.qLen;
  const out: NativeData = c.dtype === "float32" ? new Float32Array(n * c.vDim).fill(NaN) : new Uint16Array(n * c.vDim).fill(0x7fff);
  const lse = new Float32Array(n).fill(NaN);
  const args = argsFor(p, { out, lse, partition_size: o.partitionSize, num_threads: o.numThreads ?? 0, ...(o.mask ? maskFields(o.mask) : {}) });
  const status = k.lib!.call("md_flash_decoding", args);
  return { status, out: decode(out, c.dtype), lse };
}

/** Decoding against the float64 reference, and against flash attention on the same call. */
function checkDecoding(k: Kernel, p: Problem, partitionSizes: number[], what: string, mask?: BlockMaskArrays): AttentionResult {
  const want = referenceAttention(k.config, p, k.mods, mask);
  const attention = runAttention(k.lib!, "md_flash_attention", k.config, p, { mask });
  expectAttention(attention, want, k.config.dtype, `${what} attention`);
  let last: AttentionResult | undefined;
  for (const partitionSize of partitionSizes) {
    const got = runDecoding(k, p, { partitionSize, mask });
    const label = `${what} P=${partitionSize}`;
    expectAttention(got, want, k.config.dtype, label);
    expectClose(got.out, attention.out, k.config.dtype === "float32" ? 2e-5 : 8e-3, `${label} vs attention`);
    last = got;
  }
  return last!;
}

/** A random block mask over every head with per-head lists: heads of one kv group see different blocks. */
function perHeadMask(k: Kernel, p: Problem, seed: number, kinds: (next: () => number, row: number, kb: number) => BlockKind): BlockMaskArrays {
  const [QB, KVB] = k.config.blockSize;
  const next = rng(seed);
  return blockMaskFromKinds(
    { maskBatch: p.batch, maskHeads: k.config.hq, qBlocks: Math.ceil(p.qLen / QB), kvBlocks: Math.ceil(p.kvLen / KVB) },
    (row, kb) => kinds(next, row, kb),
  );
}

describe("flash decoding numerics", () => {
  for (const qLen of [1, 8])
    for (const kvLen of [1, 127, 128, 129, 4099])
      it(`G=1 fp32 q_len ${qLen}, kv_len ${kvLen}, partitions 64/128/256/1024`, () => {
        const p = decodeProblem(kernels.g1, { batch: 2, qLen, kvLen, seed: qLen * 10_000 + kvLen });
        checkDecoding(kernels.g1, p, [64, 128, 256, 1024], `q ${qLen} kv ${kvLen}`);
      });

  it("G=2 bf16 D=128, paged through shuffled tables with ragged seq_lens (an empty sequence gives zeros, -inf)", () => {
    for (const qLen of [1, 8]) {
      const p = decodeProblem(kernels.g2paged, { batch: 4, qLen, kvLen: 300, seqLens: [0, 37, 300, 129], seed: qLen });
      const got = checkDecoding(kernels.g2paged, p, [64, 128, 256], `paged q ${qLen}`);
      const emptyRows = 8 * qLen; // sequence 0: every head, every query
      expect(Array.from(got.lse.subarray(0, emptyRows)).every((x) => x === -Infinity)).toBe(true);
      expect(Array.from(got.out.subarray(0, emptyRows * 128)).every((x) => x === 0)).toBe(true);
    }
  });

  it("G=4 fp16 D=72 -> V 40 across lengths and partitions", () => {
    for (const [qLen, kvLen] of [[1, 1], [1, 129], [8, 127], [8, 4099]] as const) {
      const p = decodeProblem(kernels.g4, { batch: 2, qLen, kvLen, seed: qLen + kvLen });
      checkDecoding(kernels.g4, p, [64, 256, 1024], `fp16 q ${qLen} kv ${kvLen}`);
    }
  });

  it("G=8 fp32 D=128 soft-cap, rows fully masked for some heads, with lse", () => {
    const p = decodeProblem(kernels.g8, { batch: 2, qLen: 8, kvLen: 4099, seed: 5 });
    const got = checkDecoding(kernels.g8, p, [128, 1024], "softcap");
    expect(got.lse[0]).toBe(-Infinity); // b 0, h 0, q 0: the mask q + h + b >= kv + 3 admits nothing
    expect(Array.from(got.out.subarray(0, 128)).every((x) => x === 0)).toBe(true);
    expect(Number.isFinite(got.lse[1])).toBe(false); // q 1: still nothing
    expect(Number.isFinite(got.lse[3])).toBe(true);
  });
});

describe("flash decoding with block masks", () => {
  it("per-head block lists within a kv group: absent, partial and full mixed across the group's heads", () => {
    const k = kernels.g2paged;
    const p = decodeProblem(k, { batch: 2, qLen: 8, kvLen: 700, seqLens: [700, 450], seed: 17 });
    const mask = perHeadMask(k, p, 3, (next) => (["absent", "partial", "full"] as const)[Math.floor(next() * 3)]);
    // head 0 and head 1 share kv head 0: make sure their lists really differ
    const row = (h: number) => Array.from(mask.kvIndices.subarray(h * mask.kvBlocks, h * mask.kvBlocks + mask.kvNumBlocks[h]));
    expect(row(0)).not.toEqual(row(1));
    checkDecoding(k, p, [64, 128, 256, 1024], "per-head mask", mask);
  });

  it("queries spanning two q blocks of a per-head mask (q block 4, q_len 8), with a head that sees no block", () => {
    const k = kernels.g4;
    const p = decodeProblem(k, { batch: 2, qLen: 8, kvLen: 1000, seed: 23 });
    const qBlocks = 2;
    const mask = perHeadMask(k, p, 8, (next, row) => {
      const h = Math.floor(row / qBlocks) % 8;
      if (h === 3) return "absent";
      return (["absent", "partial", "full"] as const)[Math.floor(next() * 3)];
    });
    const got = checkDecoding(k, p, [64, 128, 1024], "two q blocks", mask);
    expect(got.lse[3 * 8]).toBe(-Infinity); // b 0, head 3, q 0
  });

  it("a block full for one head and partial for another evaluates mask_mod only for the partial head", () => {
    const k = kernels.g8;
    const p = decodeProblem(k, { batch: 1, qLen: 1, kvLen: 256, seed: 4 });
    // the soft-cap mask admits nothing for (b 0, q 0, h < 3); listing its blocks as full must attend them anyway
    const mask = blockMaskFromKinds({ maskBatch: 1, maskHeads: 8, qBlocks: 1, kvBlocks: 2 }, (row) => (row % 2 === 0 ? "full" : "partial"));
    const got = checkDecoding(k, p, [128, 256], "full vs partial", mask);
    expect(Number.isFinite(got.lse[0])).toBe(true); // head 0: full, mask skipped
    expect(got.lse[1]).toBe(-Infinity); // head 1: partial, mask evaluated, nothing admitted
  });

  it("partitions whose every position is masked give weight 0, not NaN", () => {
    const k = kernels.g1;
    // offset 10: only the first positions are visible; partitions past them are all masked (m_p = -inf)
    const p = decodeProblem(k, { batch: 2, qLen: 8, kvLen: 1000, offsets: [10, 300], seed: 31 });
    checkDecoding(k, p, [64, 128], "masked partitions");
    // and a sparse mask whose active blocks are few and far apart
    const mask = perHeadMask(k, p, 5, (_next, _row, kb) => (kb % 7 === 0 ? "partial" : "absent"));
    checkDecoding(k, p, [64, 128], "sparse masked partitions", mask);
  });

  it("rows masked everywhere give zeros and lse = -inf", () => {
    const k = kernels.g1;
    const p = decodeProblem(k, { batch: 1, qLen: 4, kvLen: 300, offsets: [-20], seed: 2 });
    const got = checkDecoding(k, p, [64], "all masked");
    expect(Array.from(got.lse).every((x) => x === -Infinity)).toBe(true);
    expect(Array.from(got.out).every((x) => x === 0)).toBe(true);
  });
});

describe("flash decoding calls", () => {
  it("partition_size 0 takes the kernel's default; a size that is not a multiple of the kv block is status 2", () => {
    const k = kernels.g1;
    const p = decodeProblem(k, { batch: 1, qLen: 1, kvLen: 500, seed: 6 });
    const want = referenceAttention(k.config, p, k.mods);
    expectAttention(runDecoding(k, p, { partitionSize: 0 }), want, "float32", "default partition");
    expect(runDecoding(k, p, { partitionSize: 96 }).status).toBe(2);
    expect(runDecoding(k, p, { partitionSize: -64 }).status).toBe(2);
  });

  it("a query longer than 8 runs the prefill template and still matches", () => {
    const k = kernels.g4;
    const p = decodeProblem(k, { batch: 1, qLen: 9, kvLen: 200, seed: 8 });
    expectAttention(runDecoding(k, p, { partitionSize: 64 }), referenceAttention(k.config, p, k.mods), "float16", "q_len 9");
  });

  it("gives bit-identical results with one thread and with the default", () => {
    const k = kernels.g2paged;
    const p = decodeProblem(k, { batch: 3, qLen: 3, kvLen: 500, seqLens: [500, 200, 77], seed: 12 });
    const one = runDecoding(k, p, { partitionSize: 64, numThreads: 1 });
    const all = runDecoding(k, p, { partitionSize: 64 });
    expect(Array.from(all.out)).toEqual(Array.from(one.out));
    expect(Array.from(all.lse)).toEqual(Array.from(one.lse));
  });

  it("flags a page-table entry outside the pool with status 2 instead of reading it", () => {
    const k = kernels.g2paged;
    const p = decodeProblem(k, { batch: 1, qLen: 1, kvLen: 100, seed: 2 });
    p.paged!.pageTable[2] = p.paged!.numPages + 5;
    expect(runDecoding(k, p, { partitionSize: 64 }).status).toBe(2);
  });

  it("reports an out-of-range buffer load from a mod as status 1", () => {
    const k = kernels.g1;
    const p = decodeProblem(k, { batch: 2, qLen: 1, kvLen: 100, seed: 1 });
    p.bufferDims[2] = 1n; // offset[1] is out of range
    expect(runDecoding(k, p, { partitionSize: 64 }).status).toBe(1);
  });
});
