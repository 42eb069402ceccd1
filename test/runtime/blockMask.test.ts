import { describe, expect, it } from "vitest";
import { type BlockMask, type BlockMaskTarget, allocateBlockMask, validateBlockMask } from "../../src/runtime/blockMask.js";
import { InputError } from "../../src/runtime/errors.js";
import { prepareCall } from "../../src/runtime/prepareCall.js";
import { makeGraph, makeInputs, makePagedInputs } from "./fixtures.js";

// B = 2, Hq = 4, Lq = 3, Lkv = 5 with blocks [2, 4]: at least 2 q blocks and 2 kv blocks.
const TARGET: BlockMaskTarget = { batch: 2, heads: 4, qLen: 3, kvLen: 5, qBlockSize: 2, kvBlockSize: 4 };

/** A causal-style mask broadcast over batch and heads: row 0 has partial {0}; row 1 full {0}, partial {1}. */
function validMask(): BlockMask {
  const mask = allocateBlockMask({ batch: 1, heads: 1, qBlocks: 2, kvBlocks: 2, qBlockSize: 2, kvBlockSize: 4 });
  mask.kvNumBlocks.set([1, 1]);
  mask.kvIndices.set([0, -7, 1, 0]); // entries past a row's count are never read
  mask.fullKvNumBlocks!.set([0, 1]);
  mask.fullKvIndices!.set([99, 0, 0, 99]);
  return mask;
}

function expectMaskError(mask: BlockMask, field: string, message: RegExp, target = TARGET): void {
  let caught: unknown;
  try {
    validateBlockMask(mask, target);
  } catch (error) {
    caught = error;
  }
  expect(caught).toBeInstanceOf(InputError);
  expect((caught as InputError).field).toBe(field);
  expect((caught as InputError).message).toMatch(message);
}

