/**
 * Strided views: a tensor whose elements sit at `offset + sum(index[i] * strides[i])` of its data, in elements, as
 * numpy and PyTorch views do. Absent strides mean contiguous row-major, an absent offset 0. Views never copy; the
 * kernel takes their strides as runtime arguments, so one compiled kernel reads every layout.
 */
import { type DType, type DataOf, type Tensor, numel, typedArrayFor } from "./tensor.js";

/** Row-major strides of `shape`. */
export function contiguousStrides(shape: readonly number[]): number[] {
  const strides = new Array<number>(shape.length);
  let step = 1;
  for (let axis = shape.length - 1; axis >= 0; axis--) {
    strides[axis] = step;
    step *= Math.max(shape[axis], 1);
  }
  return strides;
}

/** The tensor's strides, contiguous ones when it has none. */
export function stridesOf(t: Pick<Tensor, "shape" | "strides">): number[] {
  return t.strides ? [...t.strides] : contiguousStrides(t.shape);
}

export function offsetOf(t: Pick<Tensor, "offset">): number {
  return t.offset ?? 0;
}

/**
 * The first and last element a view reaches, or null when it has no elements. Throws a RangeError (naming the
 * problem, not the field: callers add it) for a negative or non-integer stride or offset, a rank mismatch, or an
 * index past 2^53.
 */
export function viewSpan(
  shape: readonly number[],
  strides: readonly number[],
  offset: number,
): { first: number; last: number } | null {
  if (strides.length !== shape.length) {
    throw new RangeError(`strides [${strides.join(", ")}] have ${strides.length} entries for a rank-${shape.length} shape`);
  }
  if (!Number.isSafeInteger(offset) || offset < 0) throw new RangeError(`offset ${offset} is not a non-negative integer`);
  let last = offset;
  for (let axis = 0; axis < shape.length; axis++) {
    const stride = strides[axis];
    if (!Number.isSafeInteger(stride) || stride < 0) {
      throw new RangeError(`strides[${axis}] = ${stride} is not a non-negative integer`);
    }
    if (shape[axis] === 0) return null;
    last += (shape[axis] - 1) * stride;
    if (!Number.isSafeInteger(last)) throw new RangeError(`the view's largest index overflows (past 2^53 at dim ${axis})`);
  }
  return { first: offset, last };
}

/** Throws a RangeError unless every element of the view lies inside `length` elements of data. */
export function checkViewBounds(shape: readonly number[], strides: readonly number[], offset: number, length: number): void {
  const span = viewSpan(shape, strides, offset);
  if (span && span.last >= length) {
    throw new RangeError(
      `shape [${shape.join(", ")}] with strides [${strides.join(", ")}] and offset ${offset} reaches element ${span.last}, ` +
        `but the data has ${length}`,
    );
  }
}

/** A view of `data` (not copied): contiguous when `strides` is omitted. Throws a RangeError if it reaches past the data. */
export function view<D extends DType>(
  data: DataOf[D],
  dtype: D,
  shape: readonly number[],
  strides?: readonly number[],
  offset = 0,
): Tensor {
  const storage = typedArrayFor(dtype);
  if (!(data instanceof storage)) {
    throw new TypeError(`a ${dtype} tensor is stored in a ${storage.name}, got ${(data as object).constructor.name}`);
  }
  numel(shape);
  const dims = [...shape];
  const steps = strides ? [...strides] : contiguousStrides(dims);
  checkViewBounds(dims, steps, offset, data.length);
  return { data, dtype, shape: dims, strides: steps, offset };
}

/** The same elements with dims reordered: result dim i is dim `dims[i]` of `t` (like torch.permute). */
export function permute(t: Tensor, dims: readonly number[]): Tensor {
  const rank = t.shape.length;
  const seen = new Set(dims);
  if (dims.length !== rank || seen.size !== rank || dims.some((d) => !Number.isInteger(d) || d < 0 || d >= rank)) {
    throw new RangeError(`permute dims [${dims.join(", ")}] are not a permutation of 0..${rank - 1}`);
  }
  const strides = stridesOf(t);
  return { ...t, shape: dims.map((d) => t.shape[d]), strides: dims.map((d) => strides[d]), offset: offsetOf(t) };
}

/** Whether the tensor's elements are its data, in row-major order, from element 0 (a plain tensor). */
export function isPlain(t: Tensor): boolean {
  if (offsetOf(t) !== 0 || t.data.length !== numel(t.shape)) return false;
  if (!t.strides) return true;
  const want = contiguousStrides(t.shape);
  return t.shape.every((dim, axis) => dim <= 1 || t.strides![axis] === want[axis]);
}

/** The data index of every element in row-major order of the logical shape. */
export function elementIndices(t: Tensor): Float64Array {
  const shape = t.shape;
  const strides = stridesOf(t);
  const count = numel(shape);
  const out = new Float64Array(count);
  const index = new Array<number>(shape.length).fill(0);
  let at = offsetOf(t);
  for (let i = 0; i < count; i++) {
    out[i] = at;
    for (let axis = shape.length - 1; axis >= 0; axis--) {
      if (++index[axis] < shape[axis]) {
        at += strides[axis];
        break;
      }
      at -= (shape[axis] - 1) * strides[axis];
      index[axis] = 0;
    }
  }
  return out;
}

/** A plain (contiguous, offset 0) tensor with the view's elements: `t` itself when it is plain already. */
export function contiguous(t: Tensor): Tensor {
  if (isPlain(t)) return t.strides || t.offset ? { data: t.data, shape: [...t.shape], dtype: t.dtype } : t;
  const indices = elementIndices(t);
  const data = new (typedArrayFor(t.dtype))(indices.length) as Tensor["data"];
  const src = t.data as ArrayLike<unknown> & { [i: number]: unknown };
  const dst = data as unknown as { [i: number]: unknown };
  for (let i = 0; i < indices.length; i++) dst[i] = src[indices[i]];
  return { data, shape: [...t.shape], dtype: t.dtype };
}

/** The view's elements copied into `target`'s positions (both of the same shape and dtype). */
export function copyInto(source: Tensor, target: Tensor): void {
  const from = elementIndices(source);
  const to = elementIndices(target);
  if (from.length !== to.length) throw new RangeError(`copyInto: ${from.length} elements into ${to.length}`);
  const src = source.data as unknown as { [i: number]: unknown };
  const dst = target.data as unknown as { [i: number]: unknown };
  for (let i = 0; i < from.length; i++) dst[to[i]] = src[from[i]];
}
