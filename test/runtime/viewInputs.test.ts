/** Views, caller-owned outputs and ragged batches: what validation accepts, what it encodes, and every refusal. */
import { describe, expect, it } from "vitest";
import { type OutputTensors, prepareCall } from "../../src/runtime/prepareCall.js";
import { type Tensor, tensor } from "../../src/runtime/tensor.js";
import type { KernelInputs } from "../../src/runtime/validateInputs.js";
import { permute, view } from "../../src/runtime/view.js";
import { HKV, HQ, NUM_PAGES, PAGE_SIZE, Q_DIM, V_DIM, makeGraph, makeInputs, makePagedInputs, ramp, expectInputError } from "./fixtures.js";

const graph = makeGraph();
const pagedGraph = makeGraph({ paged: true });


/** [B, S, H, D] storage viewed as the logical [B, H, S, D]. */
function bshd(shape: [number, number, number, number]): Tensor {
  const [b, h, s, d] = shape;
  return permute(view(new Float32Array(b * s * h * d), "float32", [b, s, h, d]), [0, 2, 1, 3]);
}

/** A ragged call: sequences of 1, 0 and 2 query rows over packed key/value of 4, 2 and 3 positions. */
function raggedInputs(): KernelInputs {
  return {
    query: ramp("float32", [3, HQ, Q_DIM]),
    key: ramp("float32", [9, HKV, Q_DIM]),
    value: ramp("float32", [9, HKV, V_DIM]),
    qStartLoc: tensor("int32", [4], Int32Array.from([0, 1, 1, 3])),
    kvStartLoc: tensor("int32", [4], Int32Array.from([0, 4, 6, 9])),
  };
}

describe("views: what reaches md_args", () => {
  it("passes the strides of a BSHD view and the data from its offset", () => {
    const inputs = makeInputs({ batch: 2, qLen: 3, kvLen: 5 });
    inputs.query = bshd([2, HQ, 3, Q_DIM]);
    const { args } = prepareCall(graph, inputs);
    expect(args.q_strides).toEqual([3 * HQ * Q_DIM, Q_DIM, HQ * Q_DIM]);
    expect(args.k_strides).toEqual([HKV * 5 * Q_DIM, 5 * Q_DIM, Q_DIM]);
    const data = new Float32Array(100 + 2 * HKV * 5 * Q_DIM);
    inputs.key = view(data, "float32", [2, HKV, 5, Q_DIM], undefined, 100);
    const shifted = prepareCall(graph, inputs).args.key as Float32Array;
    expect(shifted.buffer).toBe(data.buffer);
    expect(shifted.byteOffset).toBe(400);
  });

  it("broadcasts a key/value batch of 1 with a batch stride of 0", () => {
    const inputs = makeInputs({ batch: 3 });
    inputs.key = ramp("float32", [1, HKV, 5, Q_DIM]);
    inputs.value = ramp("float32", [1, HKV, 5, V_DIM]);
    const { args, shape } = prepareCall(graph, inputs);
    expect(shape.batch).toBe(3);
    expect(args.k_strides[0]).toBe(0);
    expect(args.v_strides[0]).toBe(0);
  });

  it("writes into caller-owned outputs, allocating nothing for them", () => {
    const inputs = makeInputs({ batch: 2, qLen: 3 });
    const out = bshd([2, HQ, 3, V_DIM]);
    const lse = tensor("float32", [2, HQ, 3]);
    const call = prepareCall(graph, inputs, { out, lse });
    expect(call.outputs.out).toBe(out);
    expect(call.outputs.lse).toBe(lse);
    expect(call.args.out).not.toBeNull();
    expect((call.args.out as Float32Array).buffer).toBe(out.data.buffer);
    expect(call.args.out_strides).toEqual([3 * HQ * V_DIM, V_DIM, HQ * V_DIM]);
    expect(call.args.lse_strides).toEqual([HQ * 3, 3, 1]);
  });

  it("encodes a ragged call token-major: batch stride 0, the start locations, the longest sequence", () => {
    const call = prepareCall(graph, raggedInputs());
    expect(call.shape).toMatchObject({ batch: 3, qLen: 2, kvLen: 4, minQLen: 1, totalQ: 3 });
    expect(call.args.q_strides).toEqual([0, Q_DIM, HQ * Q_DIM]);
    expect(call.args.k_strides).toEqual([0, Q_DIM, HKV * Q_DIM]);
    expect(Array.from(call.args.q_start_loc!)).toEqual([0, 1, 1, 3]);
    expect(call.outputs.out.shape).toEqual([3, HQ, V_DIM]);
    expect(call.outputs.lse!.shape).toEqual([3, HQ]);
    expect(call.args.out_strides).toEqual([0, V_DIM, HQ * V_DIM]);
    expect(call.args.lse_strides).toEqual([0, 1, HQ]);
  });

  it("takes a ragged query over a paged pool", () => {
    const inputs = makePagedInputs();
    inputs.query = ramp("float32", [3, HQ, Q_DIM]);
    inputs.qStartLoc = tensor("int32", [3], Int32Array.from([0, 2, 3]));
    expect(prepareCall(pagedGraph, inputs).shape).toMatchObject({ batch: 2, qLen: 2, kvLen: 9 });
  });

  it("takes a token-major pool [numPages, pageSize, Hkv, D]", () => {
    const inputs = makePagedInputs();
    inputs.key = permute(view(new Float32Array(NUM_PAGES * PAGE_SIZE * HKV * Q_DIM), "float32", [NUM_PAGES, PAGE_SIZE, HKV, Q_DIM]), [0, 2, 1, 3]);
    expect(prepareCall(pagedGraph, inputs).args.k_strides).toEqual([PAGE_SIZE * HKV * Q_DIM, Q_DIM, HKV * Q_DIM]);
  });
});

