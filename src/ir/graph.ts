import type { Expr } from "./expr.js";

/** Element types of query/key/value. */
export type TensorDType = "float32" | "bfloat16" | "float16";
/** 8-bit key/value codes (DESIGN "Quantized KV"): int8 with a scale per (token, kv head), OCP fp8 with one per kv head. */
export type QuantizedDType = "int8" | "float8_e4m3fn" | "float8_e5m2";
/** Element types key/value may have. */
export type KvDType = TensorDType | QuantizedDType;

export const QUANTIZED_DTYPES: readonly QuantizedDType[] = ["int8", "float8_e4m3fn", "float8_e5m2"];

/** Whether a dtype holds 8-bit key/value codes. */
export function isQuantized(dtype: string): dtype is QuantizedDType {
  return (QUANTIZED_DTYPES as readonly string[]).includes(dtype);
}

/** Bytes of one element of a query, key or value. */
export function elementBytes(dtype: KvDType): number {
  return dtype === "float32" ? 4 : isQuantized(dtype) ? 1 : 2;
}

/**
 * Bytes of K and V a kernel reads per (token, kv head): both head dims' elements, and an int8 cache's float32 scale
 * for K and for V. An fp8 cache's optional scale is per kv head, a few bytes per call, and not counted.
 */
export function kvBytesPerToken(dtype: KvDType, headDim: number, valueDim: number): number {
  return (headDim + valueDim) * elementBytes(dtype) + (dtype === "int8" ? 2 * 4 : 0);
}
/** Element types of captured buffers. */
export type BufferDType = "float32" | "int32" | "int64" | "bool";

/**
 * How a tensor is stored in its `.npy` file and in generated inputs: "bhsd" row-major [B, H, L, D] (a pool
 * [numPages, Hkv, pageSize, D]), "bshd" row-major [B, L, H, D] (a token-major pool [numPages, pageSize, Hkv, D]).
 * The logical shape is [B, H, L, D] either way; the kernel reads both through strides, so the layout never changes
 * the generated code.
 */
export type TensorLayout = "bhsd" | "bshd";

export interface TensorSpec<D extends KvDType = TensorDType> {
  /** Logical [B, H, L, D]; with a paged cache, key/value are the page pool [numPages, Hkv, pageSize, D]. */
  readonly shape: readonly [number, number, number, number];
  readonly dtype: D;
  /** Storage order of the tensor's file and generated data (default "bhsd"); packed ragged tensors are "bshd". */
  readonly layout: TensorLayout;
}

export interface BufferSpec {
  /** Default shape, used when inputs are generated; the rank and dtype are compile-time, the sizes are not. */
  readonly shape: readonly number[];
  readonly dtype: BufferDType;
}

export type TemplateName = "flash_attention" | "flash_decoding";

export interface KernelOptions {
  readonly PARTITION_SIZE?: number;
  readonly template?: TemplateName;
  readonly policy?: "auto" | "pytorch";
}

/** One FlexAttention computation, validated and with its mods parsed, typed and simplified. */
export interface AttentionGraph {
  readonly name: string;
  readonly query: TensorSpec;
  /** Unless quantized, in the query's dtype. */
  readonly key: TensorSpec<KvDType>;
  readonly value: TensorSpec<KvDType>;
  /** Multiplies q.k before score_mod; default 1/sqrt(E). */
  readonly scale: number;
  /** Typed float32 expression over score, b, h, q_idx, kv_idx and the buffers; `score` when omitted. */
  readonly scoreMod: Expr;
  /** Typed bool expression; constant true when omitted. */
  readonly maskMod: Expr;
  /** Captured buffers in declaration order; generated code refers to them by position only. */
  readonly buffers: ReadonlyArray<{ readonly name: string } & BufferSpec>;
  /** [SPARSE_Q_BLOCK_SIZE, SPARSE_KV_BLOCK_SIZE]. */
  readonly blockSize: readonly [number, number];
  readonly kvCache?: { readonly pageSize: number };
  readonly returnLse: boolean;
  /**
   * Calls pack the query token-major [totalQ, Hq, D] with qStartLoc (int32 [B + 1]); key/value come from the page
   * pool or are packed [totalKv, Hkv, D] with kvStartLoc. Says how the CLI reads and generates inputs; the kernel
   * serves dense and ragged calls alike, so it never changes the generated code.
   */
  readonly raggedQuery: boolean;
  readonly kernelOptions: KernelOptions;
}
