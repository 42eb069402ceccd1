/**
 * The runtime's tensor: a typed array with a shape and a dtype, row-major and contiguous unless it carries
 * `strides` and an `offset` (a view, see view.ts). 16-bit floats are stored as bit patterns (see dtypes.ts), int64
 * as BigInt64Array, bool as Uint8Array of 0/1.
 */
import koffi from "koffi";
import { f16BitsToF32, bf16BitsToF32, e4m3fnToF32, e5m2ToF32, f32ToE4m3fn, f32ToE5m2, toBfloat16, toFloat16 } from "./dtypes.js";
import { contiguous } from "./view.js";

export type DType =
  | "float32"
  | "bfloat16"
  | "float16"
  | "int32"
  | "int64"
  | "bool"
  | "int8"
  | "float8_e4m3fn"
  | "float8_e5m2";

export type TensorData = Float32Array | Uint16Array | Int32Array | BigInt64Array | Uint8Array | Int8Array;

export interface Tensor {
  data: TensorData;
  shape: number[];
  dtype: DType;
  /** Elements between neighbours of each dim (default: contiguous row-major); 0 broadcasts. */
  strides?: readonly number[];
  /** Index in `data` of the first element (default 0). */
  offset?: number;
}

/** Maps each dtype to its storage, so `tensor()` and readers can be typed precisely. */
export interface DataOf {
  float32: Float32Array;
  bfloat16: Uint16Array;
  float16: Uint16Array;
  int32: Int32Array;
  int64: BigInt64Array;
  bool: Uint8Array;
  /** int8 codes of a quantized key/value (symmetric: value = scale * code). */
  int8: Int8Array;
  /** OCP 8-bit float codes. */
  float8_e4m3fn: Uint8Array;
  float8_e5m2: Uint8Array;
}

type TypedArrayConstructor<A> = { new (length: number): A; new (buffer: ArrayBuffer, byteOffset: number, length: number): A; readonly BYTES_PER_ELEMENT: number };

const STORAGE: { [D in DType]: TypedArrayConstructor<DataOf[D]> } = {
  float32: Float32Array,
  bfloat16: Uint16Array,
  float16: Uint16Array,
  int32: Int32Array,
  int64: BigInt64Array,
  bool: Uint8Array,
  int8: Int8Array,
  float8_e4m3fn: Uint8Array,
  float8_e5m2: Uint8Array,
};

export const DTYPES: readonly DType[] = Object.keys(STORAGE) as DType[];

export function isDType(name: string): name is DType {
  return Object.hasOwn(STORAGE, name);
}

/** The typed-array constructor that stores `dtype`. */
export function typedArrayFor<D extends DType>(dtype: D): TypedArrayConstructor<DataOf[D]> {
  if (!isDType(dtype)) throw new TypeError(`unknown dtype '${String(dtype)}'`);
  return STORAGE[dtype];
}

/** Element count of `shape`; the empty shape is a scalar (1 element). */
export function numel(shape: readonly number[]): number {
  let count = 1;
  for (let axis = 0; axis < shape.length; axis++) {
    const dim = shape[axis];
    if (!Number.isSafeInteger(dim) || dim < 0) {
      throw new RangeError(`shape [${shape.join(", ")}]: dim ${axis} is ${dim}, expected a non-negative integer`);
    }
    count *= dim;
  }
  if (!Number.isSafeInteger(count)) {
    throw new RangeError(`shape [${shape.join(", ")}]: element count ${count} is not a safe integer`);
  }
  return count;
}

/** Throws unless `data` is the storage of `dtype` and holds exactly numel(shape) elements. */
export function checkTensorData(dtype: DType, shape: readonly number[], data: TensorData): void {
  const storage = typedArrayFor(dtype);
  if (!(data instanceof storage)) {
    throw new TypeError(`a ${dtype} tensor is stored in a ${storage.name}, got ${data.constructor.name}`);
  }
  const count = numel(shape);
  if (data.length !== count) {
    throw new RangeError(`shape [${shape.join(", ")}] has ${count} elements, data has ${data.length}`);
  }
}

/** Allocations from this size on start on a cache line (allocate). */
const ALIGN_FROM_BYTES = 4096;
const CACHE_LINE = 64;
/** Allocations from this size on start on a transparent huge page and ask Linux to back them with such pages. */
export const HUGE_PAGE_BYTES = 2 * 1024 * 1024;
const PAGE_BYTES = 4096;

/**
 * Zero-filled storage for `count` elements of `dtype`. From 4 KiB on, its first element starts on a 64-byte boundary:
 * Node places a large ArrayBuffer 16 bytes past one (the allocator's header), so every 64-byte load of a kernel row
 * would cross two cache lines. Measured on an AVX-512 machine, decode over 64-byte-aligned K/V, interleaved against
 * the same bytes at 16 mod 64: fp32 G 1 6% faster, fp16 G 4 8%, bf16 G 8 7% (docs/benchmarks.md, "Alignment"). The
 * storage is then a view into a slightly larger ArrayBuffer (its byteOffset below the alignment).
 *
 * From 2 MiB on it starts on a 2 MiB boundary instead, and on Linux the range is advised as MADV_HUGEPAGE before
 * anything writes it, so that where transparent huge pages are enabled (`always` or `madvise`) its pages are 2 MiB
 * ones: a decode reading K/V from memory ran 1.5-10% faster on them (kv 16384, 2 threads, interleaved; bf16 G 1, 4
 * and 8 8.8-9.9%; docs/benchmarks.md, "K/V on huge pages"). Best effort: elsewhere, or where the advice fails, the
 * storage is the same, on whatever pages the system gives. The 2 MiB of slack is address space never touched.
 */
