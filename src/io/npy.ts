/**
 * .npy files, the CLI's tensor format (https://numpy.org/doc/stable/reference/generated/numpy.lib.format.html).
 * Reads v1.0, v2.0 and v3.0, writes v1.0 (v2.0 when the header needs it); little-endian, C order only.
 * bfloat16 has no numpy dtype, so it travels as `<f4` and is rounded to nearest even on the way in.
 */
import { readFileSync, writeFileSync } from "node:fs";
import { fromBfloat16, fromFloat16, toBfloat16, toFloat16 } from "../runtime/dtypes.js";
import { type DType, type Tensor, type TensorData, checkTensorData, numel } from "../runtime/tensor.js";
import { NpyError } from "./npyError.js";
import { formatNpyHeader, parseNpyHeader } from "./npyHeader.js";

export { NpyError } from "./npyError.js";

const MAGIC = [0x93, 0x4e, 0x55, 0x4d, 0x50, 0x59]; // "\x93NUMPY"
/** numpy aligns the data to 64 bytes so that it can be memory-mapped with any vector width. */
const ALIGN = 64;
const BYTES_SOURCE = "<npy bytes>";

/** The element types minductor reads, keyed by numpy's descr. */
const FILE_DTYPES = {
  "<f4": { itemSize: 4, natural: "float32" },
  "<f2": { itemSize: 2, natural: "float16" },
  "<f8": { itemSize: 8, natural: "float32" },
  "<i4": { itemSize: 4, natural: "int32" },
  "<i8": { itemSize: 8, natural: "int64" },
  "|b1": { itemSize: 1, natural: "bool" },
  "|i1": { itemSize: 1, natural: "int8" },
  "|u1": { itemSize: 1, natural: undefined },
} as const satisfies Record<string, { itemSize: number; natural: DType | undefined }>;

type Descr = keyof typeof FILE_DTYPES;

const DESCR_OF: Record<DType, Descr> = {
  float32: "<f4",
  bfloat16: "<f4",
  float16: "<f2",
  int32: "<i4",
  int64: "<i8",
  bool: "|b1",
  int8: "|i1",
  // numpy has no 8-bit float: fp8 codes travel as uint8
  float8_e4m3fn: "|u1",
  float8_e5m2: "|u1",
};

const LITTLE_ENDIAN_HOST = new Uint8Array(new Uint16Array([1]).buffer)[0] === 1;

/** Typed arrays use the host's byte order; files are little-endian. A no-op on every common machine. */
function swapToHostOrder(bytes: Uint8Array, itemSize: number): void {
  if (LITTLE_ENDIAN_HOST || itemSize === 1) return;
  for (let i = 0; i < bytes.length; i += itemSize) bytes.subarray(i, i + itemSize).reverse();
}

interface RawArray {
  descr: Descr;
  shape: number[];
  /** A private, aligned copy of the data in host byte order. */
  bytes: Uint8Array;
}

function latin1(bytes: Uint8Array): string {
  let text = "";
  for (const byte of bytes) text += String.fromCharCode(byte);
  return text;
}

function checkDescr(descr: string, source: string): Descr {
  if (Object.hasOwn(FILE_DTYPES, descr)) return descr as Descr;
  if (descr.startsWith(">")) {
    throw new NpyError(source, `big-endian data ('${descr}') is not supported; save arr.astype('<${descr.slice(1)}')`);
  }
  const known = Object.keys(FILE_DTYPES).join(", ");
  throw new NpyError(source, `dtype '${descr}' is not supported (expected one of ${known})`);
}

function elementCount(shape: number[], source: string): number {
  try {
    return numel(shape);
  } catch (error) {
    throw new NpyError(source, (error as Error).message);
  }
}

