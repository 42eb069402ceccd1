/**
 * A seeded PRNG for generated inputs and tests: xoshiro128** (Blackman & Vigna), seeded through splitmix32.
 * It uses only 32-bit integer operations, so the same seed gives the same numbers on every platform and
 * Node version (unlike Math.random, which cannot be seeded).
 */

function rotl(x: number, k: number): number {
  return (x << k) | (x >>> (32 - k));
}

/** One step of splitmix32: turns consecutive counters into well-mixed, independent-looking words. */
function splitmix32(counter: number): number {
  let z = (counter + 0x9e3779b9) | 0;
  z = Math.imul(z ^ (z >>> 16), 0x21f0aaad);
  z = Math.imul(z ^ (z >>> 15), 0x735a2d97);
  return (z ^ (z >>> 15)) >>> 0;
}

const TWO_32 = 2 ** 32;

export class Xoshiro128StarStar {
  private readonly s: Uint32Array;
  /** Box-Muller yields normals in pairs; the second one waits here. */
  private spareNormal: number | undefined;

  /** Starts from a raw 128-bit state (four 32-bit words, not all zero). */
  constructor(state: ArrayLike<number>) {
    if (state.length !== 4) throw new RangeError(`xoshiro128** needs 4 state words, got ${state.length}`);
    this.s = Uint32Array.from(state);
    if (this.s.every((word) => word === 0)) throw new RangeError("xoshiro128** state must not be all zero");
  }

  /** A uniform 32-bit unsigned integer. */
  uint32(): number {
    const s = this.s;
    const result = Math.imul(rotl(Math.imul(s[1], 5), 7), 9) >>> 0;
    const t = s[1] << 9;
    s[2] ^= s[0];
    s[3] ^= s[1];
    s[1] ^= s[2];
    s[0] ^= s[3];
    s[2] ^= t;
    s[3] = rotl(s[3], 11);
    return result;
  }

  /** A uniform float in [0, 1) with 53 random bits. */
  float(): number {
    const high = this.uint32() >>> 5; // 27 bits
    const low = this.uint32() >>> 6; // 26 bits
    return (high * 2 ** 26 + low) / 2 ** 53;
  }

  /** A standard normal (mean 0, standard deviation 1), or with the given mean and standard deviation. */
  normal(mean = 0, std = 1): number {
    let z = this.spareNormal;
    this.spareNormal = undefined;
    if (z === undefined) {
      // 1 - float() is in (0, 1], so the log is finite.
      const radius = Math.sqrt(-2 * Math.log(1 - this.float()));
      const angle = 2 * Math.PI * this.float();
      z = radius * Math.cos(angle);
      this.spareNormal = radius * Math.sin(angle);
    }
    return mean + std * z;
  }

  /** A uniform integer in [lo, hiExclusive); the span may be up to 2^53. Unbiased (rejection sampling). */
  int(lo: number, hiExclusive: number): number {
    if (!Number.isSafeInteger(lo) || !Number.isSafeInteger(hiExclusive) || lo >= hiExclusive) {
      throw new RangeError(`int(${lo}, ${hiExclusive}): expected safe integers with lo < hiExclusive`);
    }
    const span = hiExclusive - lo;
    if (!Number.isSafeInteger(span)) throw new RangeError(`int(${lo}, ${hiExclusive}): span exceeds 2^53`);
    if (span <= TWO_32) {
      // Reject the top partial copy of [0, span) so every residue is equally likely.
      const limit = TWO_32 - (TWO_32 % span);
      let x = this.uint32();
      while (x >= limit) x = this.uint32();
      return lo + (x % span);
    }
    const limit = 2 ** 53 - (2 ** 53 % span);
    let x = this.float() * 2 ** 53;
    while (x >= limit) x = this.float() * 2 ** 53;
    return lo + (x % span);
  }

  /** Shuffles `array` in place (Fisher-Yates) and returns it. */
  shuffle<A extends { length: number; [index: number]: unknown }>(array: A): A {
    for (let i = array.length - 1; i > 0; i--) {
      const j = this.int(0, i + 1);
      const held = array[i];
      array[i] = array[j];
      array[j] = held;
    }
    return array;
  }
}

/** A generator seeded by any safe integer (negative seeds are fine); equal seeds give equal sequences. */
export function rng(seed: number): Xoshiro128StarStar {
  if (!Number.isSafeInteger(seed)) throw new RangeError(`seed ${seed} is not a safe integer`);
  const low = seed >>> 0;
  const high = Math.floor(seed / TWO_32) >>> 0;
  // The low and high halves seed separate words, so distinct seeds always give distinct states; the other
  // two words mix both. splitmix32 is a bijection with splitmix32(0) != 0, so the state is never all zero.
  const s0 = splitmix32(low);
  const s1 = splitmix32((high + 0x632be5ab) | 0);
  const s2 = splitmix32(s0 ^ s1);
  const state = [s0, s1, s2, splitmix32(s2 + 1)];
  return new Xoshiro128StarStar(state);
}

export type Rng = Xoshiro128StarStar;