export function allocate<D extends DType>(dtype: D, count: number): DataOf[D] {
  const storage = typedArrayFor(dtype);
  const bytes = count * storage.BYTES_PER_ELEMENT;
  if (bytes < ALIGN_FROM_BYTES) return new storage(count);
  const align = bytes >= HUGE_PAGE_BYTES ? HUGE_PAGE_BYTES : CACHE_LINE;
  const buffer = new ArrayBuffer(bytes + align);
  const past = Number(koffi.address(new Uint8Array(buffer, 0, 1)) % BigInt(align));
  const offset = (align - past) % align;
  if (offset % storage.BYTES_PER_ELEMENT !== 0) return new storage(count);
  if (align === HUGE_PAGE_BYTES) adviseHugePages(new Uint8Array(buffer, offset, bytes - (bytes % PAGE_BYTES)));
  return new storage(buffer, offset, count);
}

/** madvise(2) from the C library, loaded on first use; null where there is none to load (not Linux). */
let madvise: ((range: Uint8Array, length: number, advice: number) => number) | null | undefined;
const MADV_HUGEPAGE = 14;

/** Asks Linux to back a page-aligned range with transparent huge pages; false where it cannot be asked or refuses. */
export function adviseHugePages(range: Uint8Array): boolean {
  if (madvise === undefined) {
    try {
      madvise = process.platform === "linux" ? koffi.load("libc.so.6").func("int madvise(void *addr, size_t length, int advice)") : null;
    } catch {
      madvise = null;
    }
  }
  return madvise !== null && range.length > 0 && madvise(range, range.length, MADV_HUGEPAGE) === 0;
}

/** A tensor of `dtype` and `shape`, zero-filled (allocate) unless `data` (used as is, not copied) is given. */
export function tensor<D extends DType>(dtype: D, shape: readonly number[], data?: DataOf[D]): Tensor {
  const dims = [...shape];
  if (data === undefined) return { dtype, shape: dims, data: allocate(dtype, numel(dims)) };
  checkTensorData(dtype, dims, data);
  return { dtype, shape: dims, data };
}

/** Every element as a float64 in row-major order of the shape (int64 beyond 2^53 loses precision, like `Number(bigint)`). */
export function toFloat64(view: Tensor): Float64Array {
  const t = contiguous(view);
  checkTensorData(t.dtype, t.shape, t.data);
  const out = new Float64Array(t.data.length);
  const data = t.data;
  switch (t.dtype) {
    case "bfloat16":
      for (let i = 0; i < out.length; i++) out[i] = bf16BitsToF32(data[i] as number);
      break;
    case "float16":
      for (let i = 0; i < out.length; i++) out[i] = f16BitsToF32(data[i] as number);
      break;
    case "int64":
      for (let i = 0; i < out.length; i++) out[i] = Number(data[i]);
      break;
    case "float8_e4m3fn":
      for (let i = 0; i < out.length; i++) out[i] = e4m3fnToF32(data[i] as number);
      break;
    case "float8_e5m2":
      for (let i = 0; i < out.length; i++) out[i] = e5m2ToF32(data[i] as number);
      break;
    default:
      for (let i = 0; i < out.length; i++) out[i] = data[i] as number;
  }
  return out;
}

/** Integers of `bits` bits span [-2^(bits-1), 2^(bits-1)); both bounds are exact doubles. */
function integerAt(values: ArrayLike<number>, i: number, dtype: DType, bits: number): number {
  const v = values[i];
  if (!Number.isInteger(v) || v < -(2 ** (bits - 1)) || v >= 2 ** (bits - 1)) {
    throw new RangeError(`value ${v} at index ${i} is not representable as ${dtype}`);
  }
  return v;
}

/**
 * A tensor of `dtype` holding `values` rounded to it: float32, the 16-bit and the 8-bit floats round to nearest
 * even (through float32, as a C++ float would; fp8 saturates, see f32ToE4m3fn); integers (int8 included, as codes)
 * must be exact and in range; bool is `value != 0` (NaN is true, as in C++ and PyTorch).
 */
export function fromFloat64(values: ArrayLike<number>, dtype: DType, shape: readonly number[]): Tensor {
  const count = numel(shape);
  if (values.length !== count) {
    throw new RangeError(`shape [${shape.join(", ")}] has ${count} elements, got ${values.length} values`);
  }
  switch (dtype) {
    case "float32":
      return tensor(dtype, shape, Float32Array.from(values));
    case "bfloat16":
      return tensor(dtype, shape, toBfloat16(values));
    case "float16":
      return tensor(dtype, shape, toFloat16(values));
    case "int32": {
      const data = new Int32Array(count);
      for (let i = 0; i < count; i++) data[i] = integerAt(values, i, dtype, 32);
      return tensor(dtype, shape, data);
    }
    case "int64": {
      const data = new BigInt64Array(count);
      for (let i = 0; i < count; i++) data[i] = BigInt(integerAt(values, i, dtype, 64));
      return tensor(dtype, shape, data);
    }
    case "bool": {
      const data = new Uint8Array(count);
      for (let i = 0; i < count; i++) data[i] = values[i] !== 0 ? 1 : 0;
      return tensor(dtype, shape, data);
    }
    case "int8": {
      const data = new Int8Array(count);
      for (let i = 0; i < count; i++) data[i] = integerAt(values, i, dtype, 8);
      return tensor(dtype, shape, data);
    }
    case "float8_e4m3fn":
    case "float8_e5m2": {
      const encode = dtype === "float8_e4m3fn" ? f32ToE4m3fn : f32ToE5m2;
      return tensor(dtype, shape, Uint8Array.from({ length: count }, (_, i) => encode(values[i])));
    }
    default:
      throw new TypeError(`unknown dtype '${String(dtype)}'`);
  }
}
