import { describe, expect, it } from "vitest";
import { fileOrder } from "../../src/io/fileLayout.js";
import { generateInputs, raggedKvLength, raggedQueryRows } from "../../src/io/generateInputs.js";
import { parseSpec } from "../../src/ir/spec.js";
import { type Tensor, toFloat64 } from "../../src/runtime/tensor.js";

type Json = Record<string, any>;

const dense = (edit: (s: Json) => void = () => {}) => {
  const s: Json = {
    name: "gen",
    query: { shape: [3, 4, 5, 8], dtype: "bfloat16" },
    key: { shape: [3, 2, 7, 8], dtype: "bfloat16" },
    value: { shape: [3, 2, 7, 16], dtype: "bfloat16" },
    buffers: { doc: { shape: [6], dtype: "int32" } },
  };
  edit(s);
  return parseSpec(s);
};
const paged = (s: Json) => {
  s.key.shape = [9, 2, 4, 8];
  s.value.shape = [9, 2, 4, 16];
  s.kvCache = { pageSize: 4 };
};
const bshd = (...fields: string[]) => (s: Json) => fields.forEach((f) => (s[f].layout = "bshd"));
const values = (t: Tensor) => Array.from(toFloat64(t));
/** Row-major [d0, d1, d2, d3] values with dims 1 and 2 swapped. */
function swap12(v: number[], [d0, d1, d2, d3]: number[]): number[] {
  const out = new Array<number>(v.length);
  for (let a = 0; a < d0; a++) for (let b = 0; b < d1; b++) for (let c = 0; c < d2; c++) for (let d = 0; d < d3; d++) {
    out[((a * d2 + c) * d1 + b) * d3 + d] = v[((a * d1 + b) * d2 + c) * d3 + d];
  }
  return out;
}