interface Refusal {
  name: string;
  field: string;
  message: RegExp;
  inputs: () => KernelInputs;
  outputs?: (inputs: KernelInputs) => OutputTensors;
  paged?: boolean;
  returnLse?: boolean;
}

const refusals: Refusal[] = [
  {
    name: "a view reaching past its data",
    field: "key",
    message: /key: shape \[2, 2, 5, 8\] with strides \[80, 40, 8, 1\] and offset 1 reaches element 160, but the data has 160/,
    inputs: () => ({ ...makeInputs(), key: { ...ramp("float32", [2, HKV, 5, Q_DIM]), offset: 1 } }),
  },
  {
    name: "a negative stride",
    field: "query",
    message: /query: strides\[2\] = -8 is not a non-negative integer/,
    inputs: () => ({ ...makeInputs(), query: { ...ramp("float32", [2, HQ, 3, Q_DIM]), strides: [96, 24, -8, 1], offset: 16 } }),
  },
  {
    name: "a last-dim stride other than 1",
    field: "value",
    message: /value\.strides\[3\] = 2: the last dim must be contiguous \(stride 1\)/,
    inputs: () => ({ ...makeInputs(), value: { dtype: "float32", data: new Float32Array(2 * HKV * 5 * V_DIM * 2), shape: [2, HKV, 5, V_DIM], strides: [160, 80, 16, 2] } }),
  },
  {
    name: "an index that overflows",
    field: "query",
    message: /query: the view's largest index overflows/,
    inputs: () => ({ ...makeInputs(), query: { ...ramp("float32", [2, HQ, 3, Q_DIM]), strides: [2 ** 52, 2 ** 52, 2 ** 52, 1] } }),
  },
  {
    name: "strides of the wrong rank",
    field: "query",
    message: /query: strides \[24, 8, 1\] have 3 entries for a rank-4 shape/,
    inputs: () => ({ ...makeInputs(), query: { ...ramp("float32", [2, HQ, 3, Q_DIM]), strides: [24, 8, 1] } }),
  },
  {
    name: "a view of another dtype",
    field: "key",
    message: /key\.dtype is 'bfloat16', expected 'float32'/,
    inputs: () => ({ ...makeInputs(), key: view(new Uint16Array(160), "bfloat16", [2, HKV, 5, Q_DIM]) }),
  },
  {
    name: "qStartLoc not starting at 0",
    field: "qStartLoc",
    message: /qStartLoc\[0\] = 1, expected 0/,
    inputs: () => ({ ...raggedInputs(), qStartLoc: tensor("int32", [4], Int32Array.from([1, 1, 1, 3])) }),
  },
  {
    name: "qStartLoc decreasing",
    field: "qStartLoc",
    message: /qStartLoc\[2\] = 0 is below qStartLoc\[1\] = 2; starts must not decrease/,
    inputs: () => ({ ...raggedInputs(), qStartLoc: tensor("int32", [4], Int32Array.from([0, 2, 0, 3])) }),
  },
  {
    name: "qStartLoc past totalQ",
    field: "qStartLoc",
    message: /qStartLoc\[3\] = 4 must equal query\.shape\[0\] \(totalQ\) = 3/,
    inputs: () => ({ ...raggedInputs(), qStartLoc: tensor("int32", [4], Int32Array.from([0, 1, 1, 4])) }),
  },
  {
    name: "kvStartLoc decreasing",
    field: "kvStartLoc",
    message: /kvStartLoc\[2\] = 3 is below kvStartLoc\[1\] = 4/,
    inputs: () => ({ ...raggedInputs(), kvStartLoc: tensor("int32", [4], Int32Array.from([0, 4, 3, 9])) }),
  },
  {
    name: "kvStartLoc short of totalKv",
    field: "kvStartLoc",
    message: /kvStartLoc\[3\] = 8 must equal key\.shape\[0\] \(totalKv\) = 9/,
    inputs: () => ({ ...raggedInputs(), kvStartLoc: tensor("int32", [4], Int32Array.from([0, 4, 6, 8])) }),
  },
  {
    name: "kvStartLoc for another number of sequences",
    field: "kvStartLoc",
    message: /kvStartLoc has 2 sequences, the query 3/,
    inputs: () => ({ ...raggedInputs(), kvStartLoc: tensor("int32", [3], Int32Array.from([0, 4, 9])) }),
  },
  {
    name: "a start location given as a view",
    field: "qStartLoc",
    message: /qStartLoc must be a contiguous tensor, not a view/,
    inputs: () => ({ ...raggedInputs(), qStartLoc: view(Int32Array.from([9, 0, 1, 1, 3]), "int32", [4], [1], 1) }),
  },
  {
    name: "a ragged call whose seqLens pass its page table",
    field: "seqLens",
    message: /seqLens\[1\] = 13 is outside \[0, 12\]/,
    paged: true,
    inputs: () => ({
      ...makePagedInputs(),
      query: ramp("float32", [3, HQ, Q_DIM]),
      qStartLoc: tensor("int32", [3], Int32Array.from([0, 2, 3])),
      seqLens: tensor("int32", [2], Int32Array.from([5, 13])),
    }),
  },
  {
    name: "kvStartLoc with a paged cache",
    field: "kvStartLoc",
    message: /kvStartLoc is given but the graph has a kvCache/,
    paged: true,
    inputs: () => ({ ...makePagedInputs(), kvStartLoc: tensor("int32", [3], Int32Array.from([0, 1, 2])) }),
  },
  {
    name: "an output overlapping the query",
    field: "out",
    message: /out overlaps query \(the same memory\)/,
    inputs: () => makeInputs(),
    outputs: (given) => ({ out: view(given.query.data as Float32Array, "float32", [2, HQ, 3, V_DIM]) }),
  },
  {
    name: "lse overlapping out",
    field: "lse",
    message: /lse overlaps out/,
    inputs: () => makeInputs(),
    outputs: () => {
      const data = new Float32Array(2 * HQ * 3 * V_DIM);
      return { out: view(data, "float32", [2, HQ, 3, V_DIM]), lse: view(data, "float32", [2, HQ, 3], undefined, 5) };
    },
  },
  {
    name: "an output of the wrong shape",
    field: "out",
    message: /out\.shape \[2, 4, 4, 8\] differs from the call's \[2, 4, 3, 8\]/,
    inputs: () => makeInputs(),
    outputs: () => ({ out: tensor("float32", [2, HQ, 4, V_DIM]) }),
  },
  {
    name: "an output of the wrong dtype",
    field: "out",
    message: /out\.dtype is 'float16', expected 'float32'/,
    inputs: () => makeInputs(),
    outputs: () => ({ out: tensor("float16", [2, HQ, 3, V_DIM]) }),
  },
  {
    name: "an output written twice through a zero stride",
    field: "out",
    message: /out\.strides\[1\] is 0: an output element would be written more than once/,
    inputs: () => makeInputs(),
    outputs: () => ({ out: view(new Float32Array(2 * 3 * V_DIM), "float32", [2, HQ, 3, V_DIM], [3 * V_DIM, 0, V_DIM, 1]) }),
  },
  {
    name: "lse given to a graph that does not return it",
    field: "lse",
    message: /lse is given but the graph does not return it/,
    returnLse: false,
    inputs: () => makeInputs(),
    outputs: () => ({ lse: tensor("float32", [2, HQ, 3]) }),
  },
];

