import { describe, expect, it, vi } from "vitest";
import { type BufferValues, compileEvaluator } from "../../src/ir/evalExpr.js";
import { flexAttention } from "../../src/ir/flexAttention.js";
import type { AttentionGraph } from "../../src/ir/graph.js";
import { classifyBlock } from "../../src/ir/intervals.js";
import { type BlockMask, allocateBlockMask, validateBlockMask } from "../../src/runtime/blockMask.js";
import { createBlockMask, type NativeBlockMaskRequest } from "../../src/runtime/createBlockMask.js";
import { InputError } from "../../src/runtime/errors.js";

type Kind = "full" | "partial" | "empty";
const HEADS = 3;
const DOC_LEN = 129;

function graphOf(maskMod: string | undefined, blockSize: [number, number], paged = false): AttentionGraph {
  return flexAttention({
    name: "block_mask_test",
    query: { shape: [2, HEADS, 17, 16], dtype: "float32" },
    key: { shape: paged ? [8, HEADS, 16, 16] : [2, HEADS, 129, 16], dtype: "float32" },
    value: { shape: paged ? [8, HEADS, 16, 16] : [2, HEADS, 129, 16], dtype: "float32" },
    maskMod,
    buffers: { doc: { shape: [DOC_LEN], dtype: "int32" } },
    blockSize,
    kvCache: paged ? { pageSize: 16 } : undefined,
  });
}

/** Documents of lengths 5, 20, 40, ...: one id per position. */
const DOC_IDS = Array.from({ length: DOC_LEN }, (_, i) => (i < 5 ? 0 : i < 25 ? 1 : i < 65 ? 2 : 3));
const DOC_BUFFERS: BufferValues[] = [{ values: DOC_IDS, shape: [DOC_LEN] }];

/** The dense classification PyTorch's create_block_mask computes: every in-range position of every block. */
function denseKinds(
  graph: AttentionGraph,
  dims: { batch: number; heads: number },
  qLen: number,
  kvLen: number,
  seqLens?: Int32Array,
  buffers: BufferValues[] = [],
): Kind[] {
  const [QB, KB] = graph.blockSize;
  const evaluate = compileEvaluator(graph.maskMod);
  const kinds: Kind[] = [];
  for (let b = 0; b < dims.batch; b++) {
    const kvEnd = seqLens ? seqLens[b] : kvLen;
    for (let h = 0; h < dims.heads; h++) {
      for (let qb = 0; qb < Math.ceil(qLen / QB); qb++) {
        for (let kb = 0; kb < Math.ceil(kvLen / KB); kb++) {
          let seenTrue = false;
          let seenFalse = false;
          for (let q = qb * QB; q < Math.min(qLen, (qb + 1) * QB); q++) {
            for (let kv = kb * KB; kv < Math.min(kvEnd, (kb + 1) * KB); kv++) {
              if (evaluate({ score: 0, b, h, q_idx: q, kv_idx: kv, buffers })) seenTrue = true;
              else seenFalse = true;
            }
          }
          kinds.push(seenTrue ? (seenFalse ? "partial" : "full") : "empty");
        }
      }
    }
  }
  return kinds;
}

/** Reads a mask back into one kind per block, checking each row lists its blocks ascending, then the rest ascending. */
function kindsOf(mask: BlockMask): Kind[] {
  const rows = mask.batch * mask.heads * mask.qBlocks;
  const kinds: Kind[] = new Array(rows * mask.kvBlocks).fill("empty");
  const mark = (counts: Int32Array | null, indices: Int32Array | null, kind: Kind) => {
    if (!counts || !indices) return;
    for (let row = 0; row < rows; row++) {
      const list = [...indices.subarray(row * mask.kvBlocks, (row + 1) * mask.kvBlocks)];
      const selected = list.slice(0, counts[row]);
      const rest = list.slice(counts[row]);
      expect(selected).toEqual([...selected].sort((x, y) => x - y));
      expect(rest).toEqual([...rest].sort((x, y) => x - y));
      expect([...list].sort((x, y) => x - y)).toEqual(Array.from({ length: mask.kvBlocks }, (_, k) => k));
      for (const block of selected) kinds[row * mask.kvBlocks + block] = kind;
    }
  };
  mark(mask.kvNumBlocks, mask.kvIndices, "partial");
  mark(mask.fullKvNumBlocks, mask.fullKvIndices, "full");
  return kinds;
}

