import fc from "fast-check";
import type { Spec } from "../../src/ir/spec.js";
import { arbitraryMaskMod, arbitraryScoreMod, BUFFER_BOUND, FUZZ_BUFFERS, type FuzzBufferName } from "./conditionedMods.js";

/**
 * One fuzz case: a kernel (everything compile-time) and a few calls of it (everything runtime). Lengths are
 * runtime values, so one compile serves every call, and shrinking a call never recompiles.
 */
export interface KernelCase {
  spec: Spec;
  calls: CallCase[];
}

export interface CallCase {
  batch: number;
  qLen: number;
  /** Unpaged: the kv length. Paged: unused; the sequences' lengths are `seqLens`. */
  kvLen: number;
  /**
   * Paged: the length of each sequence (the first `batch` are used). The first is at least 1: a call whose every
   * sequence is empty (kv_len 0) is a known bug kept in regressions.test.ts, so the search looks elsewhere.
   */
  seqLens: number[];
  /** Paged: pool pages no sequence uses, and page-table slots past the longest sequence (filled with -1). */
  sparePages: number;
  spareSlots: number;
  /** Seeds q/k/v and the page shuffle. */
  seed: number;
  buffers: BufferValues;
  threads: 1 | 2;
  /** Forced flash decoding uses partitions of this many kv blocks. */
  partitionBlocks: number;
  /** Runs on a worker thread (Kernel.runAsync) instead of the calling one. */
  async: boolean;
  /** The rule the template-choosing run asks the selector for. */
  policy: "auto" | "pytorch";
  /** The template-choosing run gets a block mask from kernel.createBlockMask (TypeScript) instead of its own. */
  explicitMask: boolean;
  /**
   * Takes the previous call's batch and lengths (ignoring its own), so a kernel sees the same shapes with new
   * buffer values and inputs, which is when a cached block mask must be rebuilt or may be reused.
   */
  sameShapes: boolean;
}

export type BufferValues = Record<FuzzBufferName, number[]>;

const DTYPES = ["float32", "bfloat16", "float16"] as const;
const HEAD_DIMS = [16, 24, 64] as const;
const BLOCKS = [16, 32, 64] as const;
export const MAX_LEN = 150;

const size = (shape: readonly number[]) => shape.reduce((a, b) => a * b, 1);
const exactly = <T>(arb: fc.Arbitrary<T>, n: number) => fc.array(arb, { minLength: n, maxLength: n });

/** Buffer contents: dyadic floats (so mask comparisons can hit equality) and arbitrary ones; int64 beyond int32. */
const floatValue = fc.oneof(
  fc.integer({ min: -16, max: 16 }).map((k) => k / 8),
  fc.double({ min: -BUFFER_BOUND.float, max: BUFFER_BOUND.float, noNaN: true }).map((x) => Math.fround(x)),
);
const int32Value = fc.integer({ min: -BUFFER_BOUND.int32, max: BUFFER_BOUND.int32 });
const int64Value = fc.oneof(
  { arbitrary: int32Value, weight: 3 },
  { arbitrary: fc.bigInt({ min: -(2n ** 40n), max: 2n ** 40n }).map(Number), weight: 1 },
);

export const arbitraryBufferValues: fc.Arbitrary<BufferValues> = fc.record({
  fb: exactly(floatValue, size(FUZZ_BUFFERS.fb.shape)),
  fm: exactly(floatValue, size(FUZZ_BUFFERS.fm.shape)),
  ib: exactly(int32Value, size(FUZZ_BUFFERS.ib.shape)),
  im: exactly(int32Value, size(FUZZ_BUFFERS.im.shape)),
  lb: exactly(int64Value, size(FUZZ_BUFFERS.lb.shape)),
  bb: exactly(fc.integer({ min: 0, max: 1 }), size(FUZZ_BUFFERS.bb.shape)),
});

const length = fc.integer({ min: 1, max: MAX_LEN });

