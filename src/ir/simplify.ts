import { applyOp } from "./evalExpr.js";
import { constant, constValue, type Expr, mk } from "./expr.js";

/**
 * Constant folding and algebraic identities that hold exactly in IEEE arithmetic (so `x * 1 -> x` but never
 * `x + 0 -> x`, which is wrong for x = -0, nor `x - x -> 0` on floats, wrong for inf and NaN). Common
 * sub-expressions are already shared by hash-consing. Floats fold in float32, as the kernel computes them.
 */
export function simplify(root: Expr): Expr {
  const memo = new Map<Expr, Expr>();
  const visit = (e: Expr): Expr => {
    let out = memo.get(e);
    if (!out) {
      const src = e.src.map(visit);
      out = rewrite(src.every((s, i) => s === e.src[i]) ? e : mk(e.op, e.dtype, src, e.arg), src);
      memo.set(e, out);
    }
    return out;
  };
  return visit(root);
}

const isValue = (e: Expr, v: number | boolean): boolean => e.op === "const" && Object.is(constValue(e), v);
const isInt = (e: Expr): boolean => e.dtype === "int64";

function rewrite(e: Expr, src: readonly Expr[]): Expr {
  if (e.op === "var" || e.op === "const" || e.op === "load") return e;
  if (src.every((s) => s.op === "const")) {
    const value = applyOp(e, src.map(constValue), Math.fround);
    // Integers past 2^53 are not exact in JS: leave such a node to the kernel's int64 arithmetic.
    if (e.dtype !== "int64" || Number.isSafeInteger(value)) return constant(value, e.dtype);
  }
  const [a, b, c] = src;
  const sameOperands = src.length === 2 && a === b;
  switch (e.op) {
    case "add":
      if (isValue(b, -0) || (isInt(e) && isValue(b, 0))) return a;
      if (isValue(a, -0) || (isInt(e) && isValue(a, 0))) return b;
      break;
    case "sub":
      if (isValue(b, 0)) return a;
      if (isInt(e) && sameOperands) return constant(0, "int64");
      break;
    case "mul":
      if (isValue(b, 1)) return a;
      if (isValue(a, 1)) return b;
      if (isInt(e) && (isValue(a, 0) || isValue(b, 0))) return constant(0, "int64");
      break;
    case "div":
      if (isValue(b, 1)) return a;
      break;
    case "floordiv":
      if (isInt(e) && isValue(b, 1)) return a;
      break;
    case "mod":
      if (isInt(e) && isValue(b, 1)) return constant(0, "int64");
      break;
    case "and":
      if (e.dtype === "bool") {
        if (isValue(a, false) || isValue(b, false)) return constant(false, "bool");
        if (isValue(b, true) || sameOperands) return a;
        if (isValue(a, true)) return b;
      }
      break;
    case "or":
      if (e.dtype === "bool") {
        if (isValue(a, true) || isValue(b, true)) return constant(true, "bool");
        if (isValue(b, false) || sameOperands) return a;
        if (isValue(a, false)) return b;
      }
      break;
    case "not":
    case "neg":
      if (a.op === e.op) return a.src[0];
      break;
    case "abs":
      if (a.op === "abs") return a;
      break;
    case "floor":
    case "ceil":
      if (isInt(a)) return a;
      break;
    case "min":
    case "max":
      if (sameOperands) return a;
      break;
    case "eq":
    case "le":
    case "ge":
      if (sameOperands && a.dtype !== "float32") return constant(true, "bool");
      break;
    case "ne":
    case "lt":
    case "gt":
      if (sameOperands && a.dtype !== "float32") return constant(false, "bool");
      break;
    case "where":
      if (isValue(a, true)) return b;
      if (isValue(a, false)) return c;
      if (b === c) return b;
      break;
  }
  return e;
}
