import { rm } from "node:fs/promises";
import { dirname } from "node:path";
import { afterAll, beforeAll, beforeEach, describe, expect, it } from "vitest";
import { allocateBlockMask } from "../../src/runtime/blockMask.js";
import { buildBlockMask, buildBlockMaskAsync } from "../../src/runtime/buildBlockMask.js";
import { InputError, KernelRuntimeError } from "../../src/runtime/errors.js";
import { MD_ABI_VERSION, type NativeLibrary, openLibrary } from "../../src/runtime/nativeLibrary.js";
import { runKernel, runKernelAsync } from "../../src/runtime/runKernel.js";
import {
  HKV,
  HQ,
  LAYOUT_BUFFERS,
  NUM_PAGES,
  PAGE_SIZE,
  Q_DIM,
  V_DIM,
  layoutBuffers,
  makeGraph,
  makeInputs,
  makePagedInputs,
  sumOf,
} from "./fixtures.js";
import { ENTRY_IDS, StubControl, type StubConfig, compileStub } from "./stubLibrary.js";

const CONFIG: StubConfig = { elemBytes: 4, hq: HQ, hkv: HKV, qDim: Q_DIM, vDim: V_DIM, pageSize: PAGE_SIZE, abi: MD_ABI_VERSION };

let lib: NativeLibrary;
let stub: StubControl;
let lib16: NativeLibrary;
let stubPaths: string[] = [];

beforeAll(async () => {
  const [path, path16] = await Promise.all([compileStub(CONFIG), compileStub({ ...CONFIG, elemBytes: 2 }, "stub16")]);
  stubPaths = [path, path16];
  lib = openLibrary(path);
  stub = new StubControl(path);
  lib16 = openLibrary(path16);
});

// Loaded libraries stay mapped after their files are removed.
afterAll(async () => {
  await Promise.all(stubPaths.map((path) => rm(dirname(path), { recursive: true, force: true })));
});

beforeEach(() => stub.set());

/** Rows 0 and 1 of q blocks, broadcast: row 0 partial {0}; row 1 full {0}, partial {1, 2}. */
function handMask() {
  const mask = allocateBlockMask({ batch: 1, heads: 1, qBlocks: 2, kvBlocks: 3, qBlockSize: 2, kvBlockSize: 4 });
  mask.kvNumBlocks.set([1, 2]);
  mask.kvIndices.set([0, 0, 0, 1, 2, 0]);
  mask.fullKvNumBlocks!.set([0, 1]);
  mask.fullKvIndices!.set([0, 0, 0, 0, 0, 0]);
  return mask;
}

describe("runKernel passes every md_args field", () => {
  it("unpaged, with buffers, a block mask and options", () => {
    const graph = makeGraph({ buffers: LAYOUT_BUFFERS });
    const inputs = makeInputs({ batch: 2, qLen: 3, kvLen: 9, withBuffers: true });
    const mask = handMask();
    stub.set({ echoBuffers: true });
    runKernel(lib, graph, inputs, mask, { partitionSize: 12, numThreads: 3 });
    const buffers = layoutBuffers();
    expect(stub.echo()).toEqual({
      entry: ENTRY_IDS.flash_attention,
      batch: 2,
      q_len: 3,
      kv_len: 9,
      querySum: sumOf(inputs.query),
      keySum: sumOf(inputs.key),
      valueSum: sumOf(inputs.value),
      hasOut: 1,
      hasLse: 1,
      pageTableSum: -1,
      seqLensSum: -1,
      max_pages_per_seq: 0,
      num_pages: 0,
      kvNumBlocksSum: 3,
      kvIndicesSum: 3,
      fullKvNumBlocksSum: 1,
      fullKvIndicesSum: 0,
      mask_batch: 1,
      mask_heads: 1,
      q_blocks: 2,
      kv_blocks: 3,
      hasBuffers: 1,
      hasBufferDims: 1,
      dim0: HQ,
      dim1: 1,
      dim2: 3,
      dim3: 5,
      dim4: 7,
      dim5: 1,
      dim6: 2,
      dim7: 1,
      buffer0Sum: sumOf(buffers.slopes),
      buffer1Sum: sumOf(buffers.table),
      buffer2Sum: sumOf(buffers.flags),
      buffer3Sum: sumOf(buffers.offset),
      partition_size: 12,
      num_threads: 3,
      statusIn: 0,
      sentinel: 0x5eed,
      // The runtime passes the library's own md_mods table in every call.
      hasOwnMods: 1,
    });
  });

  it("paged: pool, page table, sequence lengths and kv_len = the longest sequence", () => {
    const inputs = makePagedInputs();
    const mask = allocateBlockMask({ batch: 2, heads: HQ, qBlocks: 1, kvBlocks: 3, qBlockSize: 2, kvBlockSize: 4 });
    runKernel(lib, makeGraph({ paged: true, returnLse: false }), inputs, mask, { template: "flash_decoding" });
    const echo = stub.echo();
    expect(echo).toMatchObject({
      entry: ENTRY_IDS.flash_decoding,
      batch: 2,
      q_len: 1,
      kv_len: 9,
      keySum: sumOf(inputs.key),
      valueSum: sumOf(inputs.value),
      pageTableSum: sumOf(inputs.pageTable!),
      seqLensSum: 14,
      max_pages_per_seq: 3,
      num_pages: NUM_PAGES,
      hasLse: 0,
      mask_batch: 2,
      mask_heads: HQ,
      hasBuffers: 0,
      hasBufferDims: 0,
      partition_size: 128,
    });
  });
});

