/** The graphs of decoding.test.ts that live in the shared cache, shared with the suite's prebuild (test/globalSetup.ts). */
import { flexAttention } from "../../src/ir/flexAttention.js";
import type { AttentionGraph } from "../../src/ir/graph.js";
import { FAST_BUILD_CXXFLAGS } from "../helpers/fastBuilds.js";

/**
 * The flags these graphs build with: the suite's fast builds (test/helpers/fastBuilds.ts). The decode template's
 * shipping build (-O3) is checked by the example specs, which decoding.test.ts also runs decode-shaped.
 */
export const DECODING_CXXFLAGS = FAST_BUILD_CXXFLAGS;

export type Dims = { hq: number; hkv: number; d: number; dv?: number; dtype: "float32" | "bfloat16" | "float16"; block: [number, number]; pageSize?: number };

/** A decode-shaped graph: `offset[b]` is the absolute position of query row 0, so the mask is causal in absolute terms. */
export function decodeGraph(name: string, dims: Dims, mods: { scoreMod?: string; maskMod?: string; buffers?: Record<string, { shape: number[]; dtype: "float32" | "int32" }> } = {}): AttentionGraph {
  const { hq, hkv, d, dtype, block, pageSize } = dims;
  const dv = dims.dv ?? d;
  const kvShape = (dim: number): [number, number, number, number] => (pageSize ? [64, hkv, pageSize, dim] : [2, hkv, 256, dim]);
  return flexAttention({
    name,
    query: { shape: [2, hq, 1, d], dtype },
    key: { shape: kvShape(d), dtype },
    value: { shape: kvShape(dv), dtype },
    maskMod: mods.maskMod ?? "q_idx + offset[b] >= kv_idx",
    scoreMod: mods.scoreMod,
    buffers: { offset: { shape: [2], dtype: "int32" }, ...mods.buffers },
    blockSize: block,
    kvCache: pageSize ? { pageSize } : undefined,
    returnLse: true,
  });
}

export const g1 = decodeGraph("dec_g1_d64", { hq: 4, hkv: 4, d: 64, dtype: "float32", block: [64, 64] });
export const GROUPS: Array<[string, AttentionGraph]> = [
  ["G=2 D=128 bf16, paged (page 32), alibi", decodeGraph("dec_g2_bf16", { hq: 8, hkv: 4, d: 128, dtype: "bfloat16", block: [64, 64], pageSize: 32 }, { scoreMod: "score + slopes[h] * (kv_idx - q_idx - offset[b])", buffers: { slopes: { shape: [8], dtype: "float32" } } })],
  ["G=4 D=72 Dv=40 fp16, paged (page 16)", decodeGraph("dec_g4_fp16", { hq: 8, hkv: 2, d: 72, dv: 40, dtype: "float16", block: [64, 64], pageSize: 16 })],
  ["G=8 D=128 fp32, soft-cap", decodeGraph("dec_g8_fp32", { hq: 8, hkv: 1, d: 128, dtype: "float32", block: [128, 128] }, { scoreMod: "30 * tanh(score / 30)" })],
];
export const windowGraph = decodeGraph("dec_window", { hq: 4, hkv: 2, d: 64, dtype: "float32", block: [64, 64] }, { maskMod: "q_idx + offset[b] >= kv_idx && q_idx + offset[b] - kv_idx < 100" });
export const noneGraph = decodeGraph("dec_none", { hq: 4, hkv: 2, d: 64, dtype: "float32", block: [64, 64] }, { maskMod: "kv_idx > q_idx + offset[b] + 100000" });

/** Every graph above. */
export function decodingGraphs(): AttentionGraph[] {
  return [g1, ...GROUPS.map(([, graph]) => graph), windowGraph, noneGraph];
}
