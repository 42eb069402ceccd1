import { rm } from "node:fs/promises";
import { dirname } from "node:path";
import { setFlagsFromString } from "node:v8";
import { runInNewContext } from "node:vm";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { LibraryError } from "../../src/runtime/errors.js";
import koffi from "koffi";
import { MD_ABI_VERSION, MD_ARGS_FIELDS, type NativeArgs, decodeArgs, encodeArgs, mdArgsLayout, openLibrary } from "../../src/runtime/nativeLibrary.js";
import { prepareCall } from "../../src/runtime/prepareCall.js";
import { HKV, HQ, PAGE_SIZE, Q_DIM, V_DIM, makeGraph, makeInputs } from "./fixtures.js";
import { ENTRY_IDS, FIELD_ORDER, StubControl, type StubConfig, compileStub } from "./stubLibrary.js";

const CONFIG: StubConfig = { elemBytes: 4, hq: HQ, hkv: HKV, qDim: Q_DIM, vDim: V_DIM, pageSize: PAGE_SIZE, abi: MD_ABI_VERSION };

let stubPath: string;
let otherAbiPath: string;
let withoutNaivePath: string;

beforeAll(async () => {
  [stubPath, otherAbiPath, withoutNaivePath] = await Promise.all([
    compileStub(CONFIG),
    compileStub({ ...CONFIG, abi: MD_ABI_VERSION + 41 }, "other_abi"),
    compileStub({ ...CONFIG, withoutNaive: true }, "without_naive"),
  ]);
});

// Loaded libraries stay mapped after their files are removed.
afterAll(async () => {
  await Promise.all([stubPath, otherAbiPath, withoutNaivePath].map((path) => rm(dirname(path), { recursive: true, force: true })));
});

describe("md_args layout", () => {
  it("matches the C compiler's layout field by field", () => {
    const native = new StubControl(stubPath).layout();
    const bound = mdArgsLayout();
    expect(bound.size).toBe(native.size);
    expect(Object.keys(bound.offsets)).toEqual([...FIELD_ORDER]);
    expect(bound.offsets).toEqual(native.offsets);
    // docs/abi.md: 22 eight-byte fields, num_threads and status sharing the next eight bytes, the mods pointer, five
    // triples of int64 strides, the two start-location pointers, two scale pointers and their two stride triples.
    expect(native.size).toBe(200 + 5 * 24 + 16 + 16 + 2 * 24);
  });
});

describe("encodeArgs", () => {
  it("writes every md_args field where koffi's decoder of the C layout reads it", () => {
    // Every field gets its own value: integers distinct and past 2^32 where 64-bit, pointers distinct arrays.
    const args = {} as Record<keyof NativeArgs, unknown>;
    const expected = {} as Record<keyof NativeArgs, unknown>;
    const buffers = [new Float32Array(3), new Int32Array(5)];
    let n = 1;
    for (const [name, type] of Object.entries(MD_ARGS_FIELDS) as [keyof NativeArgs, string][]) {
      if (name === "mods") continue;
      if (name === "buffers") {
        args.buffers = buffers;
      } else if (type === "int64_t") {
        args[name] = expected[name] = 2 ** 33 * n + n;
      } else if (type === "int32_t") {
        args[name] = expected[name] = n;
      } else if (type === "int64_t[3]") {
        args[name] = expected[name] = [n, 2 ** 40 + n, 2 ** 52 - n];
      } else {
        args[name] = new Float32Array(n + 1).subarray(1); // a view: its byte offset counts
      }
      n++;
    }
    const bytes = new ArrayBuffer(mdArgsLayout().size);
    const table = encodeArgs(args as unknown as NativeArgs, 0x1234_5678_9abcn, bytes);
    const decoded = decodeArgs(bytes);
    for (const [name, type] of Object.entries(MD_ARGS_FIELDS) as [keyof NativeArgs, string][]) {
      if (name === "mods") expect(koffi.address(decoded.mods)).toBe(0x1234_5678_9abcn);
      else if (name === "buffers") {
        expect(koffi.address(decoded.buffers)).toBe(koffi.address(table!));
        expect([...table!]).toEqual(buffers.map((b) => koffi.address(b)));
      } else if (type.endsWith("*")) expect(koffi.address(decoded[name]), name).toBe(koffi.address(args[name]));
      else if (type === "int64_t[3]") expect(Array.from(decoded[name] as BigInt64Array, Number), name).toEqual(expected[name]);
      else expect(decoded[name], name).toEqual(expected[name]);
    }
  });

  it("writes null pointers and negative integers", () => {
    const { args } = prepareCall(makeGraph(), makeInputs());
    const bytes = new ArrayBuffer(mdArgsLayout().size);
    encodeArgs({ ...args, page_table: null, partition_size: -3 }, 0n, bytes);
    const decoded = decodeArgs(bytes);
    expect(decoded.page_table).toBeNull();
    expect(decoded.partition_size).toBe(-3);
  });
});