describe("generated inputs follow the spec's layouts", () => {
  it("bshd: the logical values of the bhsd spec, stored [B, L, H, D], as a view of that storage", () => {
    const plain = generateInputs(dense(), 4, { qLen: 6, kvLen: 9 });
    const laidOut = generateInputs(dense(bshd("query", "key", "value")), 4, { qLen: 6, kvLen: 9 });
    for (const field of ["query", "key", "value"] as const) {
      expect(laidOut[field].shape).toEqual(plain[field].shape);
      expect(values(laidOut[field]), field).toEqual(values(plain[field]));
      const file = fileOrder(laidOut[field], "bshd");
      const [b, h, l, d] = plain[field].shape;
      expect(file.shape).toEqual([b, l, h, d]);
      expect(file.data, `${field}: the file is the view's own storage`).toBe(laidOut[field].data);
      expect(values(file)).toEqual(swap12(values(plain[field]), plain[field].shape));
    }
    expect(values(laidOut.buffers.doc)).toEqual(values(plain.buffers.doc));
  });

  it("a bshd pool is token-major [numPages, pageSize, Hkv, D] with the same page table and lengths", () => {
    const plain = generateInputs(dense(paged), 2, { kvLen: 10 });
    const laidOut = generateInputs(dense((s) => { paged(s); bshd("key", "value")(s); }), 2, { kvLen: 10 });
    expect(fileOrder(laidOut.key, "bshd").shape).toEqual([9, 4, 2, 8]);
    expect(fileOrder(laidOut.value, "bshd").shape).toEqual([9, 4, 2, 16]);
    expect(values(laidOut.key)).toEqual(values(plain.key));
    expect(values(laidOut.pageTable!)).toEqual(values(plain.pageTable!));
    expect(values(laidOut.seqLens!)).toEqual(values(plain.seqLens!));
  });

  it("a key/value batch of 1 stays 1 (it broadcasts over the query's batch), even with --batch", () => {
    const g = dense((s) => { s.key.shape[0] = 1; s.value.shape[0] = 1; });
    const x = generateInputs(g, 1, { batch: 5 });
    expect([x.query.shape[0], x.key.shape[0], x.value.shape[0]]).toEqual([5, 1, 1]);
  });

  it("ragged rows: the first sequence the longest, the last a single row, the others in between", () => {
    expect(Array.from({ length: 4 }, (_, b) => raggedQueryRows(4, 16, b))).toEqual([16, 11, 6, 1]);
    expect(Array.from({ length: 3 }, (_, b) => raggedQueryRows(3, 1, b))).toEqual([1, 1, 1]);
    expect(raggedQueryRows(1, 9, 0)).toBe(9);
    expect(Array.from({ length: 3 }, (_, b) => raggedKvLength(100, b))).toEqual([100, 88, 76]);
  });

  it("ragged over a pool: query packed [totalQ, Hq, D] from the dense draw's first rows; pool, table, lengths, buffers unchanged", () => {
    const plain = generateInputs(dense(paged), 6, { qLen: 5, kvLen: 10 });
    const ragged = generateInputs(dense((s) => { paged(s); s.raggedQuery = true; }), 6, { qLen: 5, kvLen: 10 });
    const rows = [5, 5, 1]; // raggedQueryRows(3, 5, b): 5 - (5 b mod 5), the last one 1
    expect(rows.map((_, b) => raggedQueryRows(3, 5, b))).toEqual(rows);
    expect(values(ragged.qStartLoc!)).toEqual([0, rows[0], rows[0] + rows[1], rows[0] + rows[1] + rows[2]]);
    expect(ragged.qStartLoc!.dtype).toBe("int32");
    expect(ragged.query.shape).toEqual([11, 4, 8]);
    expect(ragged.kvStartLoc).toBeUndefined();
    const q = values(plain.query);
    const packed = values(ragged.query);
    let row = 0;
    rows.forEach((n, b) => {
      for (let i = 0; i < n; i++, row++) for (let h = 0; h < 4; h++) {
        const from = ((b * 4 + h) * 5 + i) * 8;
        expect(packed.slice((row * 4 + h) * 8, (row * 4 + h + 1) * 8)).toEqual(q.slice(from, from + 8));
      }
    });
    for (const t of ["key", "value", "pageTable", "seqLens"] as const) expect(values(ragged[t]!), t).toEqual(values(plain[t]!));
    expect(values(ragged.buffers.doc)).toEqual(values(plain.buffers.doc));
  });

  it("ragged without a pool: key/value packed [totalKv, Hkv, D] with kvStartLoc of varied lengths", () => {
    const plain = generateInputs(dense(), 8, { qLen: 4, kvLen: 12 });
    const ragged = generateInputs(dense((s) => (s.raggedQuery = true)), 8, { qLen: 4, kvLen: 12 });
    const lens = [0, 1, 2].map((b) => raggedKvLength(12, b));
    expect(lens).toEqual([12, 11, 10]);
    expect(values(ragged.kvStartLoc!)).toEqual([0, 12, 23, 33]);
    expect(ragged.key.shape).toEqual([33, 2, 8]);
    expect(ragged.value.shape).toEqual([33, 2, 16]);
    // sequence 1's kv position 3, kv head 1, is the dense draw's
    const k = values(plain.key);
    const from = ((1 * 2 + 1) * 12 + 3) * 8;
    expect(values(ragged.key).slice(((12 + 3) * 2 + 1) * 8, ((12 + 3) * 2 + 2) * 8)).toEqual(k.slice(from, from + 8));
  });

  it("an 8-bit cache: a bshd spec gets its bhsd twin's codes, stored in its layout, and the same plain scales", () => {
    for (const dtype of ["int8", "float8_e4m3fn"]) {
      const quantized = (s: Json) => {
        s.query.dtype = "float32";
        s.key.dtype = s.value.dtype = dtype;
      };
      for (const pool of [false, true]) {
        const spec = (laidOut: boolean) => dense((s) => { quantized(s); if (pool) paged(s); if (laidOut) bshd("key", "value")(s); });
        const plain = generateInputs(spec(false), 6, { kvLen: 10 });
        const laidOut = generateInputs(spec(true), 6, { kvLen: 10 });
        expect(laidOut.key.dtype).toBe(dtype);
        expect(values(laidOut.key), `${dtype} pool ${pool}`).toEqual(values(plain.key));
        expect(values(laidOut.value)).toEqual(values(plain.value));
        const [a, h, l, d] = plain.key.shape;
        expect(fileOrder(laidOut.key, "bshd").shape).toEqual([a, l, h, d]);
        expect(fileOrder(laidOut.key, "bshd").data).toBe(laidOut.key.data);
        expect(laidOut.keyScale!.strides ?? null).toBeNull();
        expect(values(laidOut.keyScale!)).toEqual(values(plain.keyScale!));
        expect(values(laidOut.valueScale!)).toEqual(values(plain.valueScale!));
      }
    }
  });

  it("an 8-bit ragged batch: packed codes with a scale per packed token and kv head (int8)", () => {
    const spec = dense((s) => {
      s.raggedQuery = true;
      s.query.dtype = "bfloat16";
      s.key.dtype = s.value.dtype = "int8";
    });
    const ragged = generateInputs(spec, 8, { qLen: 4, kvLen: 12 });
    expect(ragged.key.shape).toEqual([33, 2, 8]);
    expect(ragged.key.dtype).toBe("int8");
    expect(ragged.keyScale!.shape).toEqual([33, 2]);
    expect(ragged.valueScale!.shape).toEqual([33, 2]);
    expect(values(ragged.keyScale!).every((x) => x > 0)).toBe(true);
  });
});
