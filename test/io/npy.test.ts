import { mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, describe, expect, it } from "vitest";
import { NpyError, encodeNpy, parseNpy, parseNpyAs, readNpy, readNpyAs, writeNpy } from "../../src/io/npy.js";
import { type DType, type Tensor, fromFloat64, tensor, toFloat64 } from "../../src/runtime/tensor.js";

const dir = mkdtempSync(join(tmpdir(), "minductor-npy-"));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

const ascii = (text: string) => Uint8Array.from(text, (c) => c.charCodeAt(0));
const hex = (text: string) => Uint8Array.from(text.match(/../g) ?? [], (byte) => parseInt(byte, 16));

/** A .npy written by hand, independent of encodeNpy: any header text, padded the way numpy pads it. */
function npyBytes(header: string, data: Uint8Array, major = 1): Uint8Array {
  const prefix = major === 1 ? 10 : 12;
  const padded = header.padEnd(Math.ceil((prefix + header.length + 1) / 64) * 64 - prefix - 1, " ") + "\n";
  const lengthBytes = major === 1 ? [padded.length & 0xff, padded.length >> 8] : [padded.length & 0xff, padded.length >> 8, 0, 0];
  return new Uint8Array([0x93, ...ascii("NUMPY"), major, 0, ...lengthBytes, ...ascii(padded), ...data]);
}

const header = (descr: string, shape: string, fortran = "False") =>
  `{'descr': '${descr}', 'fortran_order': ${fortran}, 'shape': ${shape}, }`;

const bytesOf = (array: ArrayBufferView) => new Uint8Array(array.buffer, array.byteOffset, array.byteLength);

// What numpy 2.x's np.save writes; header and data copied byte for byte.
const NUMPY_ARANGE_F4 = new Uint8Array([
  ...ascii("\x93NUMPY\x01\x00\x76\x00"),
  ...ascii("{'descr': '<f4', 'fortran_order': False, 'shape': (2, 3), }".padEnd(117, " ") + "\n"),
  ...hex("000000000000803f0000004000004040000080400000a040"),
]);
const NUMPY_F2 = new Uint8Array([
  ...ascii("\x93NUMPY\x01\x00\x76\x00"),
  ...ascii("{'descr': '<f2', 'fortran_order': False, 'shape': (4,), }".padEnd(117, " ") + "\n"),
  ...hex("003e00c0ff7b0200"), // [1.5, -2, 65504, 1e-7]
]);
const NUMPY_I8_SCALAR = new Uint8Array([
  ...ascii("\x93NUMPY\x01\x00\x76\x00"),
  ...ascii("{'descr': '<i8', 'fortran_order': False, 'shape': (), }".padEnd(117, " ") + "\n"),
  ...hex("0300000000000000"),
]);

function expectSameTensor(actual: Tensor, expected: Tensor): void {
  expect(actual.dtype).toBe(expected.dtype);
  expect(actual.shape).toEqual(expected.shape);
  expect(actual.data).toEqual(expected.data);
}

describe("files numpy wrote", () => {
  it("parses np.save(np.arange(6, dtype='<f4').reshape(2, 3))", () => {
    const t = parseNpy(NUMPY_ARANGE_F4);
    expect(t.dtype).toBe("float32");
    expect(t.shape).toEqual([2, 3]);
    expect([...t.data]).toEqual([0, 1, 2, 3, 4, 5]);
  });

  it("writes the same bytes numpy does", () => {
    const t = tensor("float32", [2, 3], Float32Array.from([0, 1, 2, 3, 4, 5]));
    expect(encodeNpy(t)).toEqual(NUMPY_ARANGE_F4);
    expect(encodeNpy(tensor("float16", [4], parseNpy(NUMPY_F2).data as Uint16Array))).toEqual(NUMPY_F2);
    expect(encodeNpy(tensor("int64", [], new BigInt64Array([3n])))).toEqual(NUMPY_I8_SCALAR);
  });

  it("parses a float16 vector and an int64 scalar", () => {
    expect([...toFloat64(parseNpy(NUMPY_F2))]).toEqual([1.5, -2, 65504, 2 ** -24 * 2]);
    const scalar = parseNpy(NUMPY_I8_SCALAR);
    expect(scalar).toEqual({ dtype: "int64", shape: [], data: new BigInt64Array([3n]) });
  });

  it("accepts Python 2 longs and double quotes in the header", () => {
    const t = parseNpy(npyBytes(`{"descr": "<i4", "fortran_order": False, "shape": (1L, 2L)}`, hex("0700000009000000")));
    expect(t).toEqual({ dtype: "int32", shape: [1, 2], data: new Int32Array([7, 9]) });
  });
});

