import type { Ast, BinaryOperator, UnaryOperator } from "./ast.js";

/** A value in a traced mod: wraps the surface Ast it stands for, so tracing and parsing meet in the same form. */
export class Sym {
  constructor(readonly ast: Ast) {}

  add(o: SymLike): Sym { return binary("+", this, o); }
  sub(o: SymLike): Sym { return binary("-", this, o); }
  mul(o: SymLike): Sym { return binary("*", this, o); }
  /** True division, `/`. */
  div(o: SymLike): Sym { return binary("/", this, o); }
  /** Floor division, `//`. */
  floordiv(o: SymLike): Sym { return binary("//", this, o); }
  /** Floor modulo, `%` (the sign of the divisor). */
  mod(o: SymLike): Sym { return binary("%", this, o); }
  pow(o: SymLike): Sym { return binary("**", this, o); }
  eq(o: SymLike): Sym { return binary("==", this, o); }
  ne(o: SymLike): Sym { return binary("!=", this, o); }
  lt(o: SymLike): Sym { return binary("<", this, o); }
  le(o: SymLike): Sym { return binary("<=", this, o); }
  gt(o: SymLike): Sym { return binary(">", this, o); }
  ge(o: SymLike): Sym { return binary(">=", this, o); }
  /** `&`: logical on bools, bitwise on integers. */
  and(o: SymLike): Sym { return binary("&", this, o); }
  /** `|`: logical on bools, bitwise on integers. */
  or(o: SymLike): Sym { return binary("|", this, o); }
  xor(o: SymLike): Sym { return binary("^", this, o); }
  neg(): Sym { return unary("-", this); }
  /** `!`: logical not of the truth value. */
  not(): Sym { return unary("!", this); }
  /** `~`: not on bools, bitwise not on integers. */
  invert(): Sym { return unary("~", this); }
  exp(): Sym { return call("exp", this); }
  exp2(): Sym { return call("exp2", this); }
  log(): Sym { return call("log", this); }
  log2(): Sym { return call("log2", this); }
  sqrt(): Sym { return call("sqrt", this); }
  rsqrt(): Sym { return call("rsqrt", this); }
  abs(): Sym { return call("abs", this); }
  tanh(): Sym { return call("tanh", this); }
  sigmoid(): Sym { return call("sigmoid", this); }
  silu(): Sym { return call("silu", this); }
  sin(): Sym { return call("sin", this); }
  cos(): Sym { return call("cos", this); }
  tan(): Sym { return call("tan", this); }
  floor(): Sym { return call("floor", this); }
  ceil(): Sym { return call("ceil", this); }
  min(o: SymLike): Sym { return call("min", this, o); }
  max(o: SymLike): Sym { return call("max", this, o); }
  clamp(lo: SymLike, hi: SymLike): Sym { return call("clamp", this, lo, hi); }
}

/** Numbers become literals (integers stay integers, as in the mod language); booleans become bools. */
export type SymLike = Sym | number | boolean;

const TRACED = -1;

function lift(v: SymLike): Ast {
  if (v instanceof Sym) return v.ast;
  if (typeof v === "boolean") return { kind: "bool", value: v, pos: TRACED };
  if (typeof v !== "number") {
    throw new TypeError(`got ${typeof v} ${JSON.stringify(String(v)).slice(0, 40)} where a symbolic value or a number was expected (JS operators like + do not trace)`);
  }
  if (Number.isNaN(v)) return { kind: "name", name: "nan", pos: TRACED };
  if (v === Infinity) return { kind: "name", name: "inf", pos: TRACED };
  if (v === -Infinity) return { kind: "unary", op: "-", arg: { kind: "name", name: "inf", pos: TRACED }, pos: TRACED };
  if (v < 0 || Object.is(v, -0)) return { kind: "unary", op: "-", arg: lift(-v), pos: TRACED };
  return { kind: "number", value: v, isInt: Number.isInteger(v), pos: TRACED };
}

const binary = (op: BinaryOperator, a: SymLike, b: SymLike): Sym =>
  new Sym({ kind: "binary", op, left: lift(a), right: lift(b), pos: TRACED });
const unary = (op: UnaryOperator, a: SymLike): Sym => new Sym({ kind: "unary", op, arg: lift(a), pos: TRACED });
const call = (name: string, ...args: SymLike[]): Sym => new Sym({ kind: "call", name, args: args.map(lift), pos: TRACED });

/** `where(cond, a, b)`: a where cond holds, else b (cond must be a bool). */
export const where = (cond: SymLike, a: SymLike, b: SymLike): Sym => call("where", cond, a, b);
export const minimum = (a: SymLike, b: SymLike): Sym => call("min", a, b);
export const maximum = (a: SymLike, b: SymLike): Sym => call("max", a, b);
export const clamp = (x: SymLike, lo: SymLike, hi: SymLike): Sym => call("clamp", x, lo, hi);

/** A captured buffer referred to by its name in `buffers`; `slopes.at(h)` reads `slopes[h]`. */
export class BufferRef {
  constructor(readonly name: string) {}
  at(...indices: SymLike[]): Sym {
    return new Sym({ kind: "index", name: this.name, indices: indices.map(lift), pos: TRACED });
  }
}

export const buffer = (name: string): BufferRef => new BufferRef(name);

export type ScoreModFn = (score: Sym, b: Sym, h: Sym, q_idx: Sym, kv_idx: Sym) => SymLike;
export type MaskModFn = (b: Sym, h: Sym, q_idx: Sym, kv_idx: Sym) => SymLike;

const name = (n: string): Sym => new Sym({ kind: "name", name: n, pos: TRACED });

/** Runs a TypeScript score_mod on symbolic arguments and returns what it computed, as an Ast. */
export function traceScoreMod(fn: ScoreModFn): Ast {
  return lift(fn(name("score"), name("b"), name("h"), name("q_idx"), name("kv_idx")));
}

export function traceMaskMod(fn: MaskModFn): Ast {
  return lift(fn(name("b"), name("h"), name("q_idx"), name("kv_idx")));
}