const SHAPES: Array<{ qLen: number; kvLen: number; blockSize: [number, number] }> = [
  { qLen: 17, kvLen: 129, blockSize: [16, 16] },
  { qLen: 17, kvLen: 129, blockSize: [16, 128] },
  { qLen: 129, kvLen: 17, blockSize: [32, 64] },
  { qLen: 100, kvLen: 129, blockSize: [64, 32] },
  { qLen: 129, kvLen: 129, blockSize: [128, 16] },
  { qLen: 1, kvLen: 129, blockSize: [16, 32] },
];

const INDEX_MASKS = [
  "q_idx >= kv_idx",
  "q_idx - kv_idx < 40 && q_idx >= kv_idx",
  "kv_idx < 64 || q_idx >= kv_idx",
  "(b + h + q_idx // 8 + kv_idx // 8) % 3 != 0",
  "((q_idx ^ kv_idx) & 16) == 0",
  "h % 2 == 0 || kv_idx % 7 == 3",
  "q_idx * q_idx + 3 * kv_idx < 700",
  "(q_idx - kv_idx) + kv_idx >= 0",
  "q_idx < 0",
  "false",
];

describe("createBlockMask against the dense classification", () => {
  const B = 2;
  for (const { qLen, kvLen, blockSize } of SHAPES) {
    it.each([...INDEX_MASKS, undefined])(`%s, qLen ${qLen}, kvLen ${kvLen}, blocks ${blockSize}`, (maskMod) => {
      const graph = graphOf(maskMod, blockSize);
      const mask = createBlockMask(graph, B, qLen, kvLen);
      const readsB = /\bb\b/.test(maskMod ?? "");
      const readsH = /\bh\b/.test(maskMod ?? "");
      expect([mask.batch, mask.heads]).toEqual([readsB ? B : 1, readsH ? HEADS : 1]);
      expect([mask.qBlockSize, mask.kvBlockSize]).toEqual(blockSize);
      validateBlockMask(mask, { batch: B, heads: HEADS, qLen, kvLen, qBlockSize: blockSize[0], kvBlockSize: blockSize[1] });
      const expected = denseKinds(graph, mask, qLen, kvLen);
      expect(kindsOf(mask)).toEqual(expected);
      // The full arrays are dropped exactly when there is no full block.
      expect(mask.fullKvNumBlocks === null).toBe(!expected.includes("full"));
    });
  }

  it("is exact where intervals alone cannot decide", () => {
    const graph = graphOf("(q_idx - kv_idx) + kv_idx >= 0", [16, 16]);
    expect(classifyBlock(graph.maskMod, { b: [0, 0], h: [0, 0], q_idx: [0, 15], kv_idx: [0, 15] })).toBe("partial");
    const mask = createBlockMask(graph, 1, 32, 32);
    expect([...mask.kvNumBlocks]).toEqual([0, 0]);
    expect([...mask.fullKvNumBlocks!]).toEqual([2, 2]);
  });

  it("scales with the blocks, not the positions, for a causal mask over 16k x 16k", () => {
    const graph = graphOf("q_idx >= kv_idx", [128, 128]);
    const mask = createBlockMask(graph, 1, 16384, 16384);
    const rows = mask.qBlocks;
    expect(rows).toBe(128);
    for (let qb = 0; qb < rows; qb++) {
      expect(mask.kvNumBlocks[qb]).toBe(1);
      expect(mask.kvIndices[qb * mask.kvBlocks]).toBe(qb);
      expect(mask.fullKvNumBlocks![qb]).toBe(qb);
    }
  });
});