describe("fp8 codes", () => {
  it.each(["float8_e4m3fn", "float8_e5m2"] as const)("%s codes travel as uint8 and read back as the dtype", (dtype) => {
    const t = fromFloat64([1, -0.5, 448, 2 ** -9, 0, -3], dtype, [3, 2]);
    const path = join(dir, `${dtype}.npy`);
    writeNpy(path, t);
    expect(readFileSync(path).subarray(0, 64).toString("latin1")).toContain("'|u1'");
    expectSameTensor(readNpyAs(path, dtype), t);
  });
});

describe("round trips", () => {
  const samples: Partial<Record<DType, number[]>> = {
    float32: [0.1, -2.5, 1e30, -0, Infinity, 3],
    bfloat16: [1, -0.5, 3.140625, 1e38, -Infinity, 0],
    float16: [1.5, -2, 65504, 2 ** -24, -0, 0.333251953125],
    int32: [0, -1, 2 ** 31 - 1, -(2 ** 31), 7, 8],
    int64: [0, -1, 2 ** 53, -(2 ** 40), 7, 8],
    bool: [1, 0, 0, 1, 1, 1],
    int8: [0, -1, 127, -128, 7, 8],
  };

  for (const [dtype, values] of Object.entries(samples) as [DType, number[]][]) {
    it(`${dtype} through a file`, () => {
      const t = fromFloat64(values, dtype, [3, 2]);
      const path = join(dir, `${dtype}.npy`);
      writeNpy(path, t);
      expectSameTensor(readNpyAs(path, dtype), t);
      const natural = readNpy(path);
      expect(natural.dtype).toBe(dtype === "bfloat16" ? "float32" : dtype);
      expect([...toFloat64(natural)]).toEqual([...toFloat64(t)]);
    });
  }

  it("keeps NaN through float32 and float16 files", () => {
    const t = tensor("float32", [2], Float32Array.from([NaN, 1]));
    expect(toFloat64(parseNpy(encodeNpy(t)))[0]).toBeNaN();
    const h = tensor("float16", [1], new Uint16Array([0x7e00]));
    expect(parseNpy(encodeNpy(h)).data).toEqual(new Uint16Array([0x7e00]));
  });

  it("writes bfloat16 as <f4 and reads it back exactly", () => {
    const t = tensor("bfloat16", [2], new Uint16Array([0x3f81, 0xc049]));
    const bytes = encodeNpy(t);
    expect(new TextDecoder().decode(bytes.subarray(10, 30))).toContain("'<f4'");
    expect([...parseNpy(bytes).data]).toEqual([1.0078125, -3.140625]);
    expectSameTensor(parseNpyAs(bytes, "bfloat16"), t);
  });

  it("handles a 0-d array and arrays with no elements", () => {
    const scalar = tensor("float32", [], Float32Array.from([2.5]));
    expectSameTensor(parseNpy(encodeNpy(scalar)), scalar);
    for (const shape of [[0], [2, 0, 3]]) {
      const empty = tensor("int32", shape);
      const bytes = encodeNpy(empty);
      expect(bytes.length % 64).toBe(0); // nothing after the header
      expectSameTensor(parseNpy(bytes), empty);
    }
  });

  it("pads v1.0 headers to a multiple of 64 and ends them with a newline", () => {
    // Each extra dim adds 3 characters, so ranks 2 to 65 move the dict through every residue of 64.
    for (const shape of Array.from({ length: 66 }, (_, rank) => new Array<number>(rank).fill(1).fill(3, 0, 1))) {
      const bytes = encodeNpy(tensor("bool", shape));
      expect([bytes[6], bytes[7]]).toEqual([1, 0]);
      const headerLength = bytes[8] | (bytes[9] << 8);
      expect((10 + headerLength) % 64).toBe(0);
      expect(bytes[10 + headerLength - 1]).toBe(0x0a);
      expect(bytes.length).toBe(10 + headerLength + shape.reduce((a, b) => a * b, 1));
    }
  });

  it("writes and reads v2.0, and switches to it when the header outgrows v1.0", () => {
    const t = tensor("float32", [2], Float32Array.from([1, 2]));
    const v2 = encodeNpy(t, { version: 2 });
    expect([v2[6], v2[7]]).toEqual([2, 0]);
    expect((12 + new DataView(v2.buffer).getUint32(8, true)) % 64).toBe(0);
    expectSameTensor(parseNpy(v2), t);

    const manyDims = tensor("int32", new Array(25000).fill(1));
    const big = encodeNpy(manyDims);
    expect(big[6]).toBe(2);
    expectSameTensor(parseNpy(big), manyDims);
    expect(() => encodeNpy(manyDims, { version: 1 })).toThrow(/header too long/);
  });

  it("reads v3.0 (a UTF-8 header)", () => {
    const t = parseNpy(npyBytes(header("<i4", "(2,)"), hex("0100000002000000"), 3));
    expect(t).toEqual({ dtype: "int32", shape: [2], data: new Int32Array([1, 2]) });
  });
});

