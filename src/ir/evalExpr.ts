import { constValue, type Expr, topoSort, varName } from "./expr.js";
import type { DType, Op } from "./ops.js";

/** A scalar value inside a mod: int64 and float32 as numbers, bool as boolean. */
export type Value = number | boolean;

/** A captured buffer as the interpreter reads it: row-major values, already widened to numbers/booleans. */
export interface BufferValues {
  readonly values: ArrayLike<number> | ArrayLike<boolean>;
  readonly shape: readonly number[];
}

export interface EvalEnv {
  score: number;
  b: number;
  h: number;
  q_idx: number;
  kv_idx: number;
  readonly buffers: readonly BufferValues[];
}

/** Raised when a mod indexes a captured buffer out of range (the kernel reports status 1 for the same thing). */
export class BufferIndexError extends Error {
  constructor(readonly buffer: string, readonly indices: readonly number[], readonly shape: readonly number[]) {
    super(`a mod indexed buffer '${buffer}' at [${indices.join(", ")}], outside its shape [${shape.join(", ")}]`);
    this.name = "BufferIndexError";
  }
}

const num = (v: Value): number => (typeof v === "boolean" ? Number(v) : v);
const big = (v: Value): bigint => BigInt(num(v));
const fromBig = (v: bigint): number => Number(BigInt.asIntN(64, v));
const INT64_LIMIT = 2 ** 63;

/** Integer floor division and modulo with the sign of the divisor; division by zero gives 0 (see docs/expressions.md). */
export function intFloorDivMod(a: number, b: number): [number, number] {
  if (b === 0) return [0, 0];
  let q = Math.floor(a / b);
  let r = a - q * b;
  if (r !== 0 && r < 0 !== b < 0) {
    q -= 1;
    r += b;
  } else if (Math.abs(r) >= Math.abs(b)) {
    q += 1;
    r -= b;
  }
  return [q, r];
}

/** Python's float modulo (the sign of the divisor), as torch.remainder computes it. */
export function floatMod(a: number, b: number): number {
  const r = a % b;
  return r !== 0 && r < 0 !== b < 0 ? r + b : r;
}

/** Float to int64 as the generated code does it: truncation, NaN to 0, saturation at the int64 range. */
export function floatToInt(x: number): number {
  if (Number.isNaN(x)) return 0;
  return Math.max(-INT64_LIMIT, Math.min(INT64_LIMIT, Math.trunc(x))) + 0;
}

const nanMin = (a: number, b: number): number => (Number.isNaN(a) || Number.isNaN(b) ? NaN : Math.min(a, b));
const nanMax = (a: number, b: number): number => (Number.isNaN(a) || Number.isNaN(b) ? NaN : Math.max(a, b));

/** How each op computes, on values of its (already coerced) operand type. `round` rounds float results. */
type Semantics = (args: Value[], dtype: DType, operandType: DType) => Value;

const floatFn = (f: (x: number) => number): Semantics => (a) => f(num(a[0]));
const intOrFloat = (ints: (a: number, b: number) => number, floats: (a: number, b: number) => number): Semantics =>
  (a, _d, t) => (t === "int64" ? ints(num(a[0]), num(a[1])) : floats(num(a[0]), num(a[1])));
const compare = (f: (a: number, b: number) => boolean): Semantics => (a) => f(num(a[0]), num(a[1]));
const logical = (bools: (a: boolean, b: boolean) => boolean, ints: (a: bigint, b: bigint) => bigint): Semantics =>
  (a, _d, t) => (t === "bool" ? bools(a[0] as boolean, a[1] as boolean) : fromBig(ints(big(a[0]), big(a[1]))));

