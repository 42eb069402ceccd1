import type { TensorDType } from "../../../src/ir/graph.js";
import type { KernelConfig } from "./buildKernel.js";
import type { Buffers } from "./mods.js";

/** Deterministic uniform [0, 1) numbers (mulberry32). */
export function rng(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

const f32 = new Float32Array(1);
const u32 = new Uint32Array(f32.buffer);

/** bf16 bits of a float32 value that bf16 represents exactly (the test data is chosen that way). */
function exactBf16(x: number): number {
  f32[0] = x;
  if ((u32[0] & 0xffff) !== 0) throw new Error(`${x} is not exact in bfloat16`);
  return u32[0] >>> 16;
}

/** fp16 bits of a value that fp16 represents exactly as a normal number or zero. */
function exactF16(x: number): number {
  if (x === 0) return Object.is(x, -0) ? 0x8000 : 0;
  const sign = x < 0 ? 0x8000 : 0;
  const a = Math.abs(x);
  const e = Math.floor(Math.log2(a));
  const man = (a / 2 ** e - 1) * 1024;
  if (e < -14 || e > 15 || !Number.isInteger(man)) throw new Error(`${x} is not exact in float16`);
  return sign | ((e + 15) << 10) | man;
}

export function bf16ToNumber(bits: number): number {
  u32[0] = bits << 16;
  return f32[0];
}

export function f16ToNumber(bits: number): number {
  const sign = bits & 0x8000 ? -1 : 1;
  const e = (bits >> 10) & 0x1f;
  const m = bits & 0x3ff;
  if (e === 0x1f) return m ? NaN : sign * Infinity;
  if (e === 0) return sign * m * 2 ** -24;
  return sign * (1 + m / 1024) * 2 ** (e - 15);
}

export type NativeData = Float32Array | Uint16Array;

/** Encode exactly-representable values in a dtype's storage. */
export function encode(values: ArrayLike<number>, dtype: TensorDType): NativeData {
  if (dtype === "float32") return Float32Array.from(values);
  const out = new Uint16Array(values.length);
  const fn = dtype === "bfloat16" ? exactBf16 : exactF16;
  for (let i = 0; i < values.length; ++i) out[i] = fn(values[i]);
  return out;
}

export function decode(data: NativeData, dtype: TensorDType): Float64Array {
  if (dtype === "float32") return Float64Array.from(data);
  const fn = dtype === "bfloat16" ? bf16ToNumber : f16ToNumber;
  return Float64Array.from(data, fn);
}

/** NaN bits of a 16-bit dtype: pool rows the kernel must never read are filled with them. */
function nanOf(dtype: "bfloat16" | "float16"): number {
  return dtype === "bfloat16" ? 0x7fc0 : 0x7e00;
}

export interface PagedLayout {
  pageSize: number;
  seqLens: Int32Array;
  pageTable: Int32Array;
  maxPagesPerSeq: number;
  numPages: number;
}

/** Inputs of one call: logical values for the reference and encoded arrays for the kernel. */
export interface Problem {
  batch: number;
  qLen: number;
  /** Unpaged: the kv length; paged: the upper bound of seqLens. */
  kvLen: number;
  /** Logical [B][HQ][Lq][QD], [B][HKV][kvLen][QD], [B][HKV][kvLen][VD]. */
  q: Float64Array;
  k: Float64Array;
  v: Float64Array;
  query: NativeData;
  key: NativeData;
  value: NativeData;
  paged?: PagedLayout;
  buffers: Buffers;
  bufferDims: BigInt64Array;
  /** md_args' stride triples of the contiguous layout (batch, head, position; a pool's page, head, slot). */
  strides: Record<"q_strides" | "k_strides" | "v_strides" | "out_strides" | "lse_strides", number[]>;
}

/** Values k/128, |k| <= 128: exact in bf16 and fp16, so every dtype sees the same logical inputs. */
function values(n: number, next: () => number): Float64Array {
  const out = new Float64Array(n);
  for (let i = 0; i < n; ++i) out[i] = Math.round((next() * 2 - 1) * 128) / 128;
  return out;
}

export interface ProblemOptions {
  batch: number;
  qLen: number;
  kvLen: number;
  seed: number;
  /** Paged cache: per-sequence lengths (each <= kvLen); pages are shuffled and padded with NaN rows. */
  seqLens?: number[];
  buffers?: Buffers;
}

export function makeProblem(c: KernelConfig, o: ProblemOptions): Problem {
  const next = rng(o.seed);
  const q = values(o.batch * c.hq * o.qLen * c.qDim, next);
  const k = values(o.batch * c.hkv * o.kvLen * c.qDim, next);
  const v = values(o.batch * c.hkv * o.kvLen * c.vDim, next);
  const buffers = o.buffers ?? [];
  const bufferDims = new BigInt64Array(Math.max(2, 2 * buffers.length)).fill(1n);
  buffers.forEach((b, i) => (bufferDims[2 * i] = BigInt(b.length)));
  const kvRows = c.pageSize || o.kvLen;
  const strides = {
    q_strides: [c.hq * o.qLen * c.qDim, o.qLen * c.qDim, c.qDim],
    k_strides: [c.hkv * kvRows * c.qDim, kvRows * c.qDim, c.qDim],
    v_strides: [c.hkv * kvRows * c.vDim, kvRows * c.vDim, c.vDim],
    out_strides: [c.hq * o.qLen * c.vDim, o.qLen * c.vDim, c.vDim],
    lse_strides: [c.hq * o.qLen, o.qLen, 1],
  };
  const base = { batch: o.batch, qLen: o.qLen, kvLen: o.kvLen, q, k, v, query: encode(q, c.dtype), buffers, bufferDims, strides };
  if (!c.pageSize) return { ...base, key: encode(k, c.dtype), value: encode(v, c.dtype) };

  const seqLens = Int32Array.from(o.seqLens ?? Array(o.batch).fill(o.kvLen));
  const P = c.pageSize;
  const maxPagesPerSeq = Math.max(1, Math.ceil(o.kvLen / P));
  const used = Array.from(seqLens, (len) => Math.ceil(len / P));
  const numPages = used.reduce((x, y) => x + y, 0) + 2; // two pages nobody owns
  const physical = Array.from({ length: numPages }, (_, i) => i);
  for (let i = physical.length - 1; i > 0; --i) {
    const j = Math.floor(next() * (i + 1));
    [physical[i], physical[j]] = [physical[j], physical[i]];
  }
  const pageTable = new Int32Array(o.batch * maxPagesPerSeq).fill(-1);
  let taken = 0;
  for (let b = 0; b < o.batch; ++b) for (let p = 0; p < used[b]; ++p) pageTable[b * maxPagesPerSeq + p] = physical[taken++];

  const pool = (logical: Float64Array, dim: number): NativeData => {
    const enc = encode(logical, c.dtype);
    const size = numPages * c.hkv * P * dim;
    const out = c.dtype === "float32" ? new Float32Array(size).fill(NaN) : new Uint16Array(size).fill(nanOf(c.dtype));
    for (let b = 0; b < o.batch; ++b)
      for (let pos = 0; pos < seqLens[b]; ++pos) {
        const page = pageTable[b * maxPagesPerSeq + Math.floor(pos / P)];
        for (let hk = 0; hk < c.hkv; ++hk) {
          const src = ((b * c.hkv + hk) * o.kvLen + pos) * dim;
          const dst = ((page * c.hkv + hk) * P + (pos % P)) * dim;
          out.set(enc.subarray(src, src + dim), dst);
        }
      }
    return out;
  };
  return { ...base, key: pool(k, c.qDim), value: pool(v, c.vDim), paged: { pageSize: P, seqLens, pageTable, maxPagesPerSeq, numPages } };
}

export function kvLenOf(p: Problem, b: number): number {
  return p.paged ? p.paged.seqLens[b] : p.kvLen;
}
