import { compileEvaluator, type BufferValues, type EvalEnv } from "../ir/evalExpr.js";
import { varName } from "../ir/expr.js";
import type { AttentionGraph } from "../ir/graph.js";
import { type Tensor, toFloat64 } from "../runtime/tensor.js";

/** What the reference reads: the same tensors a kernel call takes. */
export interface ReferenceInputs {
  query: Tensor;
  key: Tensor;
  value: Tensor;
  buffers?: Record<string, Tensor>;
  pageTable?: Tensor;
  seqLens?: Tensor;
  /** Ragged query [totalQ, Hq, E]: sequence b owns rows qStartLoc[b] .. qStartLoc[b + 1] - 1. */
  qStartLoc?: Tensor;
  /** Packed key/value [totalKv, Hkv, D]: sequence b owns kv rows kvStartLoc[b] .. kvStartLoc[b + 1] - 1. */
  kvStartLoc?: Tensor;
  /** Quantized key/value: int8 one scale per token and kv head (the cache's shape without D), fp8 [Hkv] or none. */
  keyScale?: Tensor;
  valueScale?: Tensor;
  /** A block mask restricts attention further: blocks it omits are masked, its full blocks skip mask_mod. */
  blockMask?: {
    batch: number; heads: number; qBlocks: number; kvBlocks: number; qBlockSize: number; kvBlockSize: number;
    kvNumBlocks: Int32Array; kvIndices: Int32Array; fullKvNumBlocks: Int32Array | null; fullKvIndices: Int32Array | null;
  };
}

export interface ReferenceOutputs {
  /** [B, Hq, Lq, Dv]; ragged: [totalQ, Hq, Dv]. */
  out: Float64Array;
  /** [B, Hq, Lq], natural log; -inf for a fully masked row. Ragged: [totalQ, Hq]. */
  lse: Float64Array;
  /** The shape of `out`. */
  shape: number[];
}

/**
 * FlexAttention evaluated in float64, one query row at a time, written to be obviously right rather than fast:
 * score = scale * q.k, then score_mod, then mask_mod (masked -> -inf), softmax over the row, times V. A row whose
 * every position is masked gives zeros and lse = -inf; a NaN score at an attended position makes the row NaN, as
 * in torch.softmax. Values at masked positions are never read. GQA maps query head h to kv head h / (Hq / Hkv); with a
 * paged cache, logical position p of sequence b is row p % pageSize of page pageTable[b][p / pageSize]; a key/value
 * batch of 1 serves every sequence. Views are read through their strides. Ragged batches: sequence b's query rows
 * are rows qStartLoc[b].. of the packed [totalQ, Hq, E] query (q_idx counts from 0 in each sequence), its keys rows
 * kvStartLoc[b].. of a packed [totalKv, Hkv, D] key/value.
 */
