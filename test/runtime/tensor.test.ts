import { existsSync, readFileSync } from "node:fs";
import { describe, expect, it } from "vitest";
import koffi from "koffi";
import { DTYPES, HUGE_PAGE_BYTES, adviseHugePages, allocate, fromFloat64, numel, tensor, toFloat64, typedArrayFor } from "../../src/runtime/tensor.js";

const readIfPresent = (path: string) => (existsSync(path) ? readFileSync(path, "utf8") : "");

/** The lines of /proc/self/smaps about the mapping that holds `data`'s first byte. */
function mappingOf(data: ArrayBufferView): string[] {
  const at = BigInt(koffi.address(data) as bigint);
  const lines: string[] = [];
  let inside = false;
  for (const line of readIfPresent("/proc/self/smaps").split("\n")) {
    const range = /^([0-9a-f]+)-([0-9a-f]+) /.exec(line);
    if (range) inside = BigInt(`0x${range[1]}`) <= at && at < BigInt(`0x${range[2]}`);
    else if (inside) lines.push(line);
  }
  return lines;
}
const hugePagesKiBAt = (data: ArrayBufferView) => Number(/^AnonHugePages:\s+(\d+) kB/m.exec(mappingOf(data).join("\n"))?.[1] ?? -1);
const vmFlagsAt = (data: ArrayBufferView) => `${mappingOf(data).find((l) => l.startsWith("VmFlags:")) ?? ""} `;

describe("numel", () => {
  it("multiplies the dims; the empty shape is a scalar", () => {
    expect(numel([])).toBe(1);
    expect(numel([2, 3, 4])).toBe(24);
    expect(numel([5, 0, 7])).toBe(0);
  });

  it("throws a RangeError naming the bad dim", () => {
    expect(() => numel([2, -1])).toThrow(RangeError);
    expect(() => numel([2, -1])).toThrow(/dim 1 is -1/);
    expect(() => numel([1.5])).toThrow(/dim 0 is 1.5/);
    expect(() => numel([NaN])).toThrow(/non-negative integer/);
  });

  it("throws a RangeError when the count is not a safe integer", () => {
    expect(() => numel([2 ** 30, 2 ** 30, 2 ** 30])).toThrow(RangeError);
    expect(() => numel([2 ** 30, 2 ** 30, 2 ** 30])).toThrow(/not a safe integer/);
  });
});