function decode(bytes: Uint8Array, source: string): RawArray {
  if (bytes.length < 10 || MAGIC.some((b, i) => bytes[i] !== b)) {
    throw new NpyError(source, "not a .npy file (missing the \\x93NUMPY magic)");
  }
  const major = bytes[6];
  const minor = bytes[7];
  if (![1, 2, 3].includes(major) || minor !== 0) {
    throw new NpyError(source, `.npy version ${major}.${minor} is not supported (expected 1.0, 2.0 or 3.0)`);
  }
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  const prefix = major === 1 ? 10 : 12;
  if (bytes.length < prefix) throw new NpyError(source, "truncated before the header length");
  const headerLength = major === 1 ? view.getUint16(8, true) : view.getUint32(8, true);
  const dataStart = prefix + headerLength;
  if (bytes.length < dataStart) throw new NpyError(source, `truncated inside the ${headerLength}-byte header`);
  const headerBytes = bytes.subarray(prefix, dataStart);
  const text = major === 3 ? new TextDecoder("utf-8", { fatal: true }).decode(headerBytes) : latin1(headerBytes);

  const header = parseNpyHeader(text, source);
  const descr = checkDescr(header.descr, source);
  if (header.fortranOrder) {
    throw new NpyError(source, "Fortran-order data is not supported; save np.ascontiguousarray(arr)");
  }
  const { itemSize } = FILE_DTYPES[descr];
  const dataLength = elementCount(header.shape, source) * itemSize;
  const found = bytes.length - dataStart;
  if (found !== dataLength) {
    const shape = `(${header.shape.join(", ")})`;
    throw new NpyError(source, `shape ${shape} of '${descr}' needs ${dataLength} bytes of data, the file has ${found}`);
  }
  // Copying gives the typed arrays an aligned buffer of their own (the input may be a pooled Buffer).
  const data = new Uint8Array(bytes.subarray(dataStart));
  swapToHostOrder(data, itemSize);
  return { descr, shape: header.shape, bytes: data };
}

function nonZeroAsBool(bytes: Uint8Array): Uint8Array {
  return bytes.map((b) => (b !== 0 ? 1 : 0));
}

function floatsOf(raw: RawArray): Float32Array {
  const buffer = raw.bytes.buffer;
  if (raw.descr === "<f4") return new Float32Array(buffer);
  if (raw.descr === "<f8") return Float32Array.from(new Float64Array(buffer));
  return fromFloat16(new Uint16Array(buffer));
}

function int32Of(raw: RawArray, source: string): Int32Array {
  if (raw.descr === "<i4") return new Int32Array(raw.bytes.buffer);
  const wide = new BigInt64Array(raw.bytes.buffer);
  const out = new Int32Array(wide.length);
  for (let i = 0; i < wide.length; i++) {
    if (wide[i] !== BigInt.asIntN(32, wide[i])) {
      throw new NpyError(source, `value ${wide[i]} at index ${i} does not fit in int32`);
    }
    out[i] = Number(wide[i]);
  }
  return out;
}

function int64Of(raw: RawArray): BigInt64Array {
  if (raw.descr === "<i8") return new BigInt64Array(raw.bytes.buffer);
  return BigInt64Array.from(new Int32Array(raw.bytes.buffer), (v) => BigInt(v));
}

/** Which file dtypes each tensor dtype may be read from; conversions are exact or round to nearest even. */
const READABLE_AS: Record<DType, readonly Descr[]> = {
  float32: ["<f4", "<f8", "<f2"],
  bfloat16: ["<f4", "<f8", "<f2"],
  float16: ["<f2", "<f4", "<f8"],
  int32: ["<i4", "<i8"],
  int64: ["<i8", "<i4"],
  bool: ["|b1", "|u1"],
  int8: ["|i1"],
  float8_e4m3fn: ["|u1"],
  float8_e5m2: ["|u1"],
};

function convert(raw: RawArray, dtype: DType, source: string): TensorData {
  if (!READABLE_AS[dtype].includes(raw.descr)) {
    throw new NpyError(source, `'${raw.descr}' data cannot be read as ${dtype} (expected ${READABLE_AS[dtype].join(" or ")})`);
  }
  switch (dtype) {
    case "float32":
      return floatsOf(raw);
    case "bfloat16":
      return toBfloat16(floatsOf(raw));
    case "float16":
      return raw.descr === "<f2" ? new Uint16Array(raw.bytes.buffer) : toFloat16(floatsOf(raw));
    case "int32":
      return int32Of(raw, source);
    case "int64":
      return int64Of(raw);
    case "bool":
      return nonZeroAsBool(raw.bytes);
    case "int8":
      return new Int8Array(raw.bytes.buffer, raw.bytes.byteOffset, raw.bytes.length);
    case "float8_e4m3fn":
    case "float8_e5m2":
      return new Uint8Array(raw.bytes);
  }
}

