import { type AttentionGraph, type KvDType, type TensorDType, isQuantized } from "../ir/graph.js";
import { DECODE_MAX_Q_LEN, PYTORCH_PARTITION_SIZE } from "../select/selectTemplate.js";
import { cppFloat } from "./cppLiteral.js";
import { KERNEL_ABI_VERSION } from "./kernelAbi.js";
import { KernelRenderError } from "./kernelRenderError.js";

/**
 * Every value the engine templates read: the configuration (ISA aside, which the compiler knows). Two graphs with
 * the same configuration share one engine, so nothing here may depend on the mods or the buffers. The scale is
 * here: as a constant it makes flash decoding several percent faster than read from the mods' table, and it almost
 * always is the default 1/sqrt(head dim).
 */
export interface EngineConstants {
  readonly abi_version: number;
  readonly hq: number;
  readonly hkv: number;
  /** Query heads per kv head (GQA group size). */
  readonly g: number;
  readonly q_dim: number;
  readonly v_dim: number;
  readonly q_block: number;
  readonly kv_block: number;
  /** Query rows per tile inside a q block. */
  readonly q_tile: number;
  /** kv positions per packed K/V tile inside a kv block. */
  readonly kv_tile: number;
  /** Longest query the flash-decoding template takes; longer ones run flash attention. */
  readonly decode_max_q: number;
  /** kv positions per decode tile (scores of one tile stay in L1 next to the K/V rows being read). */
  readonly decode_kv_tile: number;
  /** The decode tile of fp32 K/V where vectors hold 16 floats (AVX-512). */
  readonly decode_kv_tile_wide: number;
  /** Decode partition in kv blocks when the caller passes partition_size = 0 (PyTorch's default size). */
  readonly decode_default_partition_blocks: number;
  readonly paged: boolean;
  /** 0 when unpaged. */
  readonly page_size: number;
  /** The scale as an exact float literal. */
  readonly scale: string;
  readonly dtype_name: TensorDType;
  readonly dtype_enum: string;
  readonly elem_type: string;
  /** Key/value: the query's dtype, or an 8-bit quantized one. */
  readonly kv_dtype_name: KvDType;
  readonly kv_dtype_enum: string;
  readonly kv_elem_type: string;
  readonly kv_quantized: boolean;
}

/** What the mod library of a graph reads besides its mods' C++ and its engine's constants. */
export interface ModsConstants {
  readonly num_buffers: number;
}

/** Every value the kernel templates read: plain numbers, booleans and fixed C tokens, never user text. */
export type KernelConstants = EngineConstants & ModsConstants;

const DTYPE_C: Readonly<Record<KvDType, { enumName: string; elemType: string }>> = {
  float32: { enumName: "MD_FLOAT32", elemType: "float" },
  bfloat16: { enumName: "MD_BFLOAT16", elemType: "uint16_t" },
  float16: { enumName: "MD_FLOAT16", elemType: "uint16_t" },
  int8: { enumName: "MD_INT8", elemType: "int8_t" },
  float8_e4m3fn: { enumName: "MD_FP8_E4M3FN", elemType: "uint8_t" },
  float8_e5m2: { enumName: "MD_FP8_E5M2", elemType: "uint8_t" },
};

const FLOATS: ReadonlySet<KvDType> = new Set(["float32", "bfloat16", "float16"]);

/**
 * Largest tiles inside a sparse block. 128 x 128 keeps one task's fp32 working set (Q, K^T, V, S, O tiles at
 * D = 128) near 320 KB, inside a per-core L2, while amortising the K/V packing over 128 query rows; bigger blocks
 * are walked in tiles of this size.
 */
const MAX_Q_TILE = 128;
const MAX_KV_TILE = 128;

/**
 * Decode tile: the scores of up to 64 kv positions for G * q_len rows, the K rows just read and the P V accumulators
 * stay in L1/L2. On the reference machine 32, 64 and 128 measured the same within noise; 64 amortises the per-tile
 * softmax work while keeping two tiles of scores (the software pipeline) small.
 * fp32 K/V on AVX-512 (engine.cpp.njk picks it where vectors hold 16 floats) decode 128 positions a tile: 64 KB of
 * each of K and V a step at D 128. Interleaved against 64 on an AMD AVX-512 VM (kv 16384, D 128, Hkv 8, B 1), G 1
 * took 0.90-0.95x the time on one thread and 0.86-0.95x on two, G 4 0.97-1.02x; the same tile made bf16 up to 9%
 * slower (its dot products decode from 16 KB of each stream a step), fp16 G 1 2-5% faster and 8-bit K/V no
 * different, so only fp32 takes it (docs/benchmarks.md, "The AMD VM kind, a second session").
 */
