/**
 * The specs the bench measures, as plain spec objects (what a child process parses). Lengths are runtime values,
 * so one spec (one compiled library) serves every length of its family; only heads, dims, dtype and mask differ.
 */
import type { TensorDType } from "../ir/graph.js";

export interface AttentionShape {
  dtype: TensorDType;
  hq: number;
  hkv: number;
  headDim: number;
  causal: boolean;
}

export const DTYPE_SHORT: Record<TensorDType, string> = { float32: "fp32", bfloat16: "bf16", float16: "fp16" };

/**
 * A spec for `shape`; its default lengths are 1 because every case passes its own. With `pageSize` the key/value
 * live in a paged pool (one page by default; cases pass their own pool).
 */
export function benchSpec(shape: AttentionShape, pageSize?: number): Record<string, unknown> {
  const { dtype, hq, hkv, headDim, causal } = shape;
  const name = `bench_${DTYPE_SHORT[dtype]}_h${hq}x${hkv}_d${headDim}${causal ? "_causal" : ""}${pageSize ? `_paged${pageSize}` : ""}`;
  const rows = pageSize ?? 1;
  return {
    name,
    query: { shape: [1, hq, 1, headDim], dtype },
    key: { shape: [1, hkv, rows, headDim], dtype },
    value: { shape: [1, hkv, rows, headDim], dtype },
    ...(causal ? { maskMod: "q_idx >= kv_idx" } : {}),
    ...(pageSize ? { kvCache: { pageSize } } : {}),
  };
}