export const SEMANTICS: Readonly<Record<Op, Semantics | null>> = {
  var: null,
  const: null,
  load: null,
  neg: (a) => -num(a[0]),
  not: (a) => !a[0],
  bitnot: (a) => fromBig(~big(a[0])),
  abs: (a) => Math.abs(num(a[0])),
  floor: (a) => Math.floor(num(a[0])),
  ceil: (a) => Math.ceil(num(a[0])),
  exp: floatFn(Math.exp),
  exp2: floatFn((x) => 2 ** x),
  log: floatFn(Math.log),
  log2: floatFn(Math.log2),
  sqrt: floatFn(Math.sqrt),
  rsqrt: floatFn((x) => 1 / Math.sqrt(x)),
  tanh: floatFn(Math.tanh),
  sigmoid: floatFn((x) => 1 / (1 + Math.exp(-x))),
  silu: floatFn((x) => x / (1 + Math.exp(-x))),
  sin: floatFn(Math.sin),
  cos: floatFn(Math.cos),
  tan: floatFn(Math.tan),
  cast: (a, dtype) => {
    const v = a[0];
    if (dtype === "bool") return typeof v === "boolean" ? v : v !== 0;
    if (dtype === "int64") return typeof v === "boolean" ? Number(v) : floatToInt(v);
    return num(v);
  },
  add: (a) => num(a[0]) + num(a[1]),
  sub: (a) => num(a[0]) - num(a[1]),
  mul: (a) => num(a[0]) * num(a[1]),
  div: (a) => num(a[0]) / num(a[1]),
  floordiv: intOrFloat((x, y) => intFloorDivMod(x, y)[0], (x, y) => Math.floor(x / y)),
  mod: intOrFloat((x, y) => intFloorDivMod(x, y)[1], floatMod),
  pow: (a) => Math.pow(num(a[0]), num(a[1])),
  min: (a, d) => (d === "bool" ? (a[0] as boolean) && (a[1] as boolean) : nanMin(num(a[0]), num(a[1]))),
  max: (a, d) => (d === "bool" ? (a[0] as boolean) || (a[1] as boolean) : nanMax(num(a[0]), num(a[1]))),
  eq: compare((x, y) => x === y),
  ne: compare((x, y) => x !== y),
  lt: compare((x, y) => x < y),
  le: compare((x, y) => x <= y),
  gt: compare((x, y) => x > y),
  ge: compare((x, y) => x >= y),
  and: logical((x, y) => x && y, (x, y) => x & y),
  or: logical((x, y) => x || y, (x, y) => x | y),
  xor: logical((x, y) => x !== y, (x, y) => x ^ y),
  where: (a) => (a[0] ? a[1] : a[2]),
};

/** Applies one op to values; `roundFloat` is identity for the float64 reference and Math.fround for folding. */
export function applyOp(e: Expr, args: Value[], roundFloat: (x: number) => number): Value {
  const semantics = SEMANTICS[e.op];
  if (!semantics) throw new Error(`op ${e.op} is a leaf`);
  const operandType = e.src.length > 0 ? e.src[e.src.length - 1].dtype : e.dtype;
  const v = semantics(args, e.dtype, operandType);
  // `+ 0` turns an integer -0 (which JS arithmetic can make) into 0.
  return e.dtype === "float32" ? roundFloat(num(v)) : e.dtype === "int64" ? num(v) + 0 : Boolean(v);
}

/**
 * Compiles a typed mod into a function of the environment that evaluates it in float64 (float32 ops are
 * computed in double, not rounded): the semantics of the reference.
 */
export function compileEvaluator(root: Expr, roundFloat: (x: number) => number = (x) => x): (env: EvalEnv) => Value {
  const order = topoSort([root]);
  const slot = new Map(order.map((e, i) => [e, i] as const));
  const steps = order.map((e): ((values: Value[], env: EvalEnv) => Value) => {
    const name = varName(e);
    if (name) return (_v, env) => env[name];
    if (e.op === "const") {
      const c = constValue(e);
      return () => c;
    }
    const operands = e.src.map((s) => slot.get(s)!);
    if (e.op === "load") {
      const buffer = (e.arg as { buffer: number; name: string }).buffer;
      const bufferName = (e.arg as { buffer: number; name: string }).name;
      return (values, env) => loadValue(env.buffers[buffer], bufferName, operands.map((i) => values[i] as number), e.dtype);
    }
    return (values) => applyOp(e, operands.map((i) => values[i]), roundFloat);
  });
  return (env) => {
    const values: Value[] = new Array(steps.length);
    for (let i = 0; i < steps.length; i++) values[i] = steps[i](values, env);
    return values[steps.length - 1];
  };
}

function loadValue(buffer: BufferValues, name: string, indices: number[], dtype: DType): Value {
  let offset = 0;
  for (let k = 0; k < indices.length; k++) {
    const i = indices[k];
    if (!(i >= 0 && i < buffer.shape[k])) throw new BufferIndexError(name, indices, buffer.shape);
    offset = offset * buffer.shape[k] + i;
  }
  const v = buffer.values[offset];
  return dtype === "bool" ? Boolean(v) : Number(v);
}