describe("openLibrary", () => {
  it("loads a library once per path and reports its ABI version", () => {
    const lib = openLibrary(stubPath);
    expect(lib.abiVersion).toBe(MD_ABI_VERSION);
    expect(openLibrary(stubPath)).toBe(lib);
    expect(openLibrary(`${stubPath}/../stub.so`)).toBe(lib);
  });

  it("refuses a library of another ABI version", () => {
    expect(() => openLibrary(otherAbiPath)).toThrow(LibraryError);
    expect(() => openLibrary(otherAbiPath)).toThrow(`speaks ABI version ${MD_ABI_VERSION + 41}, this runtime speaks ${MD_ABI_VERSION}; recompile it`);
  });

  it("names a missing entry point", () => {
    expect(() => openLibrary(withoutNaivePath)).toThrow(/does not export md_naive_attention/);
  });

  it("names a library that cannot be loaded", () => {
    const error = (() => {
      try {
        openLibrary(`${stubPath}.missing`);
      } catch (e) {
        return e;
      }
    })();
    expect(error).toBeInstanceOf(LibraryError);
    expect((error as LibraryError).message).toMatch(/cannot load kernel library .*stub\.so\.missing/);
  });

  it("routes every entry point to its symbol, synchronously and asynchronously", async () => {
    const lib = openLibrary(stubPath);
    const control = new StubControl(stubPath);
    control.set();
    const { args } = prepareCall(makeGraph(), makeInputs());
    const routes = [
      [lib.flashAttention, ENTRY_IDS.flash_attention],
      [lib.flashDecoding, ENTRY_IDS.flash_decoding],
      [lib.naive, ENTRY_IDS.naive],
    ] as const;
    for (const [entry, id] of routes) {
      expect(entry(args)).toBe(0);
      expect(control.echo().entry).toBe(id);
    }
    const asyncRoutes = [
      [lib.flashAttentionAsync, ENTRY_IDS.flash_attention],
      [lib.flashDecodingAsync, ENTRY_IDS.flash_decoding],
      [lib.naiveAsync, ENTRY_IDS.naive],
    ] as const;
    for (const [entry, id] of asyncRoutes) {
      expect(await entry(args)).toBe(0);
      expect(control.echo().entry).toBe(id);
    }
  });

  it("keeps an asynchronous call's encoded md_args alive until the call has returned, whatever the collector does", async () => {
    // The regression: only the arrays the struct points to were held, not the struct's own bytes, so a collection
    // while the call waited for a worker thread freed them and the kernel read whatever was allocated there next.
    setFlagsFromString("--expose-gc");
    const gc = runInNewContext("gc") as () => void;
    const lib = openLibrary(stubPath);
    const control = new StubControl(stubPath);
    const { args } = prepareCall(makeGraph(), makeInputs());
    control.set();
    expect(lib.flashDecoding(args)).toBe(0);
    const expected = control.echo();
    control.set({ sleepBeforeMs: 250 });
    try {
      const pending = lib.flashDecodingAsync(args);
      // While the entry point sleeps before reading its argument: collect, then fill freshly allocated memory of
      // md_args' size with a pattern that is no valid pointer or count.
      const litter: Uint8Array[] = [];
      for (let round = 0; round < 5; round++) {
        gc();
        await new Promise((resolve) => setTimeout(resolve, 20));
        for (let k = 0; k < 200; k++) litter.push(new Uint8Array(new ArrayBuffer(mdArgsLayout().size)).fill(0xa5));
      }
      expect(await pending).toBe(0);
      expect(control.echo()).toEqual(expected);
      expect(litter.length).toBe(1000);
    } finally {
      control.set();
    }
  });
});