describe("paged: seqLens bound each sequence", () => {
  it.each(["q_idx >= kv_idx", "kv_idx % 32 < 20", "doc[kv_idx] != 2", undefined])("%s", (maskMod) => {
    const graph = graphOf(maskMod, [16, 32], true);
    const seqLens = Int32Array.from([0, 50, 129]);
    const mask = createBlockMask(graph, 3, 17, 129, { seqLens, buffers: DOC_BUFFERS });
    // Rows differ by sequence even when mask_mod ignores b.
    expect(mask.batch).toBe(3);
    validateBlockMask(mask, { batch: 3, heads: HEADS, qLen: 17, kvLen: 129, qBlockSize: 16, kvBlockSize: 32 });
    expect(kindsOf(mask)).toEqual(denseKinds(graph, mask, 17, 129, seqLens, DOC_BUFFERS));
    // Sequence 0 is empty; sequence 1 has nothing past kv block 1 (positions 32..49).
    const kvBlocks = mask.kvBlocks;
    const kinds = kindsOf(mask);
    expect(kinds.slice(0, 2 * kvBlocks).every((k) => k === "empty")).toBe(true);
    expect(kinds.slice(2 * kvBlocks, 4 * kvBlocks).filter((_, i) => i % kvBlocks >= 2).every((k) => k === "empty")).toBe(true);
  });

  it("refuses seqLens that do not fit", () => {
    const graph = graphOf("q_idx >= kv_idx", [16, 32], true);
    const fails = (seqLens: Int32Array, pattern: RegExp) => {
      const error = (() => {
        try {
          createBlockMask(graph, 2, 17, 64, { seqLens });
        } catch (e) {
          return e;
        }
      })();
      expect(error).toBeInstanceOf(InputError);
      expect((error as InputError).field).toBe("seqLens");
      expect((error as InputError).message).toMatch(pattern);
    };
    fails(Int32Array.from([3]), /seqLens has 1 entries, expected the batch size 2/);
    fails(Int32Array.from([3, 65]), /seqLens\[1\] = 65 is outside \[0, kvLen = 64\]/);
    fails(Int32Array.from([-1, 3]), /seqLens\[0\] = -1/);
  });
});

describe("buffer-reading masks", () => {
  const graph = graphOf("doc[q_idx] == doc[kv_idx] && q_idx >= kv_idx", [16, 16]);

  it("are evaluated in TypeScript from the buffer values when there is no native builder", () => {
    const mask = createBlockMask(graph, 2, 129, 129, { buffers: DOC_BUFFERS });
    expect([mask.batch, mask.heads]).toEqual([1, 1]);
    const kinds = kindsOf(mask);
    expect(kinds).toEqual(denseKinds(graph, mask, 129, 129, undefined, DOC_BUFFERS));
    // Document 3 spans 65..128, so block (5, 4) (q 80..95, kv 64..79) holds 64 (document 2): partial, not full;
    // block (6, 5) lies inside document 3 below the diagonal: full.
    expect(kinds[5 * mask.kvBlocks + 4]).toBe("partial");
    expect(kinds[6 * mask.kvBlocks + 5]).toBe("full");
    expect(kinds[1 * mask.kvBlocks + 6]).toBe("empty");
  });

  it("go to the native builder when one is given, with the broadcast dims", () => {
    const sentinel = allocateBlockMask({ batch: 1, heads: 1, qBlocks: 9, kvBlocks: 9, qBlockSize: 16, kvBlockSize: 16 });
    const nativeBuild = vi.fn((_request: NativeBlockMaskRequest) => sentinel);
    expect(createBlockMask(graph, 2, 129, 129, { nativeBuild })).toBe(sentinel);
    expect(nativeBuild).toHaveBeenCalledWith({ batch: 1, heads: 1, batchSize: 2, qLen: 129, kvLen: 129, seqLens: undefined });
  });

  it("never call the native builder for index-only or constant masks", () => {
    const nativeBuild = vi.fn((_request: NativeBlockMaskRequest) => {
      throw new Error("not expected");
    });
    createBlockMask(graphOf("q_idx >= kv_idx", [16, 16]), 2, 17, 33, { nativeBuild });
    const all = createBlockMask(graphOf(undefined, [16, 16]), 2, 17, 33, { nativeBuild });
    expect([...all.fullKvNumBlocks!]).toEqual([3, 3]);
    expect([...all.kvNumBlocks]).toEqual([0, 0]);
    expect(nativeBuild).not.toHaveBeenCalled();
  });

  it("need the buffer values or a native builder", () => {
    expect(() => createBlockMask(graph, 2, 17, 17)).toThrow(InputError);
    expect(() => createBlockMask(graph, 2, 17, 17)).toThrow(/mask_mod reads captured buffers/);
  });
});

describe("argument checks", () => {
  it.each([
    ["batch", -1, 17, 17],
    ["qLen", 2, 1.5, 17],
    ["kvLen", 2, 17, Number.NaN],
  ] as const)("names %s", (field, B, qLen, kvLen) => {
    const graph = graphOf("q_idx >= kv_idx", [16, 16]);
    expect(() => createBlockMask(graph, B, qLen, kvLen)).toThrow(new RegExp(`^${field} = .* is not a non-negative integer`));
  });

  it("gives empty arrays for empty lengths", () => {
    const mask = createBlockMask(graphOf("q_idx >= kv_idx", [16, 16]), 2, 0, 33);
    expect(mask.qBlocks).toBe(0);
    expect(mask.kvNumBlocks.length).toBe(0);
  });
});