describe("runKernel outputs", () => {
  it("allocates out [B, Hq, Lq, V_DIM] in the query dtype and lse [B, Hq, Lq] float32", () => {
    const inputs = makeInputs({ batch: 3, qLen: 4 });
    const { out, lse } = runKernel(lib, makeGraph(), inputs, handMask());
    expect(out.dtype).toBe("float32");
    expect(out.shape).toEqual([3, HQ, 4, V_DIM]);
    expect(out.data).toBeInstanceOf(Float32Array);
    expect(out.data).toEqual(inputs.query.data); // the stub copies query into out
    expect(out.data).not.toBe(inputs.query.data);
    expect(lse!.dtype).toBe("float32");
    expect(lse!.shape).toEqual([3, HQ, 4]);
    expect([...lse!.data]).toEqual(new Array(3 * HQ * 4).fill(4));
  });

  it("returns bfloat16 and float16 outputs as bit patterns", () => {
    for (const dtype of ["bfloat16", "float16"] as const) {
      const inputs = makeInputs({ dtype });
      const { out } = runKernel(lib16, makeGraph({ dtype }), inputs, handMask());
      expect(out.dtype).toBe(dtype);
      expect(out.data).toBeInstanceOf(Uint16Array);
      expect(out.data).toEqual(inputs.query.data);
    }
  });

  it("leaves lse out (and passes NULL) when the graph does not return it", () => {
    const outputs = runKernel(lib, makeGraph({ returnLse: false }), makeInputs(), handMask());
    expect(outputs.lse).toBeUndefined();
    expect("lse" in outputs).toBe(false);
    expect(stub.echo().hasLse).toBe(0);
  });
});

describe("templates and block masks", () => {
  it("uses the graph's template by default and the option when given", () => {
    const graph = makeGraph({ kernelOptions: { template: "flash_decoding" } });
    runKernel(lib, graph, makeInputs(), handMask());
    expect(stub.echo().entry).toBe(ENTRY_IDS.flash_decoding);
    runKernel(lib, graph, makeInputs(), handMask(), { template: "flash_attention" });
    expect(stub.echo().entry).toBe(ENTRY_IDS.flash_attention);
  });

  it("prefers the blockMask argument over inputs.blockMask", () => {
    const broadcast = allocateBlockMask({ batch: 1, heads: 1, qBlocks: 2, kvBlocks: 2, qBlockSize: 2, kvBlockSize: 4 });
    runKernel(lib, makeGraph(), { ...makeInputs(), blockMask: broadcast }, handMask());
    expect(stub.echo().kv_blocks).toBe(3);
    runKernel(lib, makeGraph(), { ...makeInputs(), blockMask: broadcast });
    expect(stub.echo().kv_blocks).toBe(2);
  });

  it("builds the mask natively when none is given, then runs the kernel with it", () => {
    const before = stub.calls();
    runKernel(lib, makeGraph(), makeInputs({ qLen: 5, kvLen: 9 }));
    expect(stub.calls() - before).toBe(2);
    // q blocks 3, kv blocks 3, per batch and head: full counts 0+1+2, partial counts 1+1+1 per (b, h).
    expect(stub.echo()).toMatchObject({
      entry: ENTRY_IDS.flash_attention,
      mask_batch: 2,
      mask_heads: HQ,
      q_blocks: 3,
      kv_blocks: 3,
      kvNumBlocksSum: 3 * 2 * HQ,
      fullKvNumBlocksSum: 3 * 2 * HQ,
      kvIndicesSum: (0 + 1 + 2) * 2 * HQ,
      fullKvIndicesSum: (0 + 0 + 1) * 2 * HQ,
    });
  });

  it("builds no mask for the naive template", () => {
    const before = stub.calls();
    runKernel(lib, makeGraph(), makeInputs(), undefined, { template: "naive" });
    expect(stub.calls() - before).toBe(1);
    expect(stub.echo()).toMatchObject({ entry: ENTRY_IDS.naive, kvNumBlocksSum: -1, mask_batch: 0, kv_blocks: 0 });
  });

  it("buildBlockMask returns the filled mask, with broadcast dims on request", async () => {
    const mask = buildBlockMask(lib, makeGraph(), makeInputs({ qLen: 5, kvLen: 9 }), { batch: 1, heads: 1 });
    expect(stub.echo()).toMatchObject({ entry: ENTRY_IDS.buildBlockMask, hasOut: 0, hasLse: 0, q_len: 5, kv_len: 9 });
    expect(mask).toMatchObject({ batch: 1, heads: 1, qBlocks: 3, kvBlocks: 3, qBlockSize: 2, kvBlockSize: 4 });
    expect([...mask.kvNumBlocks]).toEqual([1, 1, 1]);
    expect([...mask.fullKvNumBlocks!]).toEqual([0, 1, 2]);
    expect([...mask.fullKvIndices!]).toEqual([0, 0, 0, 0, 0, 0, 0, 1, 0]);
    const again = await buildBlockMaskAsync(lib, makeGraph(), makeInputs({ qLen: 5, kvLen: 9 }), { batch: 1, heads: 1 });
    expect(again).toEqual(mask);
    expect(() => buildBlockMask(lib, makeGraph(), makeInputs(), { heads: 3 })).toThrow(/blockMask\.heads = 3 must be 1 or/);
  });
});

