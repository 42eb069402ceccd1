import { describe, expect, it } from "vitest";
import { flexAttention, type FlexAttentionOptions } from "../../src/ir/flexAttention.js";
import { referenceAttention } from "../../src/reference/referenceAttention.js";
import { tensor } from "../../src/runtime/tensor.js";

const f32 = (shape: number[], values: number[]) => tensor("float32", shape, Float32Array.from(values));
const base = (over: Partial<FlexAttentionOptions>): FlexAttentionOptions => ({
  name: "ref",
  query: { shape: [1, 1, 2, 2], dtype: "float32" },
  key: { shape: [1, 1, 2, 2], dtype: "float32" },
  value: { shape: [1, 1, 2, 2], dtype: "float32" },
  ...over,
});
// q = k = identity rows, v = [[1, 2], [3, 4]]: the score of a row against its own key is 1/sqrt(2), else 0.
const inputs = {
  query: f32([1, 1, 2, 2], [1, 0, 0, 1]),
  key: f32([1, 1, 2, 2], [1, 0, 0, 1]),
  value: f32([1, 1, 2, 2], [1, 2, 3, 4]),
};
const s = 1 / Math.sqrt(2);
/** Weight of the matching key in a two-way softmax of [s, 0], by hand: e^s / (e^s + 1). */
const w = Math.exp(s) / (Math.exp(s) + 1);

describe("float64 reference, 1x1x2x2 by hand", () => {
  it("no mask", () => {
    const r = referenceAttention(flexAttention(base({ returnLse: true })), inputs);
    const row0 = [w * 1 + (1 - w) * 3, w * 2 + (1 - w) * 4];
    const row1 = [(1 - w) * 1 + w * 3, (1 - w) * 2 + w * 4];
    [...row0, ...row1].forEach((x, i) => expect(r.out[i]).toBeCloseTo(x, 14));
    expect(r.lse[0]).toBeCloseTo(Math.log(Math.exp(s) + 1), 14);
    expect(r.lse[1]).toBeCloseTo(Math.log(Math.exp(s) + 1), 14);
  });

  it("causal: row 0 sees only key 0", () => {
    const r = referenceAttention(flexAttention(base({ maskMod: "q_idx >= kv_idx" })), inputs);
    expect([...r.out.slice(0, 2)]).toEqual([1, 2]);
    expect(r.lse[0]).toBeCloseTo(s, 14);
    expect(r.out[2]).toBeCloseTo((1 - w) * 1 + w * 3, 14);
  });

  it("a fully masked row gives zeros and lse = -inf", () => {
    const r = referenceAttention(flexAttention(base({ maskMod: "q_idx > kv_idx" })), inputs);
    expect([...r.out.slice(0, 2)]).toEqual([0, 0]);
    expect(r.lse[0]).toBe(-Infinity);
    expect(r.out[2]).toBe(1);
    expect(r.out[3]).toBe(2);
  });

  it("score_mod sees the scaled score: score * 0 makes the softmax uniform", () => {
    const r = referenceAttention(flexAttention(base({ scoreMod: "score * 0", scale: 10 })), inputs);
    expect([...r.out]).toEqual([2, 3, 2, 3]);
  });

  it("alibi with a captured slopes buffer", () => {
    const g = flexAttention(base({ scoreMod: "score + slopes[h] * (kv_idx - q_idx)", buffers: { slopes: { shape: [1], dtype: "float32" } } }));
    const r = referenceAttention(g, { ...inputs, buffers: { slopes: f32([1], [0.5]) } });
    // row 0: scores [s, 0 + 0.5]; row 1: [0 - 0.5, s]
    const w0 = Math.exp(s) / (Math.exp(s) + Math.exp(0.5));
    expect(r.out[0]).toBeCloseTo(w0 * 1 + (1 - w0) * 3, 14);
  });
});

describe("GQA and paging", () => {
  it("query heads of one group read the same kv head", () => {
    const g = flexAttention(base({ query: { shape: [1, 2, 2, 2], dtype: "float32" } }));
    const r = referenceAttention(g, { ...inputs, query: f32([1, 2, 2, 2], [1, 0, 0, 1, 1, 0, 0, 1]) });
    expect([...r.out.slice(0, 4)]).toEqual([...r.out.slice(4, 8)]);
  });

  it("a paged cache with a shuffled page table equals the contiguous layout", () => {
    const [B, H, L, D, P] = [2, 2, 6, 3, 2];
    const values = (n: number, seed: number) => Array.from({ length: n }, (_, i) => Math.sin(i * 1.7 + seed));
    const q = f32([B, H, 1, D], values(B * H * D, 1));
    const k = values(B * H * L * D, 2);
    const v = values(B * H * L * D, 3);
    const opts = { query: { shape: [B, H, 1, D] as [number, number, number, number], dtype: "float32" as const }, maskMod: "kv_idx != 1" };
    const contiguous = referenceAttention(
      flexAttention(base({ ...opts, key: { shape: [B, H, L, D], dtype: "float32" }, value: { shape: [B, H, L, D], dtype: "float32" } })),
      { query: q, key: f32([B, H, L, D], k), value: f32([B, H, L, D], v) },
    );
    // Pages of P rows: sequence b's logical page n lives at physical page table[b][n].
    const table = [[4, 0, 2], [5, 1, 3]];
    const pool = (src: number[]) => {
      const out = new Array(6 * H * P * D).fill(NaN);
      for (let b = 0; b < B; b++) for (let h = 0; h < H; h++) for (let p = 0; p < L; p++) for (let d = 0; d < D; d++) {
        out[((table[b][Math.floor(p / P)] * H + h) * P + (p % P)) * D + d] = src[((b * H + h) * L + p) * D + d];
      }
      return out;
    };
    const paged = referenceAttention(
      flexAttention(base({ ...opts, key: { shape: [6, H, P, D], dtype: "float32" }, value: { shape: [6, H, P, D], dtype: "float32" }, kvCache: { pageSize: P } })),
      {
        query: q, key: f32([6, H, P, D], pool(k)), value: f32([6, H, P, D], pool(v)),
        pageTable: tensor("int32", [B, 3], Int32Array.from(table.flat())), seqLens: tensor("int32", [B], Int32Array.from([L, L])),
      },
    );
    expect([...paged.out]).toEqual([...contiguous.out]);
  });

  it("seqLens cut each sequence: positions at or past the length are never read", () => {
    const g = flexAttention(base({ key: { shape: [4, 1, 1, 2], dtype: "float32" }, value: { shape: [4, 1, 1, 2], dtype: "float32" }, kvCache: { pageSize: 1 } }));
    const r = referenceAttention(g, {
      query: f32([1, 1, 2, 2], [1, 0, 0, 1]),
      key: f32([4, 1, 1, 2], [1, 0, 0, 1, NaN, NaN, NaN, NaN]),
      value: f32([4, 1, 1, 2], [1, 2, 3, 4, NaN, NaN, NaN, NaN]),
      pageTable: tensor("int32", [1, 4], Int32Array.from([0, 1, 2, 3])),
      seqLens: tensor("int32", [1], Int32Array.from([2])),
    });
    expect(r.out[0]).toBeCloseTo(w * 1 + (1 - w) * 3, 14);
  });
});
