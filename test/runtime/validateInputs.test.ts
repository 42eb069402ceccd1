import { describe, expect, it } from "vitest";
import { prepareCall } from "../../src/runtime/prepareCall.js";
import type { RunOptions } from "../../src/runtime/runOptions.js";
import { tensor } from "../../src/runtime/tensor.js";
import type { KernelInputs } from "../../src/runtime/validateInputs.js";
import { LAYOUT_BUFFERS, PAGE_SIZE, makeGraph, makeInputs, makePagedInputs, ramp, expectInputError } from "./fixtures.js";

interface Case {
  name: string;
  field: string;
  message: RegExp;
  /** Breaks one thing of valid inputs. */
  breakInputs: (inputs: KernelInputs) => void;
}


const unpagedCases: Case[] = [
  { name: "missing query", field: "query", message: /query is missing/, breakInputs: (i) => void delete (i as Partial<KernelInputs>).query },
  {
    name: "query dtype",
    field: "query",
    message: /query\.dtype is 'float16', expected 'float32'/,
    breakInputs: (i) => void (i.query = ramp("float16", [2, 4, 3, 8])),
  },
  {
    name: "query storage",
    field: "query",
    message: /query\.data is a Uint16Array; float32 data is stored in a Float32Array/,
    breakInputs: (i) => void (i.query.data = new Uint16Array(i.query.data.length)),
  },
  {
    name: "query rank",
    field: "query",
    message: /query\.shape \[2,4,24\] has rank 3, expected 4/,
    breakInputs: (i) => void (i.query.shape = [2, 4, 24]),
  },
  {
    name: "query negative dim",
    field: "query",
    message: /query\.shape\[2\] = -3 is not a non-negative integer/,
    breakInputs: (i) => void (i.query.shape = [2, 4, -3, 8]),
  },
  {
    name: "query fractional dim",
    field: "query",
    message: /query\.shape\[0\] = 1\.5 is not a non-negative integer/,
    breakInputs: (i) => void (i.query.shape = [1.5, 4, 3, 8]),
  },
  {
    name: "query element count",
    field: "query",
    message: /query\.data has 192 elements but shape \[2, 4, 4, 8\] holds 256/,
    breakInputs: (i) => void (i.query.shape = [2, 4, 4, 8]),
  },
  {
    name: "query heads",
    field: "query",
    message: /query\.shape\[1\] = 2 but the graph has Hq = 4/,
    breakInputs: (i) => void (i.query = ramp("float32", [2, 2, 6, 8])),
  },
  {
    name: "query head dim",
    field: "query",
    message: /query\.shape\[3\] = 4 but the graph has Q_DIM = 8/,
    breakInputs: (i) => void (i.query = ramp("float32", [2, 4, 6, 4])),
  },
  {
    name: "key dtype",
    field: "key",
    message: /key\.dtype is 'bfloat16', expected 'float32'/,
    breakInputs: (i) => void (i.key = ramp("bfloat16", [2, 2, 5, 8])),
  },
  {
    name: "key heads",
    field: "key",
    message: /key\.shape\[1\] = 4 but the graph has Hkv = 2/,
    breakInputs: (i) => void (i.key = ramp("float32", [2, 4, 5, 8])),
  },
  {
    name: "key head dim",
    field: "key",
    message: /key\.shape\[3\] = 16 but the graph has Q_DIM = 8/,
    breakInputs: (i) => void (i.key = ramp("float32", [2, 2, 5, 16])),
  },
  {
    name: "value head dim",
    field: "value",
    message: /value\.shape\[3\] = 4 but the graph has V_DIM = 8/,
    breakInputs: (i) => void (i.value = ramp("float32", [2, 2, 5, 4])),
  },
  {
    name: "value length differs from key",
    field: "value",
    message: /value\.shape\[2\] = 6 differs from key\.shape\[2\] = 5/,
    breakInputs: (i) => void (i.value = ramp("float32", [2, 2, 6, 8])),
  },
  {
    name: "key batch differs from query",
    field: "key",
    message: /key\.shape\[0\] = 3 differs from the batch size 2 \(a key\/value batch of 1 broadcasts\)/,
    breakInputs: (i) => {
      i.key = ramp("float32", [3, 2, 5, 8]);
      i.value = ramp("float32", [3, 2, 5, 8]);
    },
  },
  {
    name: "missing buffer",
    field: "buffers.table",
    message: /buffers\.table is missing \(the graph declares it as int64 of rank 2\)/,
    breakInputs: (i) => void delete i.buffers!.table,
  },
  {
    name: "no buffers at all",
    field: "buffers.slopes",
    message: /buffers\.slopes is missing/,
    breakInputs: (i) => void delete i.buffers,
  },
  {
    name: "unknown buffer",
    field: "buffers.slope",
    message: /buffers\.slope is not declared by the graph \(declared: slopes, table, flags, offset\)/,
    breakInputs: (i) => void (i.buffers!.slope = ramp("float32", [4])),
  },
  {
    name: "buffer dtype",
    field: "buffers.slopes",
    message: /buffers\.slopes\.dtype is 'int32', expected 'float32'/,
    breakInputs: (i) => void (i.buffers!.slopes = ramp("int32", [4])),
  },
  {
    name: "buffer storage",
    field: "buffers.table",
    message: /buffers\.table\.data is a Int32Array; int64 data is stored in a BigInt64Array/,
    breakInputs: (i) => void (i.buffers!.table.data = new Int32Array(15)),
  },
  {
    name: "buffer rank",
    field: "buffers.table",
    message: /buffers\.table\.shape \[15\] has rank 1, expected 2/,
    breakInputs: (i) => void (i.buffers!.table = ramp("int64", [15])),
  },
  {
    name: "empty buffer",
    field: "buffers.flags",
    message: /buffers\.flags\.shape\[0\] is 0; buffers must not be empty/,
    breakInputs: (i) => void (i.buffers!.flags = ramp("bool", [0])),
  },
  {
    name: "pageTable without a kvCache",
    field: "pageTable",
    message: /pageTable is given but the graph has no kvCache/,
    breakInputs: (i) => void (i.pageTable = tensor("int32", [2, 1])),
  },
  {
    name: "seqLens without a kvCache",
    field: "seqLens",
    message: /seqLens is given but the graph has no kvCache/,
    breakInputs: (i) => void (i.seqLens = tensor("int32", [2])),
  },
];

