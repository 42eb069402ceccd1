import { constantKey, constValue, type Expr, topoSort, varName } from "./expr.js";
import type { Op } from "./ops.js";

const INFIX: Partial<Record<Op, string>> = {
  add: "+", sub: "-", mul: "*", div: "/", floordiv: "//", mod: "%", pow: "**",
  eq: "==", ne: "!=", lt: "<", le: "<=", gt: ">", ge: ">=",
};

/** The expression in the mod language, fully parenthesised and with explicit casts: `(score + float32(h))`. */
export function printExpr(e: Expr): string {
  const name = varName(e);
  if (name) return name;
  if (e.op === "const") return printConstant(e);
  const args = e.src.map(printExpr);
  if (e.op === "load") return `${(e.arg as { name: string }).name}${args.map((a) => `[${a}]`).join("")}`;
  const infix = INFIX[e.op];
  if (infix) return `(${args[0]} ${infix} ${args[1]})`;
  switch (e.op) {
    case "and": return `(${args[0]} ${e.dtype === "bool" ? "&&" : "&"} ${args[1]})`;
    case "or": return `(${args[0]} ${e.dtype === "bool" ? "||" : "|"} ${args[1]})`;
    case "xor": return `(${args[0]} ^ ${args[1]})`;
    case "neg": return `(-${args[0]})`;
    case "not": return `(!${args[0]})`;
    case "bitnot": return `(~${args[0]})`;
    case "cast": return `${e.dtype}(${args[0]})`;
    default: return `${e.op}(${args.join(", ")})`;
  }
}

function printConstant(e: Expr): string {
  const v = constValue(e);
  if (typeof v === "boolean") return v ? "true" : "false";
  const text = constantKey(v);
  // A float constant keeps a decimal point so it reads back as a float (`30.0`, not the integer `30`).
  if (e.dtype === "float32" && Number.isFinite(v) && !/[.e]/.test(text)) return `${text}.0`;
  return text;
}

/** The DAG as numbered lines, one node each, operands first: what `minductor explain` shows as the IR. */
export function printDag(root: Expr): string {
  const order = topoSort([root]);
  const id = new Map(order.map((e, i) => [e, `%${i}`] as const));
  return order
    .map((e) => {
      const name = varName(e);
      const detail = name
        ? name
        : e.op === "const"
          ? printConstant(e)
          : e.op === "load"
            ? `${(e.arg as { name: string }).name}[${e.src.map((s) => id.get(s)).join("][")}]`
            : `${e.op} ${e.src.map((s) => id.get(s)).join(", ")}`;
      return `${id.get(e)}: ${e.dtype} = ${detail}`;
    })
    .join("\n");
}