/** Decodes a .npy byte sequence as its own dtype; `<f8` becomes float32 (RNE), `|u1` needs parseNpyAs(…, "bool"). */
export function parseNpy(bytes: Uint8Array, source = BYTES_SOURCE): Tensor {
  const raw = decode(bytes, source);
  const natural = FILE_DTYPES[raw.descr].natural;
  if (natural === undefined) {
    throw new NpyError(source, `'${raw.descr}' data is read only as bool; ask for it with dtype "bool"`);
  }
  return { dtype: natural, shape: raw.shape, data: convert(raw, natural, source) };
}

/**
 * Decodes a .npy byte sequence as `dtype`: float files round to float32/bfloat16/float16 (nearest even),
 * int32/int64 convert both ways (range-checked), `|b1` and `|u1` read as bool (non-zero is true).
 */
export function parseNpyAs(bytes: Uint8Array, dtype: DType, source = BYTES_SOURCE): Tensor {
  const raw = decode(bytes, source);
  return { dtype, shape: raw.shape, data: convert(raw, dtype, source) };
}

function payloadOf(t: Tensor): Uint8Array {
  const data = t.dtype === "bfloat16" ? fromBfloat16(t.data as Uint16Array) : t.data;
  const bytes = new Uint8Array(data.buffer, data.byteOffset, data.byteLength);
  if (t.dtype === "bool") return nonZeroAsBool(bytes);
  if (LITTLE_ENDIAN_HOST) return bytes;
  const swapped = new Uint8Array(bytes);
  swapToHostOrder(swapped, data.BYTES_PER_ELEMENT);
  return swapped;
}

export interface EncodeOptions {
  /** 1 (the default, falling back to 2 when the header exceeds 65535 bytes) or 2. */
  version?: 1 | 2;
}

/** Encodes a tensor as numpy writes it; bfloat16 is written as `<f4`. */
export function encodeNpy(t: Tensor, options: EncodeOptions = {}): Uint8Array {
  checkTensorData(t.dtype, t.shape, t.data);
  const dict = formatNpyHeader({ descr: DESCR_OF[t.dtype], fortranOrder: false, shape: t.shape });
  const paddedLength = (prefix: number) => Math.ceil((prefix + dict.length + 1) / ALIGN) * ALIGN - prefix;
  let version = options.version ?? 1;
  if (version === 1 && paddedLength(10) > 0xffff) {
    if (options.version === 1) throw new NpyError(BYTES_SOURCE, "header too long for .npy version 1.0");
    version = 2;
  }
  const prefix = version === 1 ? 10 : 12;
  const headerLength = paddedLength(prefix);
  const payload = payloadOf(t);
  const out = new Uint8Array(prefix + headerLength + payload.length);
  out.set(MAGIC);
  out[6] = version;
  out[7] = 0;
  const view = new DataView(out.buffer);
  if (version === 1) view.setUint16(8, headerLength, true);
  else view.setUint32(8, headerLength, true);
  // Spaces up to the alignment, then the newline numpy ends every header with.
  const header = dict.padEnd(headerLength - 1, " ") + "\n";
  for (let i = 0; i < header.length; i++) out[prefix + i] = header.charCodeAt(i);
  out.set(payload, prefix + headerLength);
  return out;
}

/** Reads a .npy file as its own dtype (see parseNpy). */
export function readNpy(path: string): Tensor {
  return parseNpy(readFileSync(path), path);
}

/** Reads a .npy file as `dtype` (see parseNpyAs); bfloat16 inputs come from float32 files. */
export function readNpyAs(path: string, dtype: DType): Tensor {
  return parseNpyAs(readFileSync(path), dtype, path);
}

/** Writes a tensor as a .npy file; bfloat16 is written as `<f4`. */
export function writeNpy(path: string, t: Tensor, options: EncodeOptions = {}): void {
  writeFileSync(path, encodeNpy(t, options));
}