export function referenceAttention(graph: AttentionGraph, inputs: ReferenceInputs): ReferenceOutputs {
  const ragged = inputs.qStartLoc !== undefined && inputs.qStartLoc !== null;
  const packed = inputs.kvStartLoc !== undefined && inputs.kvStartLoc !== null;
  const qStart = ragged ? toFloat64(inputs.qStartLoc!) : undefined;
  const kvStart = packed ? toFloat64(inputs.kvStartLoc!) : undefined;
  const Hq = inputs.query.shape[1];
  const E = inputs.query.shape[ragged ? 2 : 3];
  const B = ragged ? qStart!.length - 1 : inputs.query.shape[0];
  const denseLq = ragged ? 0 : inputs.query.shape[2];
  const Hkv = inputs.key.shape[1];
  const Dv = inputs.value.shape[packed ? 2 : 3];
  const group = Hq / Hkv;
  const q = toFloat64(inputs.query);
  const k = toFloat64(inputs.key);
  const v = toFloat64(inputs.value);
  const paged = graph.kvCache !== undefined;
  const pageSize = graph.kvCache?.pageSize ?? 0;
  const pageTable = inputs.pageTable ? toFloat64(inputs.pageTable) : undefined;
  const maxPages = inputs.pageTable?.shape[1] ?? 0;
  const seqLens = inputs.seqLens ? toFloat64(inputs.seqLens) : undefined;
  const unpagedLen = paged || packed ? 0 : inputs.key.shape[2];
  // A key/value batch of 1 serves every sequence (broadcast).
  const kvBatches = paged || packed ? 0 : inputs.key.shape[0];

  /** Query rows of sequence b, and the index of its row i among all rows ([B][Hq][Lq] dense, [T][Hq] ragged). */
  const qLenOf = (b: number): number => (ragged ? qStart![b + 1] - qStart![b] : denseLq);
  const rowIndex = (b: number, h: number, i: number): number =>
    ragged ? (qStart![b] + i) * Hq + h : (b * Hq + h) * denseLq + i;
  const kvLenOf = (b: number): number => (paged ? seqLens![b] : packed ? kvStart![b + 1] - kvStart![b] : unpagedLen);

  /** Offset of the K row (or V row, with its own dim) of logical position p. */
  const rowOffset = (b: number, hkv: number, p: number, dim: number): number => {
    if (packed) return ((kvStart![b] + p) * Hkv + hkv) * dim;
    if (!paged) return (((kvBatches === 1 ? 0 : b) * Hkv + hkv) * unpagedLen + p) * dim;
    const page = pageTable![b * maxPages + Math.floor(p / pageSize)];
    return ((page * Hkv + hkv) * pageSize + (p % pageSize)) * dim;
  };
  // Quantized key/value: a value is scale * code, exactly (codes and float32 scales are exact doubles, and so is their
  // product); int8 scales are addressed like the rows without their last dim, fp8 ones by kv head.
  const keyScales = inputs.keyScale ? toFloat64(inputs.keyScale) : undefined;
  const valueScales = inputs.valueScale ? toFloat64(inputs.valueScale) : undefined;
  const perToken = graph.key.dtype === "int8";
  const scaleAt = (scales: Float64Array | undefined, b: number, hkv: number, p: number): number =>
    scales === undefined ? 1 : perToken ? scales[rowOffset(b, hkv, p, 1)] : scales[hkv];

  const buffers = interpreterBuffers(graph, inputs.buffers);
  const scoreIsIdentity = varName(graph.scoreMod) === "score";
  const scoreMod = compileEvaluator(graph.scoreMod);
  const maskMod = compileEvaluator(graph.maskMod);
  const env: EvalEnv = { score: 0, b: 0, h: 0, q_idx: 0, kv_idx: 0, buffers };
  const blockState = blockStateLookup(inputs.blockMask);

  const rows = ragged ? qStart![B] * Hq : B * Hq * denseLq;
  const out = new Float64Array(rows * Dv);
  const lse = new Float64Array(rows);
  for (let b = 0; b < B; b++) {
    const kvLen = kvLenOf(b);
    const Lq = qLenOf(b);
    const scores = new Float64Array(kvLen);
    for (let h = 0; h < Hq; h++) {
      const hkv = Math.floor(h / group);
      for (let i = 0; i < Lq; i++) {
        const row = rowIndex(b, h, i);
        const qOff = row * E;
        env.b = b;
        env.h = h;
        env.q_idx = i;
        let max = -Infinity;
        let sawNaN = false;
        for (let j = 0; j < kvLen; j++) {
          const state = blockState(b, h, i, j);
          if (state === "absent") {
            scores[j] = -Infinity;
            continue;
          }
          const kOff = rowOffset(b, hkv, j, E);
          const ks = scaleAt(keyScales, b, hkv, j);
          let dot = 0;
          for (let d = 0; d < E; d++) dot += q[qOff + d] * (ks * k[kOff + d]);
          env.kv_idx = j;
          env.score = dot * graph.scale;
          const s = scoreIsIdentity ? env.score : (scoreMod(env) as number);
          const keep = state === "full" || (maskMod(env) as boolean);
          scores[j] = keep ? s : -Infinity;
          if (scores[j] > max) max = scores[j];
          if (Number.isNaN(scores[j])) sawNaN = true;
        }
        if (sawNaN) {
          // As torch.softmax: a NaN score makes the row's max, every weight and so the whole row NaN.
          out.fill(NaN, row * Dv, (row + 1) * Dv);
          lse[row] = NaN;
          continue;
        }
        if (max === -Infinity) {
          lse[row] = -Infinity;
          continue;
        }
        let sum = 0;
        const outOff = row * Dv;
        for (let j = 0; j < kvLen; j++) {
          if (scores[j] === -Infinity) continue;
          const p = Math.exp(scores[j] - max);
          sum += p;
          const vOff = rowOffset(b, hkv, j, Dv);
          const vs = scaleAt(valueScales, b, hkv, j);
          for (let d = 0; d < Dv; d++) out[outOff + d] += p * (vs * v[vOff + d]);
        }
        for (let d = 0; d < Dv; d++) out[outOff + d] /= sum;
        lse[row] = max + Math.log(sum);
      }
    }
  }
  return { out, lse, shape: ragged ? [qStart![B], Hq, Dv] : [B, Hq, denseLq, Dv] };
}

type BlockState = "absent" | "partial" | "full";

/** Per-position lookup of the block mask's verdict; without a mask every position is partial (mask_mod decides). */
function blockStateLookup(mask: ReferenceInputs["blockMask"]): (b: number, h: number, i: number, j: number) => BlockState {
  if (!mask) return () => "partial";
  const { batch, heads, qBlocks, kvBlocks } = mask;
  const states = new Map<number, Uint8Array>();
  const rowStates = (mb: number, mh: number, qb: number): Uint8Array => {
    const row = (mb * heads + mh) * qBlocks + qb;
    let s = states.get(row);
    if (!s) {
      s = new Uint8Array(kvBlocks);
      for (let n = 0; n < mask.kvNumBlocks[row]; n++) s[mask.kvIndices[row * kvBlocks + n]] = 1;
      if (mask.fullKvNumBlocks && mask.fullKvIndices) {
        for (let n = 0; n < mask.fullKvNumBlocks[row]; n++) s[mask.fullKvIndices[row * kvBlocks + n]] = 2;
      }
      states.set(row, s);
    }
    return s;
  };
  return (b, h, i, j) => {
    const s = rowStates(batch === 1 ? 0 : b, heads === 1 ? 0 : h, Math.floor(i / mask.qBlockSize))[Math.floor(j / mask.kvBlockSize)];
    return s === 2 ? "full" : s === 1 ? "partial" : "absent";
  };
}

/** The captured buffers of a call as the interpreter reads them; int64 stays a BigInt64Array, so values beyond 2^53
 * reach it exactly. */
export function interpreterBuffers(graph: AttentionGraph, tensors: Record<string, Tensor> | undefined): BufferValues[] {
  return graph.buffers.map((spec) => {
    const t = tensors?.[spec.name];
    if (!t) throw new Error(`buffer '${spec.name}' is missing`);
    const values = spec.dtype === "bool" ? Array.from(t.data as Uint8Array, Boolean)
      : t.data instanceof BigInt64Array ? t.data
      : Array.from(toFloat64(t));
    return { values, shape: t.shape };
  });
}