describe("views: refusals", () => {
  it.each(refusals)("refuses $name", ({ field, message, inputs, outputs, paged, returnLse }) => {
    const g = paged ? pagedGraph : makeGraph({ returnLse: returnLse ?? true });
    const given = inputs();
    expectInputError(() => prepareCall(g, given, outputs?.(given) ?? {}), field, message);
  });
});

describe("quantized key/value: scales", () => {
  const int8Graph = { ...makeGraph(), key: { ...makeGraph().key, dtype: "int8" as const }, value: { ...makeGraph().value, dtype: "int8" as const } };
  const fp8Graph = { ...makeGraph(), key: { ...makeGraph().key, dtype: "float8_e4m3fn" as const }, value: { ...makeGraph().value, dtype: "float8_e4m3fn" as const } };
  const int8Inputs = (): KernelInputs => ({
    query: ramp("float32", [2, HQ, 3, Q_DIM]),
    key: tensor("int8", [2, HKV, 5, Q_DIM]),
    value: tensor("int8", [2, HKV, 5, V_DIM]),
    keyScale: tensor("float32", [2, HKV, 5], new Float32Array(20).fill(0.5)),
    valueScale: tensor("float32", [2, HKV, 5], new Float32Array(20).fill(0.25)),
  });
  const fp8Inputs = (): KernelInputs => ({
    query: ramp("float32", [2, HQ, 3, Q_DIM]),
    key: tensor("float8_e4m3fn", [2, HKV, 5, Q_DIM]),
    value: tensor("float8_e4m3fn", [2, HKV, 5, V_DIM]),
  });

  it("passes int8 scales with the rows' strides, fp8 ones by kv head, none as NULL", () => {
    const { args } = prepareCall(int8Graph, int8Inputs());
    expect(args.k_scale_strides).toEqual([HKV * 5, 5, 1]);
    expect(args.v_scale).not.toBeNull();
    const fp8 = prepareCall(fp8Graph, { ...fp8Inputs(), keyScale: tensor("float32", [HKV], Float32Array.of(2, 3)) }).args;
    expect(fp8.k_scale_strides).toEqual([0, 1, 0]);
    expect(fp8.v_scale).toBeNull();
  });

  const cases: Array<{ name: string; graph: typeof int8Graph | typeof fp8Graph | ReturnType<typeof makeGraph>; field: string; message: RegExp; inputs: () => KernelInputs }> = [
    { name: "a missing int8 scale", graph: int8Graph, field: "valueScale", message: /valueScale is missing: int8 key\/value need one scale per token and kv head/, inputs: () => ({ ...int8Inputs(), valueScale: undefined }) },
    { name: "an int8 scale of the wrong shape", graph: int8Graph, field: "keyScale", message: /keyScale\.shape \[2, 2\] should be \[2, 2, 5\] \(key\/value without their last dim\)/, inputs: () => ({ ...int8Inputs(), keyScale: tensor("float32", [2, HKV]) }) },
    { name: "a scale of the wrong dtype", graph: int8Graph, field: "keyScale", message: /keyScale\.dtype is 'float16', expected 'float32'/, inputs: () => ({ ...int8Inputs(), keyScale: tensor("float16", [2, HKV, 5]) }) },
    { name: "a negative scale", graph: int8Graph, field: "keyScale", message: /keyScale holds -1 \(data index 3\); scales must be finite and non-negative/, inputs: () => { const i = int8Inputs(); (i.keyScale!.data as Float32Array)[3] = -1; return i; } },
    { name: "a non-finite scale", graph: fp8Graph, field: "valueScale", message: /valueScale holds NaN/, inputs: () => ({ ...fp8Inputs(), valueScale: tensor("float32", [HKV], Float32Array.of(1, NaN)) }) },
    { name: "an fp8 scale that is not per kv head", graph: fp8Graph, field: "keyScale", message: /keyScale\.shape \[2, 2, 5\] should be \[2\] \(\[Hkv\], one per kv head\)/, inputs: () => ({ ...fp8Inputs(), keyScale: tensor("float32", [2, HKV, 5]) }) },
    { name: "fp8 codes given as float32 data", graph: fp8Graph, field: "key", message: /key\.data is a Float32Array; float8_e4m3fn data is stored in a Uint8Array/, inputs: () => ({ ...fp8Inputs(), key: { dtype: "float8_e4m3fn", shape: [2, HKV, 5, Q_DIM], data: new Float32Array(160) } as unknown as Tensor }) },
    { name: "codes of another format", graph: fp8Graph, field: "key", message: /key\.dtype is 'float8_e5m2', expected 'float8_e4m3fn'/, inputs: () => ({ ...fp8Inputs(), key: tensor("float8_e5m2", [2, HKV, 5, Q_DIM]) }) },
    { name: "scales for an unquantized key", graph: makeGraph(), field: "keyScale", message: /keyScale is given but key\/value are float32, not quantized/, inputs: () => ({ ...makeInputs(), keyScale: tensor("float32", [HKV]) }) },
  ];
  it.each(cases)("refuses $name", ({ graph: g, field, message, inputs }) => {
    expectInputError(() => prepareCall(g, inputs()), field, message);
  });
});