const MAX_DECODE_KV_TILE = 64;
const MAX_DECODE_KV_TILE_WIDE = 128;

/** Sizes beyond this make int64 index arithmetic in the kernel or its scratch sizes unreasonable. */
const MAX_DIM = 1 << 16;

function positiveInt(field: string, value: number, max = MAX_DIM): number {
  if (!Number.isSafeInteger(value) || value <= 0 || value > max) {
    throw new KernelRenderError(field, `expected an integer in [1, ${max}], got ${value}`);
  }
  return value;
}

/** The template constants of a graph; validates what the kernel relies on and computes everything derived. */
export function kernelConstants(graph: AttentionGraph): KernelConstants {
  return { ...engineConstants(graph), ...modsConstants(graph) };
}

/** The buffer count of a graph. */
export function modsConstants(graph: AttentionGraph): ModsConstants {
  return { num_buffers: graph.buffers.length };
}

/** The configuration of a graph; validates what the engine relies on and computes everything derived. */
export function engineConstants(graph: AttentionGraph): EngineConstants {
  const fail = (field: string, problem: string): never => {
    throw new KernelRenderError(field, problem);
  };
  const dtype = graph.query.dtype;
  if (!FLOATS.has(dtype)) fail("query.dtype", `unsupported dtype ${String(dtype)}`);
  const kvDtype = graph.key.dtype;
  if (kvDtype !== dtype && !isQuantized(kvDtype)) fail("key.dtype", `${kvDtype} differs from query.dtype ${dtype}`);
  if (graph.value.dtype !== kvDtype) fail("value.dtype", `${graph.value.dtype} differs from key.dtype ${kvDtype}`);

  const hq = positiveInt("query.shape[1]", graph.query.shape[1]);
  const hkv = positiveInt("key.shape[1]", graph.key.shape[1]);
  if (graph.value.shape[1] !== hkv) fail("value.shape[1]", `value has ${graph.value.shape[1]} heads, key has ${hkv}`);
  if (hq % hkv !== 0) fail("query.shape[1]", `${hq} query heads are not a multiple of ${hkv} kv heads`);
  const qDim = positiveInt("query.shape[3]", graph.query.shape[3]);
  if (graph.key.shape[3] !== qDim) fail("key.shape[3]", `key head dim ${graph.key.shape[3]} differs from query head dim ${qDim}`);
  const vDim = positiveInt("value.shape[3]", graph.value.shape[3]);

  const qBlock = positiveInt("blockSize[0]", graph.blockSize[0]);
  const kvBlock = positiveInt("blockSize[1]", graph.blockSize[1]);
  const pageSize = graph.kvCache ? positiveInt("kvCache.pageSize", graph.kvCache.pageSize) : 0;
  if (!Number.isFinite(Math.fround(graph.scale))) fail("scale", `expected a finite float32, got ${graph.scale}`);

  return {
    abi_version: KERNEL_ABI_VERSION,
    hq,
    hkv,
    g: hq / hkv,
    q_dim: qDim,
    v_dim: vDim,
    q_block: qBlock,
    kv_block: kvBlock,
    q_tile: Math.min(qBlock, MAX_Q_TILE),
    kv_tile: Math.min(kvBlock, MAX_KV_TILE),
    decode_max_q: DECODE_MAX_Q_LEN,
    decode_kv_tile: Math.min(kvBlock, MAX_DECODE_KV_TILE),
    decode_kv_tile_wide: Math.min(kvBlock, MAX_DECODE_KV_TILE_WIDE),
    decode_default_partition_blocks: Math.ceil(PYTORCH_PARTITION_SIZE / kvBlock),
    paged: graph.kvCache !== undefined,
    page_size: pageSize,
    scale: cppFloat(graph.scale),
    dtype_name: dtype,
    dtype_enum: DTYPE_C[dtype].enumName,
    elem_type: DTYPE_C[dtype].elemType,
    kv_dtype_name: kvDtype,
    kv_dtype_enum: DTYPE_C[kvDtype].enumName,
    kv_elem_type: DTYPE_C[kvDtype].elemType,
    kv_quantized: isQuantized(kvDtype),
  };
}
