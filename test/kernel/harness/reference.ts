import type { KernelConfig } from "./buildKernel.js";
import type { Mods } from "./mods.js";
import { kvLenOf, type Problem } from "./problem.js";

/** PyTorch's block-mask layout (the four arrays of docs/abi.md) plus its shape. */
export interface BlockMaskArrays {
  maskBatch: number;
  maskHeads: number;
  qBlocks: number;
  kvBlocks: number;
  kvNumBlocks: Int32Array;
  kvIndices: Int32Array;
  fullKvNumBlocks: Int32Array | null;
  fullKvIndices: Int32Array | null;
}

export type BlockKind = "absent" | "partial" | "full";

/** Selected blocks ascending, then the others ascending: PyTorch's stable argsort of the dense block mask. */
function pytorchRow(selected: number[], kvBlocks: number): number[] {
  const chosen = new Set(selected);
  return [...selected, ...Array.from({ length: kvBlocks }, (_, k) => k).filter((k) => !chosen.has(k))];
}

/** Assemble the arrays from a per-(row, kv block) classification; `withFull = false` folds full into partial. */
export function blockMaskFromKinds(
  shape: { maskBatch: number; maskHeads: number; qBlocks: number; kvBlocks: number },
  kind: (row: number, kb: number) => BlockKind,
  withFull = true,
): BlockMaskArrays {
  const rows = shape.maskBatch * shape.maskHeads * shape.qBlocks;
  const kvNumBlocks = new Int32Array(rows);
  const kvIndices = new Int32Array(rows * shape.kvBlocks);
  const fullKvNumBlocks = withFull ? new Int32Array(rows) : null;
  const fullKvIndices = withFull ? new Int32Array(rows * shape.kvBlocks) : null;
  for (let r = 0; r < rows; ++r) {
    const partial: number[] = [];
    const full: number[] = [];
    for (let kb = 0; kb < shape.kvBlocks; ++kb) {
      const k = kind(r, kb);
      if (k === "full" && withFull) full.push(kb);
      else if (k !== "absent") partial.push(kb);
    }
    kvNumBlocks[r] = partial.length;
    kvIndices.set(pytorchRow(partial, shape.kvBlocks), r * shape.kvBlocks);
    if (fullKvNumBlocks && fullKvIndices) {
      fullKvNumBlocks[r] = full.length;
      fullKvIndices.set(pytorchRow(full, shape.kvBlocks), r * shape.kvBlocks);
    }
  }
  return { ...shape, kvNumBlocks, kvIndices, fullKvNumBlocks, fullKvIndices };
}

/** The block mask md_build_block_mask must produce: mask_mod over every in-range position of every block. */
export function referenceBlockMask(
  c: KernelConfig,
  p: Problem,
  mods: Mods,
  o: { maskBatch: number; maskHeads: number; withFull?: boolean },
): BlockMaskArrays {
  const [QB, KVB] = c.blockSize;
  const qBlocks = Math.ceil(p.qLen / QB);
  const kvBlocks = Math.ceil(p.kvLen / KVB);
  const perSequence = o.maskBatch === p.batch;
  return blockMaskFromKinds(
    { maskBatch: o.maskBatch, maskHeads: o.maskHeads, qBlocks, kvBlocks },
    (row, kb) => {
      const qb = row % qBlocks;
      const h = Math.floor(row / qBlocks) % o.maskHeads;
      const b = Math.floor(row / qBlocks / o.maskHeads);
      const kvLen = p.paged && perSequence ? p.paged.seqLens[b] : p.kvLen;
      let seenTrue = false;
      let seenFalse = false;
      for (let q = qb * QB; q < Math.min(p.qLen, (qb + 1) * QB); ++q)
        for (let kv = kb * KVB; kv < Math.min(kvLen, (kb + 1) * KVB); ++kv) {
          if (mods.mask(b, h, q, kv, p.buffers)) seenTrue = true;
          else seenFalse = true;
        }
      return seenTrue ? (seenFalse ? "partial" : "full") : "absent";
    },
    o.withFull ?? true,
  );
}

/** Kind of block kb for (b, h, q block qb) as the kernel reads the mask (absent when in neither list). */
function kindInMask(m: BlockMaskArrays, b: number, h: number, qb: number, kb: number): BlockKind {
  const row = ((m.maskBatch === 1 ? 0 : b) * m.maskHeads + (m.maskHeads === 1 ? 0 : h)) * m.qBlocks + qb;
  const listed = (num: Int32Array | null, idx: Int32Array | null) =>
    num !== null && idx !== null && idx.subarray(row * m.kvBlocks, row * m.kvBlocks + num[row]).includes(kb);
  if (listed(m.kvNumBlocks, m.kvIndices)) return "partial";
  if (listed(m.fullKvNumBlocks, m.fullKvIndices)) return "full";
  return "absent";
}

/**
 * FlexAttention in double precision with the kernel's block semantics: positions past the sequence's length and
 * in absent blocks are masked, partial blocks evaluate mask_mod, full blocks skip it; a fully masked row gives
 * zeros and lse = -inf. Without a block mask every block is partial.
 */
export function referenceAttention(
  c: KernelConfig,
  p: Problem,
  mods: Mods,
  mask?: BlockMaskArrays,
): { out: Float64Array; lse: Float64Array } {
  const [QB, KVB] = c.blockSize;
  const G = c.hq / c.hkv;
  const scale = Math.fround(c.scale ?? 1 / Math.sqrt(c.qDim));
  const out = new Float64Array(p.batch * c.hq * p.qLen * c.vDim);
  const lse = new Float64Array(p.batch * c.hq * p.qLen);
  const s = new Float64Array(p.kvLen);
  for (let b = 0; b < p.batch; ++b) {
    const kvLen = kvLenOf(p, b);
    for (let h = 0; h < c.hq; ++h) {
      const hk = Math.floor(h / G);
      for (let i = 0; i < p.qLen; ++i) {
        const qOff = ((b * c.hq + h) * p.qLen + i) * c.qDim;
        let m = -Infinity;
        for (let j = 0; j < kvLen; ++j) {
          const kind = mask ? kindInMask(mask, b, h, Math.floor(i / QB), Math.floor(j / KVB)) : "partial";
          if (kind === "absent" || (kind === "partial" && !mods.mask(b, h, i, j, p.buffers))) {
            s[j] = -Infinity;
            continue;
          }
          const kOff = ((b * c.hkv + hk) * p.kvLen + j) * c.qDim;
          let dot = 0;
          for (let d = 0; d < c.qDim; ++d) dot += p.q[qOff + d] * p.k[kOff + d];
          s[j] = mods.score(dot * scale, b, h, i, j, p.buffers);
          m = Math.max(m, s[j]);
        }
        const row = (b * c.hq + h) * p.qLen + i;
        if (m === -Infinity) {
          lse[row] = -Infinity;
          continue;
        }
        let l = 0;
        const acc = new Float64Array(c.vDim);
        for (let j = 0; j < kvLen; ++j) {
          if (s[j] === -Infinity) continue;
          const w = Math.exp(s[j] - m);
          l += w;
          const vOff = ((b * c.hkv + hk) * p.kvLen + j) * c.vDim;
          for (let d = 0; d < c.vDim; ++d) acc[d] += w * p.v[vOff + d];
        }
        for (let d = 0; d < c.vDim; ++d) out[row * c.vDim + d] = acc[d] / l;
        lse[row] = m + Math.log(l);
      }
    }
  }
  return { out, lse };
}
