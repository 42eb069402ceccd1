/**
 * Quantizing key/value rows for an 8-bit cache (DESIGN "Quantized KV"), bit for bit as the engine's `md_quantize_kv`:
 * y = x / scale in float32, rounded to nearest even to the code.
 * - int8, symmetric: one scale per row (token and kv head), max |row| / 127 in float32, codes in [-127, 127]; a row of
 *   zeros gets scale 0 and codes 0.
 * - fp8 (float8_e4m3fn, float8_e5m2): one scale per kv head, given or 1; codes saturate to the largest finite value
 *   (see f32ToE4m3fn). The kv head is dim 1 of a 4-D tensor ([B, Hkv, L, D], a pool [numPages, Hkv, pageSize, D]) and
 *   dim -2 otherwise ([Hkv, D], packed [totalKv, Hkv, D]).
 */
import { type QuantizedDType, isQuantized } from "../ir/graph.js";
import { f32ToE4m3fn, f32ToE5m2 } from "./dtypes.js";
import { type Tensor, numel, tensor, toFloat64 } from "./tensor.js";
import { elementIndices } from "./view.js";

export interface QuantizedKv {
  /** The codes, shaped like the input ([..., D]): an Int8Array (int8) or a Uint8Array (fp8). */
  codes: Tensor;
  /** float32: int8 the input's shape without D; fp8 [Hkv]. */
  scale: Tensor;
}

export interface QuantizeOptions {
  /** fp8: the scale of each kv head, default 1; must be finite and positive. */
  scale?: ArrayLike<number>;
  /** Write the codes into this tensor (a view of a cache, say) instead of allocating; same shape as the input. */
  out?: Tensor;
  /** int8: write the scales into this tensor (a view) instead of allocating; the input's shape without D. */
  outScale?: Tensor;
}

/** Codes and scales of `t` (float32, bfloat16 or float16, any view, last dim D) for a `dtype` cache. */
export function quantizeKv(t: Tensor, dtype: QuantizedDType, options: QuantizeOptions = {}): QuantizedKv {
  if (!["float32", "bfloat16", "float16"].includes(t.dtype)) {
    throw new TypeError(`quantizeKv takes float32, bfloat16 or float16 values, got ${t.dtype}`);
  }
  if (!isQuantized(dtype)) throw new TypeError(`quantizeKv: '${dtype}' is not an 8-bit dtype`);
  const rank = t.shape.length;
  if (rank < 1) throw new RangeError("quantizeKv: the input needs a last dim (D)");
  const dim = t.shape[rank - 1];
  const rows = numel(t.shape.slice(0, -1));
  const x = Float32Array.from(toFloat64(t));
  const codes = options.out ?? tensor(dtype, t.shape);
  checkTarget("out", codes, dtype, t.shape);
  const codeAt = elementIndices(codes);
  const codeData = codes.data as Int8Array | Uint8Array;

  if (dtype === "int8") {
    const scaleShape = t.shape.slice(0, -1);
    const scale = options.outScale ?? tensor("float32", scaleShape);
    checkTarget("outScale", scale, "float32", scaleShape);
    const scaleAt = elementIndices(scale);
    for (let r = 0; r < rows; r++) {
      let amax = 0;
      for (let d = 0; d < dim; d++) {
        const v = x[r * dim + d];
        if (!Number.isFinite(v)) throw new RangeError(`quantizeKv: row ${r} holds ${v}; int8 rows must be finite`);
        amax = Math.max(amax, Math.abs(v));
      }
      const s = Math.fround(amax / 127);
      (scale.data as Float32Array)[scaleAt[r]] = s;
      for (let d = 0; d < dim; d++) {
        const q = s > 0 ? roundHalfEven(Math.fround(x[r * dim + d] / s)) : 0;
        codeData[codeAt[r * dim + d]] = Math.max(-127, Math.min(127, q));
      }
    }
    return { codes, scale };
  }

  const headAxis = rank === 4 ? 1 : rank - 2;
  const heads = headAxis >= 0 ? t.shape[headAxis] : 1;
  // the head of row r (an index over the dims before D)
  const outer = t.shape.slice(0, -1);
  const below = headAxis >= 0 ? numel(outer.slice(headAxis + 1)) : 1;
  const given = options.scale ?? new Float32Array(heads).fill(1);
  if (given.length !== heads) throw new RangeError(`quantizeKv: scale has ${given.length} entries for ${heads} kv heads`);
  const headScale = Float32Array.from(given);
  headScale.forEach((s, h) => {
    if (!(s > 0) || !Number.isFinite(s)) throw new RangeError(`quantizeKv: scale[${h}] = ${s} must be finite and positive`);
  });
  const encode = dtype === "float8_e4m3fn" ? f32ToE4m3fn : f32ToE5m2;
  for (let r = 0; r < rows; r++) {
    const s = headScale[Math.floor(r / below) % heads];
    for (let d = 0; d < dim; d++) codeData[codeAt[r * dim + d]] = encode(Math.fround(x[r * dim + d] / s));
  }
  return { codes, scale: tensor("float32", [heads], headScale) };
}

function checkTarget(name: string, t: Tensor, dtype: Tensor["dtype"], shape: readonly number[]): void {
  if (t.dtype !== dtype) throw new TypeError(`quantizeKv: options.${name} is ${t.dtype}, expected ${dtype}`);
  if (t.shape.length !== shape.length || t.shape.some((d, i) => d !== shape[i])) {
    throw new RangeError(`quantizeKv: options.${name} has shape [${t.shape.join(", ")}], expected [${shape.join(", ")}]`);
  }
}

/** Round to nearest, ties to even (as C's nearbyintf in the default rounding mode). */
function roundHalfEven(y: number): number {
  const r = Math.round(y);
  return Math.abs(y % 1) === 0.5 && r % 2 !== 0 ? r - 1 : r;
}