describe("conversions on read", () => {
  const f8 = npyBytes(header("<f8", "(3,)"), bytesOf(Float64Array.from([0.1, 1 + 2 ** -8 + 2 ** -30, -1e300])));

  it("reads <f8 as float32 rounded to nearest even", () => {
    const t = parseNpy(f8);
    expect(t.dtype).toBe("float32");
    expect([...t.data]).toEqual([Math.fround(0.1), Math.fround(1 + 2 ** -8 + 2 ** -30), -Infinity]);
  });

  it("reads float files as bfloat16 and float16", () => {
    expect(parseNpyAs(f8, "bfloat16").data).toEqual(new Uint16Array([0x3dcd, 0x3f80, 0xff80]));
    expect(parseNpyAs(NUMPY_ARANGE_F4, "float16").data).toEqual(new Uint16Array([0, 0x3c00, 0x4000, 0x4200, 0x4400, 0x4500]));
    expect([...parseNpyAs(NUMPY_F2, "float32").data]).toEqual([1.5, -2, 65504, 2 ** -23]);
  });

  it("converts between int32 and int64, checking the range", () => {
    const i8 = encodeNpy(fromFloat64([5, -6], "int64", [2]));
    expect(parseNpyAs(i8, "int32").data).toEqual(new Int32Array([5, -6]));
    expect(parseNpyAs(encodeNpy(fromFloat64([5], "int32", [1])), "int64").data).toEqual(new BigInt64Array([5n]));
    const wide = encodeNpy(fromFloat64([1, 2 ** 31], "int64", [2]));
    expect(() => parseNpyAs(wide, "int32", "seqLens.npy")).toThrow(/seqLens.npy: value 2147483648 at index 1 does not fit in int32/);
  });

  it("reads |u1 only when asked for bool, mapping non-zero to true", () => {
    const u1 = npyBytes(header("|u1", "(3,)"), new Uint8Array([0, 2, 255]));
    expect(() => parseNpy(u1)).toThrow(/read only as bool/);
    expect(parseNpyAs(u1, "bool").data).toEqual(new Uint8Array([0, 1, 1]));
  });

  it("refuses conversions between kinds", () => {
    expect(() => parseNpyAs(NUMPY_ARANGE_F4, "int32")).toThrow(/'<f4' data cannot be read as int32/);
    expect(() => parseNpyAs(NUMPY_I8_SCALAR, "float32")).toThrow(NpyError);
  });
});

