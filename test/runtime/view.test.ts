import { describe, expect, it } from "vitest";
import { contiguous, contiguousStrides, copyInto, permute, view, viewSpan } from "../../src/runtime/view.js";
import { toFloat64 } from "../../src/runtime/tensor.js";

describe("views", () => {
  it("contiguous strides are row-major", () => {
    expect(contiguousStrides([2, 3, 4])).toEqual([12, 4, 1]);
    expect(contiguousStrides([])).toEqual([]);
  });

  it("a permuted view reads the same elements as the transposed copy", () => {
    // [B=2, S=3, H=2, D=2] stored BSHD; the logical BHSD view is a permute.
    const data = Float32Array.from({ length: 24 }, (_, i) => i);
    const bhsd = permute(view(data, "float32", [2, 3, 2, 2]), [0, 2, 1, 3]);
    expect(bhsd.shape).toEqual([2, 2, 3, 2]);
    expect(bhsd.strides).toEqual([12, 2, 4, 1]);
    const flat = toFloat64(bhsd);
    // element (b=1, h=1, s=2, d=1) sits at 1*12 + 2*4 + 1*2 + 1 = 23 of the data
    expect(flat[((1 * 2 + 1) * 3 + 2) * 2 + 1]).toBe(23);
    // element (b=0, h=1, s=0, d=0) at 2
    expect(flat[(0 * 2 + 1) * 3 * 2]).toBe(2);
  });

  it("offsets and zero strides", () => {
    const data = Float32Array.from([9, 1, 2, 3]);
    const v = view(data, "float32", [3, 3], [0, 1], 1);
    expect(Array.from(toFloat64(v))).toEqual([1, 2, 3, 1, 2, 3, 1, 2, 3]);
    expect(contiguous(v).shape).toEqual([3, 3]);
  });

  it("refuses views that reach past the data, negative strides and overflow", () => {
    const data = new Float32Array(10);
    expect(() => view(data, "float32", [2, 5], [5, 1], 1)).toThrow(/reaches element 10, but the data has 10/);
    expect(() => view(data, "float32", [2, 5], [-5, 1])).toThrow(/strides\[0\] = -5 is not a non-negative integer/);
    expect(() => viewSpan([2 ** 30, 2 ** 30], [2 ** 30, 2 ** 26], 0)).toThrow(/overflows/);
    expect(viewSpan([0, 5], [5, 1], 3)).toBeNull();
  });

  it("copyInto writes a view's elements into another view", () => {
    const src = view(Float32Array.from([1, 2, 3, 4, 5, 6]), "float32", [2, 3]);
    const dst = permute(view(new Float32Array(6), "float32", [3, 2]), [1, 0]);
    copyInto(src, dst);
    expect(Array.from(dst.data as Float32Array)).toEqual([1, 4, 2, 5, 3, 6]);
  });
});