describe("status and validation around the native call", () => {
  it("maps status 1 to the captured-buffer error", () => {
    stub.set({ status: 1 });
    const error = catchError(() => runKernel(lib, makeGraph(), makeInputs(), handMask()));
    expect(error).toBeInstanceOf(KernelRuntimeError);
    expect((error as KernelRuntimeError).status).toBe(1);
    expect((error as KernelRuntimeError).message).toBe("a mod indexed a captured buffer out of range");
  });

  it("maps status 2 and unknown statuses to KernelRuntimeError naming the entry", () => {
    stub.set({ status: 2 });
    const sanity = catchError(() => runKernel(lib, makeGraph(), makeInputs(), handMask(), { template: "naive" }));
    expect(sanity).toBeInstanceOf(KernelRuntimeError);
    expect((sanity as KernelRuntimeError).status).toBe(2);
    expect((sanity as Error).message).toMatch(/md_naive_attention rejected its arguments .*status 2/);
    stub.set({ status: 7 });
    expect(() => runKernel(lib, makeGraph(), makeInputs(), handMask())).toThrow(/md_flash_attention failed with unknown status 7/);
  });

  it("reports a failing mask build before running the kernel", () => {
    stub.set({ status: 1 });
    const before = stub.calls();
    expect(() => runKernel(lib, makeGraph(), makeInputs())).toThrow(KernelRuntimeError);
    expect(stub.calls() - before).toBe(1);
    expect(stub.echo().entry).toBe(ENTRY_IDS.buildBlockMask);
  });

  it("makes no native call when an input is invalid", () => {
    const before = stub.calls();
    const inputs = makeInputs();
    inputs.value = makeInputs({ kvLen: 4 }).value;
    expect(() => runKernel(lib, makeGraph(), inputs)).toThrow(InputError);
    expect(() => runKernel(lib, makeGraph(), makeInputs(), handMask(), { numThreads: -2 })).toThrow(InputError);
    expect(stub.calls()).toBe(before);
  });
});

describe("runKernelAsync", () => {
  it("returns what runKernel returns", async () => {
    const inputs = makeInputs({ batch: 1, qLen: 4 });
    const sync = runKernel(lib, makeGraph(), inputs);
    const asyncOutputs = await runKernelAsync(lib, makeGraph(), inputs);
    expect(asyncOutputs).toEqual(sync);
    expect(stub.echo().entry).toBe(ENTRY_IDS.flash_attention);
  });

  it("keeps the event loop running while the kernel works", async () => {
    stub.set({ sleepMs: 200 });
    const events: string[] = [];
    const pending = runKernelAsync(lib, makeGraph(), makeInputs(), handMask()).then(() => events.push("kernel done"));
    setImmediate(() => events.push("event loop turned"));
    await pending;
    expect(events).toEqual(["event loop turned", "kernel done"]);
  });

  it("rejects with the status error", async () => {
    stub.set({ status: 1 });
    await expect(runKernelAsync(lib, makeGraph(), makeInputs(), handMask())).rejects.toThrow(KernelRuntimeError);
    await expect(runKernelAsync(lib, makeGraph(), makeInputs(), handMask(), { partitionSize: 3 })).rejects.toThrow(InputError);
  });
});

function catchError(run: () => unknown): unknown {
  try {
    run();
  } catch (error) {
    return error;
  }
  throw new Error("expected an error");
}