describe("errors", () => {
  function problemOf(bytes: Uint8Array): string {
    const path = join(dir, "bad.npy");
    writeFileSync(path, bytes);
    try {
      readNpy(path);
    } catch (error) {
      expect(error).toBeInstanceOf(NpyError);
      expect((error as NpyError).source).toBe(path);
      expect((error as NpyError).message.startsWith(`${path}: `)).toBe(true);
      return (error as NpyError).problem;
    }
    throw new Error("readNpy accepted a bad file");
  }

  const data6 = new Uint8Array(24);

  it("names the layout or byte order it does not support", () => {
    expect(problemOf(npyBytes(header("<f4", "(2, 3)", "True"), data6))).toMatch(/Fortran-order/);
    expect(problemOf(npyBytes(header(">f4", "(2, 3)"), data6))).toMatch(/big-endian data \('>f4'\)/);
    expect(problemOf(npyBytes(header("<u2", "(2, 3)"), data6))).toMatch(/dtype '<u2' is not supported/);
    expect(problemOf(npyBytes(header("<c8", "(3,)"), data6))).toMatch(/dtype '<c8'/);
    expect(problemOf(npyBytes(`{'descr': [('a', '<f4')], 'fortran_order': False, 'shape': (6,), }`, data6)))
      .toMatch(/structured dtypes/);
  });

  it("rejects bad magic, versions and truncated or oversized data", () => {
    expect(problemOf(ascii("PK\x03\x04 not numpy at all"))).toMatch(/not a .npy file/);
    const v4 = npyBytes(header("<f4", "(6,)"), data6);
    v4[6] = 4;
    expect(problemOf(v4)).toMatch(/version 4.0 is not supported/);
    expect(problemOf(npyBytes(header("<f4", "(2, 3)"), data6.subarray(4)))).toMatch(/needs 24 bytes of data, the file has 20/);
    expect(problemOf(npyBytes(header("<f4", "(5,)"), data6))).toMatch(/needs 20 bytes of data, the file has 24/);
    expect(problemOf(NUMPY_ARANGE_F4.subarray(0, 60))).toMatch(/truncated inside the 118-byte header/);
  });

  it("rejects malformed headers", () => {
    expect(problemOf(npyBytes(`{'descr': '<f4', 'shape': (6,), }`, data6))).toMatch(/header keys are \[descr, shape\]/);
    expect(problemOf(npyBytes(`{'descr': '<f4', 'fortran_order': False, 'shape': (6,), 'x': 1}`, data6))).toMatch(/header keys/);
    expect(problemOf(npyBytes(`{'descr': '<f4', 'fortran_order': False, 'shape': (-6,), }`, data6))).toMatch(/'shape'/);
    expect(problemOf(npyBytes(`{'descr': '<f4', 'fortran_order': False, 'shape': (6,)`, data6))).toMatch(/bad header/);
    expect(problemOf(npyBytes(`{'descr': '<f4', 'descr': '<f4'}`, data6))).toMatch(/duplicate key 'descr'/);
    expect(problemOf(npyBytes(`['descr']`, data6))).toMatch(/not a dict/);
  });

  it("names the bytes when there is no file", () => {
    expect(() => parseNpy(new Uint8Array(3))).toThrow(/^<npy bytes>: not a .npy file/);
  });

  it("refuses to encode a tensor whose data does not match its shape", () => {
    expect(() => encodeNpy({ dtype: "float32", shape: [4], data: new Float32Array(3) })).toThrow(RangeError);
  });
});