describe("tensor", () => {
  it("allocates zeroed storage of the dtype's typed array", () => {
    const storage = {
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
    expect(new Set(DTYPES)).toEqual(new Set(Object.keys(storage)));
    for (const dtype of DTYPES) {
      expect(typedArrayFor(dtype)).toBe(storage[dtype]);
      const t = tensor(dtype, [2, 3]);
      expect(t.data).toBeInstanceOf(storage[dtype]);
      expect(t.data.length).toBe(6);
      expect(t.shape).toEqual([2, 3]);
      expect([...toFloat64(t)]).toEqual([0, 0, 0, 0, 0, 0]);
    }
  });

  it("takes data of the right kind and length, and rejects anything else", () => {
    const data = new Int32Array([1, 2, 3]);
    expect(tensor("int32", [3], data).data).toBe(data);
    expect(() => tensor("int32", [4], data)).toThrow(/has 4 elements, data has 3/);
    expect(() => tensor("float32", [3], new Float64Array(3) as never)).toThrow(TypeError);
    expect(() => tensor("float16", [3], new Int16Array(3) as never)).toThrow(/Uint16Array/);
    expect(() => typedArrayFor("float64" as never)).toThrow(/unknown dtype 'float64'/);
  });

  it("copies the shape so later edits of the caller's array do not leak in", () => {
    const shape = [2, 2];
    const t = tensor("float32", shape);
    shape[0] = 9;
    expect(t.shape).toEqual([2, 2]);
  });
});

describe("toFloat64 / fromFloat64", () => {
  it("round-trips values exactly representable in every dtype", () => {
    const values = [0, 1, -2, 0.5, 3, -0.25];
    for (const dtype of ["float32", "bfloat16", "float16"] as const) {
      expect([...toFloat64(fromFloat64(values, dtype, [2, 3]))]).toEqual(values);
    }
    const ints = [0, 1, -7, 2 ** 31 - 1, -(2 ** 31), 42];
    expect([...toFloat64(fromFloat64(ints, "int32", [6]))]).toEqual(ints);
    expect([...toFloat64(fromFloat64([2 ** 53, -(2 ** 60)], "int64", [2]))]).toEqual([2 ** 53, -(2 ** 60)]);
    expect(fromFloat64([2 ** 60], "int64", [1]).data).toEqual(new BigInt64Array([2n ** 60n]));
  });

  it("rounds floats to the dtype, to nearest even", () => {
    expect(toFloat64(fromFloat64([0.1], "float32", [1]))[0]).toBe(Math.fround(0.1));
    expect(fromFloat64([1 + 2 ** -8, 1 + 3 * 2 ** -8], "bfloat16", [2]).data).toEqual(new Uint16Array([0x3f80, 0x3f82]));
    expect(fromFloat64([1 + 2 ** -11, 65520, 2 ** -25], "float16", [3]).data).toEqual(new Uint16Array([0x3c00, 0x7c00, 0]));
  });

  it("turns values into bools as C++ does (non-zero, including NaN, is true)", () => {
    expect(fromFloat64([0, 1, -3, NaN, -0], "bool", [5]).data).toEqual(new Uint8Array([0, 1, 1, 1, 0]));
  });

  it("rejects integers that are fractional or out of range, naming the index", () => {
    expect(() => fromFloat64([1, 2.5], "int32", [2])).toThrow(/value 2.5 at index 1 is not representable as int32/);
    expect(() => fromFloat64([2 ** 31], "int32", [1])).toThrow(RangeError);
    expect(() => fromFloat64([2 ** 63], "int64", [1])).toThrow(/int64/);
    expect(() => fromFloat64([NaN], "int64", [1])).toThrow(RangeError);
  });

  it("checks the number of values against the shape", () => {
    expect(() => fromFloat64([1, 2, 3], "float32", [2, 2])).toThrow(/has 4 elements, got 3 values/);
  });

  it("decodes 16-bit floats and int64 to float64", () => {
    expect([...toFloat64(tensor("bfloat16", [2], new Uint16Array([0x4049, 0xff80])))]).toEqual([3.140625, -Infinity]);
    expect([...toFloat64(tensor("float16", [2], new Uint16Array([0x3555, 0x0001])))]).toEqual([0.333251953125, 2 ** -24]);
    expect([...toFloat64(tensor("int64", [1], new BigInt64Array([-5n])))]).toEqual([-5]);
    expect([...toFloat64(tensor("bool", [2], new Uint8Array([1, 0])))]).toEqual([1, 0]);
  });
});

describe("allocate", () => {
  const addressMod64 = (data: ArrayBufferView) => Number(BigInt(koffi.address(data) as bigint) % 64n);

  it("starts storage of 4 KiB and more on a 64-byte boundary, zero-filled and exactly as long as asked", () => {
    for (const [dtype, count] of [["float32", 1024], ["bfloat16", 3 * 4099], ["int8", 8192], ["int64", 700], ["float8_e5m2", 5000]] as const) {
      const data = allocate(dtype, count);
      expect(data.length, dtype).toBe(count);
      expect(addressMod64(data), dtype).toBe(0);
      expect(data.byteOffset, dtype).toBeLessThan(64);
      expect(data.every((x: number | bigint) => x === 0 || x === 0n), dtype).toBe(true);
    }
    // tensor() allocates through it
    const t = tensor("float32", [2, 8, 64, 128]);
    expect(addressMod64(t.data)).toBe(0);
  });

  it("starts storage of 2 MiB and more on a 2 MiB boundary, zero-filled and exactly as long as asked", () => {
    const data = allocate("bfloat16", 3 * HUGE_PAGE_BYTES + 5);
    expect(data.length).toBe(3 * HUGE_PAGE_BYTES + 5);
    expect(BigInt(koffi.address(data) as bigint) % BigInt(HUGE_PAGE_BYTES)).toBe(0n);
    expect(data.byteOffset).toBeLessThan(HUGE_PAGE_BYTES);
    expect(data.every((x) => x === 0)).toBe(true);
  });

  it("asks for huge pages that Linux then gives, where transparent huge pages are enabled", (ctx) => {
    const setting = /\[(\w+)\]/.exec(readIfPresent("/sys/kernel/mm/transparent_hugepage/enabled"))?.[1];
    ctx.skip(setting !== "madvise" && setting !== "always", `transparent huge pages are '${setting ?? "absent"}' here`);
    // V8 maps a WebAssembly memory itself, so unlike malloc's (which GLIBC_TUNABLES in vitest.config.ts may already
    // advise) its pages are small unless advised: 8 MiB from a 2 MiB boundary in each of two, one advised.
    const range = () => {
      const memory = new WebAssembly.Memory({ initial: (10 * HUGE_PAGE_BYTES) / 65536 });
      const at = BigInt(koffi.address(new Uint8Array(memory.buffer, 0, 1)) as bigint) % BigInt(HUGE_PAGE_BYTES);
      return new Uint8Array(memory.buffer, Number((BigInt(HUGE_PAGE_BYTES) - at) % BigInt(HUGE_PAGE_BYTES)), 4 * HUGE_PAGE_BYTES);
    };
    const [plain, advised] = [range(), range()];
    expect(adviseHugePages(advised)).toBe(true);
    for (const r of [plain, advised]) r.fill(1);
    // with `always` every large enough mapping may get them unasked
    if (setting === "madvise") expect(hugePagesKiBAt(plain)).toBe(0);
    expect(hugePagesKiBAt(advised)).toBeGreaterThanOrEqual(4096);
    // the storage allocate() gives is advised too
    expect(vmFlagsAt(allocate("float32", HUGE_PAGE_BYTES))).toContain(" hg");
  });

  it("leaves small storage as a plain typed array of its own", () => {
    const data = allocate("float32", 100);
    expect(data.byteOffset).toBe(0);
    expect(data.buffer.byteLength).toBe(400);
  });
});