describe("validateBlockMask", () => {
  it("accepts a valid broadcast mask with junk past each row's count", () => {
    expect(() => validateBlockMask(validMask(), TARGET)).not.toThrow();
  });

  it("accepts per-batch and per-head masks, masks larger than needed, and no full blocks", () => {
    const mask = allocateBlockMask({ batch: 2, heads: 4, qBlocks: 3, kvBlocks: 5, qBlockSize: 2, kvBlockSize: 4 });
    mask.kvNumBlocks.fill(2);
    for (let row = 0; row < mask.kvNumBlocks.length; row++) mask.kvIndices.set([1, 4], row * 5);
    expect(() => validateBlockMask(mask, TARGET)).not.toThrow();
    expect(() => validateBlockMask({ ...mask, fullKvNumBlocks: null, fullKvIndices: null }, TARGET)).not.toThrow();
  });

  const cases: Array<{ name: string; field: string; message: RegExp; edit: (m: BlockMask) => void }> = [
    { name: "q block size", field: "blockMask.qBlockSize", message: /block size \[4, 4\] differs from the graph's blockSize \[2, 4\]/, edit: (m) => void (m.qBlockSize = 4) },
    { name: "kv block size", field: "blockMask.kvBlockSize", message: /block size \[2, 128\] differs/, edit: (m) => void (m.kvBlockSize = 128) },
    { name: "batch", field: "blockMask.batch", message: /blockMask\.batch = 3 must be 1 or the batch size 2/, edit: (m) => void (m.batch = 3) },
    { name: "heads", field: "blockMask.heads", message: /blockMask\.heads = 2 must be 1 or the query head count 4/, edit: (m) => void (m.heads = 2) },
    { name: "non-integer geometry", field: "blockMask.kvBlocks", message: /blockMask\.kvBlocks = 2\.5 is not a non-negative integer/, edit: (m) => void (m.kvBlocks = 2.5) },
    { name: "too few q blocks", field: "blockMask.qBlocks", message: /blockMask\.qBlocks = 1 does not cover q_len 3 \(needs 2 blocks of 2\)/, edit: (m) => void (m.qBlocks = 1) },
    { name: "too few kv blocks", field: "blockMask.kvBlocks", message: /blockMask\.kvBlocks = 1 does not cover kv_len 5 \(needs 2 blocks of 4\)/, edit: (m) => void (m.kvBlocks = 1) },
    { name: "counts storage", field: "blockMask.kvNumBlocks", message: /blockMask\.kvNumBlocks must be an Int32Array, got Array/, edit: (m) => void (m.kvNumBlocks = [1, 1] as never) },
    { name: "counts length", field: "blockMask.kvNumBlocks", message: /blockMask\.kvNumBlocks has 3 entries, expected 2/, edit: (m) => void (m.kvNumBlocks = new Int32Array(3)) },
    { name: "indices length", field: "blockMask.kvIndices", message: /blockMask\.kvIndices has 2 entries, expected 4/, edit: (m) => void (m.kvIndices = new Int32Array(2)) },
    { name: "full indices without full counts", field: "blockMask.fullKvNumBlocks", message: /blockMask\.fullKvNumBlocks is null but blockMask\.fullKvIndices is given/, edit: (m) => void (m.fullKvNumBlocks = null) },
    { name: "full counts without full indices", field: "blockMask.fullKvIndices", message: /blockMask\.fullKvIndices is null but blockMask\.fullKvNumBlocks is given/, edit: (m) => void (m.fullKvIndices = null) },
    { name: "full counts length", field: "blockMask.fullKvNumBlocks", message: /blockMask\.fullKvNumBlocks has 1 entries, expected 2/, edit: (m) => void (m.fullKvNumBlocks = new Int32Array(1)) },
    { name: "count above kvBlocks", field: "blockMask.kvNumBlocks", message: /blockMask\.kvNumBlocks\[0\]\[0\]\[1\] = 3 is outside \[0, kvBlocks = 2\]/, edit: (m) => void (m.kvNumBlocks[1] = 3) },
    { name: "negative count", field: "blockMask.kvNumBlocks", message: /blockMask\.kvNumBlocks\[0\]\[0\]\[0\] = -1 is outside/, edit: (m) => void (m.kvNumBlocks[0] = -1) },
    { name: "index out of range", field: "blockMask.kvIndices", message: /blockMask\.kvIndices\[0\]\[0\]\[1\]\[0\] = 2 is not a kv block \(kvBlocks = 2\)/, edit: (m) => void (m.kvIndices[2] = 2) },
    { name: "negative index", field: "blockMask.kvIndices", message: /blockMask\.kvIndices\[0\]\[0\]\[0\]\[0\] = -1 is not a kv block/, edit: (m) => void (m.kvIndices[0] = -1) },
    {
      name: "descending indices",
      field: "blockMask.kvIndices",
      message: /blockMask\.kvIndices\[0\]\[0\]\[1\]\[1\] = 0 does not follow 1: indices must be strictly ascending/,
      edit: (m) => {
        m.kvNumBlocks[1] = 2;
        m.kvIndices.set([1, 0], 2);
        m.fullKvNumBlocks![1] = 0;
      },
    },
    {
      name: "repeated index",
      field: "blockMask.kvIndices",
      message: /= 1 does not follow 1/,
      edit: (m) => {
        m.kvNumBlocks[1] = 2;
        m.kvIndices.set([1, 1], 2);
        m.fullKvNumBlocks![1] = 0;
      },
    },
    { name: "full count above kvBlocks", field: "blockMask.fullKvNumBlocks", message: /blockMask\.fullKvNumBlocks\[0\]\[0\]\[0\] = 5 is outside/, edit: (m) => void (m.fullKvNumBlocks![0] = 5) },
    { name: "full index out of range", field: "blockMask.fullKvIndices", message: /blockMask\.fullKvIndices\[0\]\[0\]\[1\]\[0\] = 7 is not a kv block/, edit: (m) => void (m.fullKvIndices![2] = 7) },
    {
      name: "partial and full overlap",
      field: "blockMask.fullKvIndices",
      message: /blockMask\.fullKvIndices\[0\]\[0\]\[1\]\[1\] = 1 is also a partial block of that row .* must be disjoint/,
      edit: (m) => {
        m.fullKvNumBlocks![1] = 2;
        m.fullKvIndices!.set([0, 1], 2);
      },
    },
  ];

  it.each(cases)("rejects $name", ({ field, message, edit }) => {
    const mask = validMask();
    edit(mask);
    expectMaskError(mask, field, message);
  });

  it("names batch and head of the faulty row in a per-head mask", () => {
    const mask = allocateBlockMask({ batch: 2, heads: 4, qBlocks: 2, kvBlocks: 2, qBlockSize: 2, kvBlockSize: 4 });
    mask.kvNumBlocks[(1 * 4 + 2) * 2 + 1] = 9;
    expectMaskError(mask, "blockMask.kvNumBlocks", /blockMask\.kvNumBlocks\[1\]\[2\]\[1\] = 9/);
  });

  it("does not flag the same block as partial in one row and full in another", () => {
    const mask = validMask();
    // Row 0: partial {1}. Row 1: partial {0}, full {1}.
    mask.kvIndices.set([1, 0, 0, 0]);
    mask.fullKvNumBlocks!.set([0, 1]);
    mask.fullKvIndices!.set([0, 0, 1, 0]);
    expect(() => validateBlockMask(mask, TARGET)).not.toThrow();
  });
});

describe("block masks in a call", () => {
  it("are checked against the call's lengths", () => {
    const graph = makeGraph();
    const inputs = { ...makeInputs({ kvLen: 9 }), blockMask: validMask() };
    expect(() => prepareCall(graph, inputs)).toThrow(/blockMask\.kvBlocks = 2 does not cover kv_len 9/);
    const call = prepareCall(graph, { ...makeInputs(), blockMask: validMask() });
    expect([call.args.mask_batch, call.args.mask_heads, call.args.q_blocks, call.args.kv_blocks]).toEqual([1, 1, 2, 2]);
  });

  it("cover the longest sequence when paged", () => {
    // seqLens [5, 9] with kv blocks of 4 need 3 kv blocks.
    const graph = makeGraph({ paged: true });
    const mask = allocateBlockMask({ batch: 1, heads: 1, qBlocks: 1, kvBlocks: 2, qBlockSize: 2, kvBlockSize: 4 });
    expect(() => prepareCall(graph, { ...makePagedInputs(), blockMask: mask })).toThrow(/needs 3 blocks of 4/);
    const wide = allocateBlockMask({ batch: 1, heads: 1, qBlocks: 1, kvBlocks: 3, qBlockSize: 2, kvBlockSize: 4 });
    expect(() => prepareCall(graph, { ...makePagedInputs(), blockMask: wide })).not.toThrow();
  });
});
