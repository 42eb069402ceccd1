import { createHash } from "node:crypto";
import type { DType, Op, VarName } from "./ops.js";

/** What a leaf or cast carries besides its operands. */
export type Arg =
  | null
  | { readonly var: VarName }
  | { readonly value: number | boolean }
  | { readonly buffer: number; readonly name: string };

/**
 * One node of a typed mod expression: plain immutable data, hash-consed so that the same sub-expression is
 * the same object (CSE for free), with a structural hash that is stable across processes and machines.
 * Build nodes only through `mk` and the helpers below.
 */
export class Expr {
  private constructor(
    readonly op: Op,
    readonly dtype: DType,
    readonly src: readonly Expr[],
    readonly arg: Arg,
    /** sha256 of (op, dtype, arg, operand hashes), hex. */
    readonly hash: string,
  ) {}

  /** @internal Only `mk` calls this. */
  static create(op: Op, dtype: DType, src: readonly Expr[], arg: Arg, hash: string): Expr {
    return new Expr(op, dtype, Object.freeze([...src]), arg === null ? null : Object.freeze({ ...arg }), hash);
  }
}

// The interning table holds each distinct node once; entries are small and mods are few.
const interned = new Map<string, Expr>();

/** Canonical text of a constant: distinguishes -0, NaN and the infinities, and is the same on every machine. */
export function constantKey(value: number | boolean): string {
  if (typeof value === "boolean") return value ? "true" : "false";
  if (Number.isNaN(value)) return "nan";
  if (value === Infinity) return "inf";
  if (value === -Infinity) return "-inf";
  if (Object.is(value, -0)) return "-0";
  return String(value);
}

function argKey(arg: Arg): string {
  if (arg === null) return "";
  if ("var" in arg) return `var:${arg.var}`;
  if ("value" in arg) return `const:${constantKey(arg.value)}`;
  return `buf:${arg.buffer}:${arg.name}`;
}

/** The one constructor: returns the existing node when an identical one was made before. */
export function mk(op: Op, dtype: DType, src: readonly Expr[], arg: Arg = null): Expr {
  const key = `${op}|${dtype}|${argKey(arg)}|${src.map((s) => s.hash).join(",")}`;
  const hash = createHash("sha256").update(key).digest("hex");
  const existing = interned.get(hash);
  if (existing) return existing;
  const node = Expr.create(op, dtype, src, arg, hash);
  interned.set(hash, node);
  return node;
}

export const variable = (name: VarName): Expr => mk("var", name === "score" ? "float32" : "int64", [], { var: name });

/** A constant of the given type; float32 values are rounded to float32 here, once. */
export function constant(value: number | boolean, dtype: DType): Expr {
  if (dtype === "bool") return mk("const", dtype, [], { value: Boolean(value) });
  const n = Number(value);
  if (dtype === "int64") {
    if (!Number.isSafeInteger(n)) throw new RangeError(`int64 constant ${n} is not a safe integer`);
    return mk("const", dtype, [], { value: n === 0 ? 0 : n });
  }
  return mk("const", dtype, [], { value: Math.fround(n) });
}

export const isConst = (e: Expr): e is Expr & { arg: { value: number | boolean } } => e.op === "const";

export function constValue(e: Expr): number | boolean {
  if (e.op !== "const" || e.arg === null || !("value" in e.arg)) throw new Error(`not a constant: ${e.op}`);
  return e.arg.value;
}

export function varName(e: Expr): VarName | undefined {
  return e.op === "var" && e.arg !== null && "var" in e.arg ? e.arg.var : undefined;
}

/** Nodes of the DAG in post-order (operands before users), each once. */
export function topoSort(roots: readonly Expr[]): Expr[] {
  const seen = new Set<Expr>();
  const order: Expr[] = [];
  const visit = (e: Expr): void => {
    if (seen.has(e)) return;
    seen.add(e);
    e.src.forEach(visit);
    order.push(e);
  };
  roots.forEach(visit);
  return order;
}

/** What freeVars and readsBuffers found, per expression: a call asks them of its mask_mod every time. */
const reads = new WeakMap<Expr, { vars: ReadonlySet<VarName>; buffers: boolean }>();

function readsOf(e: Expr): { vars: ReadonlySet<VarName>; buffers: boolean } {
  let known = reads.get(e);
  if (!known) {
    const vars = new Set<VarName>();
    let buffers = false;
    for (const n of topoSort([e])) {
      const v = varName(n);
      if (v) vars.add(v);
      if (n.op === "load") buffers = true;
    }
    reads.set(e, (known = { vars, buffers }));
  }
  return known;
}

/** The variables an expression reads. */
export function freeVars(e: Expr): ReadonlySet<VarName> {
  return readsOf(e).vars;
}

/** True when the expression reads a captured buffer. */
export function readsBuffers(e: Expr): boolean {
  return readsOf(e).buffers;
}
