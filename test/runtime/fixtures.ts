/** Small graphs and matching inputs shared by the runtime tests. */
import type { Expr } from "../../src/ir/expr.js";
import type { AttentionGraph, BufferSpec, TensorDType } from "../../src/ir/graph.js";
import { expect } from "vitest";
import { InputError } from "../../src/runtime/errors.js";
import type { KernelInputs } from "../../src/runtime/validateInputs.js";
import { type Tensor, tensor } from "../../src/runtime/tensor.js";

export const HQ = 4;
export const HKV = 2;
export const Q_DIM = 8;
export const V_DIM = 8;
export const PAGE_SIZE = 4;
export const BLOCK_SIZE = [2, 4] as const;

/** The runtime never reads the mods, so the tests leave them as placeholders. */
const PLACEHOLDER_EXPR = {} as Expr;

export const LAYOUT_BUFFERS: ReadonlyArray<{ name: string } & BufferSpec> = [
  { name: "slopes", shape: [HQ], dtype: "float32" },
  { name: "table", shape: [3, 5], dtype: "int64" },
  { name: "flags", shape: [7], dtype: "bool" },
  { name: "offset", shape: [2], dtype: "int32" },
];

export interface GraphOptions {
  dtype?: TensorDType;
  paged?: boolean;
  buffers?: ReadonlyArray<{ name: string } & BufferSpec>;
  returnLse?: boolean;
  kernelOptions?: AttentionGraph["kernelOptions"];
}

export function makeGraph(options: GraphOptions = {}): AttentionGraph {
  const dtype = options.dtype ?? "float32";
  return {
    name: "runtime_test",
    query: { shape: [2, HQ, 3, Q_DIM], dtype, layout: "bhsd" },
    key: { shape: [2, HKV, 5, Q_DIM], dtype, layout: "bhsd" },
    value: { shape: [2, HKV, 5, V_DIM], dtype, layout: "bhsd" },
    scale: 0.5,
    scoreMod: PLACEHOLDER_EXPR,
    maskMod: PLACEHOLDER_EXPR,
    buffers: options.buffers ?? [],
    blockSize: BLOCK_SIZE,
    kvCache: options.paged ? { pageSize: PAGE_SIZE } : undefined,
    returnLse: options.returnLse ?? true,
    raggedQuery: false,
    kernelOptions: options.kernelOptions ?? {},
  };
}

/** A tensor of `shape` whose elements are start, start+1, ... (16-bit dtypes hold the integers as bits). */
export function ramp(dtype: Tensor["dtype"], shape: number[], start = 1): Tensor {
  const t = tensor(dtype, shape);
  for (let i = 0; i < t.data.length; i++) {
    if (t.data instanceof BigInt64Array) t.data[i] = BigInt(start + i);
    else t.data[i] = dtype === "bool" ? (start + i) % 2 : start + i;
  }
  return t;
}

export function sumOf(t: Tensor): number {
  let s = 0;
  for (const v of t.data) s += Number(v);
  return s;
}

export interface InputOptions {
  dtype?: TensorDType;
  batch?: number;
  qLen?: number;
  kvLen?: number;
  withBuffers?: boolean;
}

/** Valid unpaged inputs for makeGraph({ buffers: LAYOUT_BUFFERS }) (or no buffers). */
export function makeInputs(options: InputOptions = {}): KernelInputs {
  const dtype = options.dtype ?? "float32";
  const b = options.batch ?? 2;
  const lq = options.qLen ?? 3;
  const lkv = options.kvLen ?? 5;
  return {
    query: ramp(dtype, [b, HQ, lq, Q_DIM], 1),
    key: ramp(dtype, [b, HKV, lkv, Q_DIM], 2),
    value: ramp(dtype, [b, HKV, lkv, V_DIM], 3),
    buffers: options.withBuffers ? layoutBuffers() : undefined,
  };
}

export function layoutBuffers(): Record<string, Tensor> {
  return {
    slopes: ramp("float32", [HQ], 10),
    table: ramp("int64", [3, 5], 100),
    flags: ramp("bool", [7]),
    offset: ramp("int32", [2], -3),
  };
}

export const NUM_PAGES = 6;

/** Valid paged inputs: pool of NUM_PAGES pages, pageTable [2, 3] (capacity 12), seqLens [5, 9]. */
export function makePagedInputs(dtype: TensorDType = "float32"): KernelInputs {
  return {
    query: ramp(dtype, [2, HQ, 1, Q_DIM], 1),
    key: ramp(dtype, [NUM_PAGES, HKV, PAGE_SIZE, Q_DIM], 2),
    value: ramp(dtype, [NUM_PAGES, HKV, PAGE_SIZE, V_DIM], 3),
    // Sequence 0 uses pages 4, 1 (5 positions); the -1 after them is never read.
    pageTable: tensor("int32", [2, 3], Int32Array.from([4, 1, -1, 0, 5, 2])),
    seqLens: tensor("int32", [2], Int32Array.from([5, 9])),
  };
}

/** Runs `run` and expects an InputError at `field` whose message matches `message` and names the field itself. */
export function expectInputError(run: () => unknown, field: string, message: RegExp): void {
  let caught: unknown;
  try {
    run();
  } catch (error) {
    caught = error;
  }
  expect(caught, `expected an InputError at ${field}`).toBeInstanceOf(InputError);
  expect((caught as InputError).field).toBe(field);
  expect((caught as InputError).message).toMatch(message);
  // The message itself names the field, so it reads on its own in a CLI error line.
  expect((caught as InputError).message).toContain(field);
}