const pagedCases: Case[] = [
  {
    name: "missing pageTable",
    field: "pageTable",
    message: /pageTable is missing/,
    breakInputs: (i) => void delete i.pageTable,
  },
  { name: "missing seqLens", field: "seqLens", message: /seqLens is missing/, breakInputs: (i) => void delete i.seqLens },
  {
    name: "pageTable dtype",
    field: "pageTable",
    message: /pageTable\.dtype is 'int64', expected 'int32'/,
    breakInputs: (i) => void (i.pageTable = ramp("int64", [2, 3])),
  },
  {
    name: "pageTable batch",
    field: "pageTable",
    message: /pageTable\.shape\[0\] = 3 differs from the batch size 2/,
    breakInputs: (i) => void (i.pageTable = tensor("int32", [3, 3])),
  },
  {
    name: "seqLens rank",
    field: "seqLens",
    message: /seqLens\.shape \[2,1\] has rank 2, expected 1/,
    breakInputs: (i) => void (i.seqLens = tensor("int32", [2, 1], Int32Array.from([5, 9]))),
  },
  {
    name: "seqLens batch",
    field: "seqLens",
    message: /seqLens\.shape\[0\] = 1 differs from the batch size 2/,
    breakInputs: (i) => void (i.seqLens = tensor("int32", [1], Int32Array.from([5]))),
  },
  {
    name: "seqLens above capacity",
    field: "seqLens",
    message: /seqLens\[1\] = 13 is outside \[0, 12\] \(maxPagesPerSeq 3 \* pageSize 4\)/,
    breakInputs: (i) => void (i.seqLens!.data[1] = 13),
  },
  {
    name: "negative seqLens",
    field: "seqLens",
    message: /seqLens\[0\] = -1 is outside \[0, 12\]/,
    breakInputs: (i) => void (i.seqLens!.data[0] = -1),
  },
  {
    name: "page past the pool",
    field: "pageTable",
    message: /pageTable\[1\]\[2\] = 6 is not a page of the pool \(numPages = 6\)/,
    breakInputs: (i) => void (i.pageTable!.data[5] = 6),
  },
  {
    name: "negative page that is read",
    field: "pageTable",
    message: /pageTable\[0\]\[1\] = -1 is not a page of the pool/,
    breakInputs: (i) => void (i.pageTable!.data[1] = -1),
  },
  {
    name: "pool page size",
    field: "key",
    message: /key\.shape\[2\] = 3 but the graph has pageSize = 4/,
    breakInputs: (i) => {
      i.key = ramp("float32", [6, 2, 3, 8]);
      i.value = ramp("float32", [6, 2, 3, 8]);
    },
  },
  {
    name: "value pool size",
    field: "value",
    message: /value\.shape\[0\] = 5 differs from key\.shape\[0\] = 6/,
    breakInputs: (i) => void (i.value = ramp("float32", [5, 2, PAGE_SIZE, 8])),
  },
];