export const arbitraryCall: fc.Arbitrary<CallCase> = fc.record({
  batch: fc.integer({ min: 1, max: 2 }),
  // Decode-shaped query lengths (where flash decoding applies) as often as prefill-shaped ones.
  qLen: fc.oneof(fc.integer({ min: 1, max: 8 }), length),
  kvLen: length,
  seqLens: fc.tuple(length, fc.oneof({ arbitrary: length, weight: 4 }, { arbitrary: fc.constant(0), weight: 1 })).map(([a, b]) => [a, b]),
  sparePages: fc.integer({ min: 0, max: 2 }),
  spareSlots: fc.integer({ min: 0, max: 1 }),
  seed: fc.integer({ min: 0, max: 2 ** 31 - 1 }),
  buffers: arbitraryBufferValues,
  threads: fc.constantFrom(1 as const, 2 as const),
  partitionBlocks: fc.integer({ min: 1, max: 4 }),
  async: fc.boolean(),
  policy: fc.constantFrom("auto" as const, "pytorch" as const),
  explicitMask: fc.boolean(),
  sameShapes: fc.boolean(),
});

export const arbitrarySpec: fc.Arbitrary<Spec> = fc
  .record({
    dtype: fc.constantFrom(...DTYPES),
    // an 8-bit key/value in about one case in five
    kvDtype: fc.oneof(
      { arbitrary: fc.constant(null), weight: 4 },
      { arbitrary: fc.constantFrom("int8" as const, "float8_e4m3fn" as const, "float8_e5m2" as const), weight: 1 },
    ),
    hkv: fc.integer({ min: 1, max: 2 }),
    group: fc.constantFrom(1, 2, 4),
    d: fc.constantFrom(...HEAD_DIMS),
    dv: fc.option(fc.constantFrom(...HEAD_DIMS), { freq: 4 }),
    blockSize: fc.tuple(fc.constantFrom(...BLOCKS), fc.constantFrom(...BLOCKS)),
    pageSize: fc.option(fc.oneof(fc.constantFrom(16, 32, 64), fc.integer({ min: 1, max: 80 })), { freq: 2 }),
    scaleFactor: fc.option(fc.double({ min: 0.5, max: 1.5, noNaN: true }), { freq: 3 }),
    scoreMod: fc.option(arbitraryScoreMod(3), { freq: 6 }),
    maskMod: fc.option(arbitraryMaskMod(3), { freq: 6 }),
    returnLse: fc.boolean(),
    partitionBlocks: fc.option(fc.integer({ min: 1, max: 4 }), { freq: 3 }),
    bufferOrder: fc.shuffledSubarray(Object.keys(FUZZ_BUFFERS) as FuzzBufferName[], { minLength: 6, maxLength: 6 }),
  })
  .map((k): Spec => {
    const hq = k.hkv * k.group;
    const dv = k.dv ?? k.d;
    // The spec's shapes are only defaults; calls bring their own lengths and batch.
    const kv = (dim: number): [number, number, number, number] => (k.pageSize === null ? [1, k.hkv, 32, dim] : [4, k.hkv, k.pageSize, dim]);
    return {
      name: "fuzz",
      query: { shape: [1, hq, 16, k.d], dtype: k.dtype },
      key: { shape: kv(k.d), dtype: k.kvDtype ?? k.dtype },
      value: { shape: kv(dv), dtype: k.kvDtype ?? k.dtype },
      ...(k.scaleFactor === null ? {} : { scale: Number((k.scaleFactor / Math.sqrt(k.d)).toPrecision(6)) }),
      ...(k.scoreMod === null ? {} : { scoreMod: k.scoreMod }),
      ...(k.maskMod === null ? {} : { maskMod: k.maskMod }),
      buffers: Object.fromEntries(k.bufferOrder.map((name) => [name, { shape: [...FUZZ_BUFFERS[name].shape], dtype: FUZZ_BUFFERS[name].dtype }])),
      blockSize: k.blockSize,
      ...(k.pageSize === null ? {} : { kvCache: { pageSize: k.pageSize } }),
      returnLse: k.returnLse,
      ...(k.partitionBlocks === null ? {} : { kernelOptions: { PARTITION_SIZE: k.partitionBlocks * k.blockSize[1] } }),
    };
  });

export const arbitraryKernelCase = (maxCalls = 3): fc.Arbitrary<KernelCase> =>
  fc.record({ spec: arbitrarySpec, calls: fc.array(arbitraryCall, { minLength: 1, maxLength: maxCalls }) });

/** The calls as they are made: a `sameShapes` call takes the batch and lengths of the one before it. */
export function effectiveCalls(calls: readonly CallCase[]): CallCase[] {
  const out: CallCase[] = [];
  for (const call of calls) {
    const previous = out[out.length - 1];
    out.push(call.sameShapes && previous
      ? { ...call, batch: previous.batch, qLen: previous.qLen, kvLen: previous.kvLen, seqLens: previous.seqLens }
      : call);
  }
  return out;
}
