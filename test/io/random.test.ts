import { describe, expect, it } from "vitest";
import { Xoshiro128StarStar, rng } from "../../src/io/random.js";

const draw = (n: number, next: () => number) => Array.from({ length: n }, next);

function meanAndVariance(values: number[]): [number, number] {
  const mean = values.reduce((a, b) => a + b, 0) / values.length;
  const variance = values.reduce((a, b) => a + (b - mean) ** 2, 0) / values.length;
  return [mean, variance];
}

describe("xoshiro128**", () => {
  it("matches the reference C implementation from state {1, 2, 3, 4}", () => {
    const x = new Xoshiro128StarStar([1, 2, 3, 4]);
    expect(draw(8, () => x.uint32())).toEqual([
      11520, 0, 5927040, 70819200, 2031721883, 1637235492, 1287239034, 3734860849,
    ]);
  });

  it("rejects a state that is all zero or of the wrong size", () => {
    expect(() => new Xoshiro128StarStar([0, 0, 0, 0])).toThrow(/all zero/);
    expect(() => new Xoshiro128StarStar([1, 2])).toThrow(/4 state words/);
  });
});

describe("rng(seed)", () => {
  it("gives the same sequence for the same seed, pinned so generated inputs never change", () => {
    expect(draw(5, () => rng(42).uint32())).toEqual(new Array(5).fill(3962871290));
    const r = rng(42);
    expect(draw(5, () => r.uint32())).toEqual([3962871290, 3653798229, 1630161733, 3756810590, 649546660]);
    const a = rng(7);
    const b = rng(7);
    const mixed = (g: typeof a) => [g.float(), g.normal(), g.int(-5, 5), g.normal(), g.shuffle([1, 2, 3, 4, 5])];
    expect(mixed(a)).toEqual(mixed(b));
  });

  it("gives different sequences for different seeds, including seeds that differ only above bit 32", () => {
    const first = (seed: number) => draw(4, ((r) => () => r.uint32())(rng(seed))).join();
    const seeds = [0, 1, -1, 2 ** 32, 2 ** 32 + 1, Number.MAX_SAFE_INTEGER, Number.MIN_SAFE_INTEGER];
    expect(new Set(seeds.map(first)).size).toBe(seeds.length);
  });

  it("rejects seeds that are not safe integers", () => {
    expect(() => rng(1.5)).toThrow(RangeError);
    expect(() => rng(2 ** 60)).toThrow(/seed/);
  });
});

describe("distributions", () => {
  it("float() is uniform in [0, 1)", () => {
    const r = rng(1);
    const values = draw(20000, () => r.float());
    expect(values.every((v) => v >= 0 && v < 1)).toBe(true);
    const [mean, variance] = meanAndVariance(values);
    expect(mean).toBeCloseTo(0.5, 1);
    expect(Math.abs(variance - 1 / 12)).toBeLessThan(0.005);
    // Each tenth of the interval gets close to its share.
    const deciles = new Array(10).fill(0);
    for (const v of values) deciles[Math.floor(v * 10)]++;
    for (const count of deciles) expect(Math.abs(count - 2000)).toBeLessThan(200);
  });

  it("normal() has mean 0 and standard deviation 1, or the ones asked for", () => {
    const r = rng(2);
    const [mean, variance] = meanAndVariance(draw(20000, () => r.normal()));
    expect(Math.abs(mean)).toBeLessThan(0.03);
    expect(Math.abs(variance - 1)).toBeLessThan(0.05);
    const within1 = draw(20000, () => r.normal()).filter((v) => Math.abs(v) < 1).length / 20000;
    expect(Math.abs(within1 - 0.6827)).toBeLessThan(0.02);
    const [shiftedMean, shiftedVariance] = meanAndVariance(draw(20000, () => r.normal(10, 3)));
    expect(Math.abs(shiftedMean - 10)).toBeLessThan(0.1);
    expect(Math.abs(shiftedVariance - 9)).toBeLessThan(0.5);
  });

  it("int(lo, hi) covers [lo, hi) evenly", () => {
    const r = rng(3);
    const counts = new Map<number, number>();
    for (let i = 0; i < 14000; i++) {
      const v = r.int(-3, 4);
      counts.set(v, (counts.get(v) ?? 0) + 1);
    }
    expect([...counts.keys()].sort((a, b) => a - b)).toEqual([-3, -2, -1, 0, 1, 2, 3]);
    for (const count of counts.values()) expect(Math.abs(count - 2000)).toBeLessThan(200);
    expect(r.int(5, 6)).toBe(5);
  });

  it("int handles spans beyond 2^32", () => {
    const r = rng(4);
    const values = draw(2000, () => r.int(0, 2 ** 40));
    expect(values.every((v) => Number.isInteger(v) && v >= 0 && v < 2 ** 40)).toBe(true);
    // Both halves get hit, so the high bits are random too.
    expect(values.filter((v) => v >= 2 ** 39).length).toBeGreaterThan(800);
    expect(values.filter((v) => v < 2 ** 39).length).toBeGreaterThan(800);
  });

  it("int rejects empty or non-integer ranges", () => {
    const r = rng(5);
    expect(() => r.int(3, 3)).toThrow(/lo < hiExclusive/);
    expect(() => r.int(0, 1.5)).toThrow(RangeError);
    expect(() => r.int(-(2 ** 53) + 1, 2 ** 53 - 1)).toThrow(/span exceeds 2\^53/);
  });

  it("shuffle permutes in place, for arrays and typed arrays, with every position equally likely", () => {
    const r = rng(6);
    const array = [0, 1, 2, 3, 4, 5, 6, 7, 8, 9];
    expect(r.shuffle(array)).toBe(array);
    expect([...array].sort((a, b) => a - b)).toEqual([0, 1, 2, 3, 4, 5, 6, 7, 8, 9]);
    const typed = r.shuffle(Int32Array.from([5, 6, 7, 8]));
    expect([...typed].sort()).toEqual([5, 6, 7, 8]);

    const whereZeroLands = new Array(4).fill(0);
    for (let i = 0; i < 8000; i++) whereZeroLands[r.shuffle([0, 1, 2, 3]).indexOf(0)]++;
    for (const count of whereZeroLands) expect(Math.abs(count - 2000)).toBeLessThan(200);
  });
});