describe("input validation (unpaged)", () => {
  const graph = makeGraph({ buffers: LAYOUT_BUFFERS });

  it("accepts valid inputs", () => {
    expect(() => prepareCall(graph, makeInputs({ withBuffers: true }))).not.toThrow();
  });

  it.each(unpagedCases)("rejects $name", ({ field, message, breakInputs }) => {
    const inputs = makeInputs({ withBuffers: true });
    breakInputs(inputs);
    expectInputError(() => prepareCall(graph, inputs), field, message);
  });

  it("accepts free batch, query and kv lengths, including empty ones", () => {
    for (const [batch, qLen, kvLen] of [[1, 1, 1], [3, 17, 9], [2, 0, 5], [2, 3, 0]]) {
      const call = prepareCall(graph, makeInputs({ batch, qLen, kvLen, withBuffers: true }));
      expect(call.shape).toMatchObject({ batch, qLen, kvLen, paged: null, qStartLoc: null, kvStartLoc: null });
    }
  });

  it("requires 16-bit floats as Uint16Array bit patterns", () => {
    const bf16 = makeGraph({ dtype: "bfloat16" });
    const inputs = makeInputs({ dtype: "bfloat16" });
    expect(() => prepareCall(bf16, inputs)).not.toThrow();
    inputs.key.data = new Float32Array(inputs.key.data.length);
    expectInputError(() => prepareCall(bf16, inputs), "key", /key\.data is a Float32Array; bfloat16 data is stored in a Uint16Array/);
  });
});

describe("input validation (paged)", () => {
  const graph = makeGraph({ paged: true });

  it("accepts valid inputs, ignoring page table entries past each sequence", () => {
    const call = prepareCall(graph, makePagedInputs());
    expect(call.shape).toMatchObject({ batch: 2, qLen: 1, kvLen: 9, paged: { numPages: 6, maxPagesPerSeq: 3 } });
  });

  it("accepts empty sequences whatever their page table row holds", () => {
    const inputs = makePagedInputs();
    (inputs.seqLens!.data as Int32Array).set([0, 0]);
    (inputs.pageTable!.data as Int32Array).fill(-1);
    expect(prepareCall(graph, inputs).shape.kvLen).toBe(0);
  });

  it.each(pagedCases)("rejects $name", ({ field, message, breakInputs }) => {
    const inputs = makePagedInputs();
    breakInputs(inputs);
    expectInputError(() => prepareCall(graph, inputs), field, message);
  });
});

describe("option validation", () => {
  const graph = makeGraph();
  const cases: Array<{ options: RunOptions; field: string; message: RegExp }> = [
    { options: { partitionSize: 6 }, field: "partitionSize", message: /partitionSize = 6 must be a positive multiple of the kv block size 4/ },
    { options: { partitionSize: 0 }, field: "partitionSize", message: /partitionSize = 0 must be a positive multiple/ },
    { options: { partitionSize: -8 }, field: "partitionSize", message: /partitionSize = -8/ },
    { options: { numThreads: -1 }, field: "numThreads", message: /numThreads = -1 must be a non-negative integer/ },
    { options: { numThreads: 1.5 }, field: "numThreads", message: /numThreads = 1\.5 must be a non-negative integer/ },
    { options: { template: "flash" as never }, field: "template", message: /template 'flash' is not one of flash_attention, flash_decoding, naive/ },
  ];

  it.each(cases)("rejects $options", ({ options, field, message }) => {
    expectInputError(() => prepareCall(graph, makeInputs(), options), field, message);
  });

  it("checks the graph's PARTITION_SIZE when no option overrides it", () => {
    const odd = makeGraph({ kernelOptions: { PARTITION_SIZE: 10 } });
    expectInputError(() => prepareCall(odd, makeInputs()), "partitionSize", /partitionSize = 10/);
    expect(prepareCall(odd, makeInputs(), { partitionSize: 16 }).args.partition_size).toBe(16);
  });

  it("defaults to the graph's template and PyTorch's partition size of 128", () => {
    const call = prepareCall(makeGraph({ kernelOptions: { template: "flash_decoding" } }), makeInputs());
    expect(call.template).toBe("flash_decoding");
    expect(call.args.partition_size).toBe(128);
    expect(call.args.num_threads).toBe(0);
  });
});
