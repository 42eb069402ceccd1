import type { Ast, BinaryOperator } from "./ast.js";
import { SpecError } from "./errors.js";
import { constant, type Expr, mk } from "./expr.js";
import { CLAMP_ARITY, type DType, FUNCTIONS, type Op, VARS, type VarName } from "./ops.js";
import { TYPE_RULES } from "./typeRules.js";

/** What a mod may refer to besides the index variables. */
export interface ModScope {
  /** "scoreMod" or "maskMod": decides whether `score` exists and what the result must be. */
  readonly kind: "scoreMod" | "maskMod";
  readonly buffers: ReadonlyArray<{ readonly name: string; readonly dtype: "float32" | "int32" | "int64" | "bool"; readonly rank: number }>;
  /** The source string, for carets in errors (absent for traced mods). */
  readonly source?: string;
}

const BINARY_OPS: Readonly<Record<Exclude<BinaryOperator, "&&" | "||">, Op>> = {
  "+": "add", "-": "sub", "*": "mul", "/": "div", "//": "floordiv", "%": "mod", "**": "pow",
  "==": "eq", "!=": "ne", "<": "lt", "<=": "le", ">": "gt", ">=": "ge", "&": "and", "|": "or", "^": "xor",
};

/** Loaded buffer values: int32 is widened to int64 at the load, so a mod computes in one integer type. */
const LOAD_TYPE: Readonly<Record<ModScope["buffers"][number]["dtype"], DType>> = {
  float32: "float32", int32: "int64", int64: "int64", bool: "bool",
};

/**
 * Types a mod with PyTorch's rules and returns its typed Expr: casts are explicit, `&&`/`||`/`!` and the
 * ternary take truthiness, a score_mod is float32 and a mask_mod bool.
 */
export function inferTypes(ast: Ast, scope: ModScope): Expr {
  const fail = (problem: string, pos: number, hint?: string): never => {
    throw new SpecError(problem, { field: scope.kind, column: pos >= 0 ? pos : undefined, source: scope.source }, hint);
  };

  const apply = (op: Op, args: Expr[], pos: number): Expr => {
    const rule = TYPE_RULES[op];
    const targets = rule.coerce(args.map((a) => a.dtype));
    if (typeof targets === "string") {
      return fail(`${op}(${args.map((a) => a.dtype).join(", ")}): ${targets}`, pos);
    }
    const operands = args.map((a, i) => castTo(a, targets[i]));
    const dtype = rule.result(targets);
    if (dtype === null) throw new Error(`op ${op} has no result type rule`);
    return mk(op, dtype, operands);
  };

  const truthy = (e: Expr, pos: number): Expr =>
    e.dtype === "bool" ? e : apply("ne", [e, constant(0, e.dtype)], pos);

  const lower = (node: Ast): Expr => {
    switch (node.kind) {
      case "number":
        return constant(node.value, node.isInt ? "int64" : "float32");
      case "bool":
        return constant(node.value, "bool");
      case "name":
        return lowerName(node.name, node.pos);
      case "index":
        return lowerLoad(node.name, node.indices, node.pos);
      case "call":
        return lowerCall(node.name, node.args, node.pos);
      case "unary": {
        const arg = lower(node.arg);
        switch (node.op) {
          case "-":
            return apply("neg", [arg], node.pos);
          case "+":
            return arg.dtype === "bool" ? fail("unary + needs a number, not a bool", node.pos) : arg;
          case "!":
            return apply("not", [truthy(arg, node.pos)], node.pos);
          case "~":
            return apply(arg.dtype === "bool" ? "not" : "bitnot", [arg], node.pos);
        }
        break;
      }
      case "binary": {
        const left = lower(node.left);
        const right = lower(node.right);
        if (node.op === "&&" || node.op === "||") {
          return apply(node.op === "&&" ? "and" : "or", [truthy(left, node.pos), truthy(right, node.pos)], node.pos);
        }
        return apply(BINARY_OPS[node.op], [left, right], node.pos);
      }
      case "ternary":
        return apply("where", [truthy(lower(node.cond), node.pos), lower(node.then), lower(node.else)], node.pos);
    }
    throw new Error("unreachable");
  };

  const lowerName = (name: string, pos: number): Expr => {
    if ((VARS as readonly string[]).includes(name)) {
      if (name === "score" && scope.kind === "maskMod") {
        return fail("'score' is not available in a mask_mod", pos, "a mask_mod sees only b, h, q_idx, kv_idx and buffers");
      }
      return mk("var", name === "score" ? "float32" : "int64", [], { var: name as VarName });
    }
    if (name === "inf") return constant(Infinity, "float32");
    if (name === "nan") return constant(NaN, "float32");
    const buffer = scope.buffers.find((b) => b.name === name);
    if (buffer) {
      return fail(`buffer '${name}' needs ${buffer.rank} ${buffer.rank === 1 ? "index" : "indices"}`, pos, `write ${name}[${buffer.rank === 1 ? "i" : "i][j"}]`);
    }
    if (name in FUNCTIONS || name === "clamp") return fail(`'${name}' is a function; call it as ${name}(...)`, pos);
    return fail(`unknown name '${name}'`, pos, suggest(name, [...VARS, "inf", "nan", ...scope.buffers.map((b) => b.name)]));
  };

  const lowerLoad = (name: string, indices: Ast[], pos: number): Expr => {
    const index = scope.buffers.findIndex((b) => b.name === name);
    if (index < 0) {
      return fail(`unknown buffer '${name}'`, pos, suggest(name, scope.buffers.map((b) => b.name)) ?? "declare it under \"buffers\"");
    }
    const buffer = scope.buffers[index];
    if (indices.length !== buffer.rank) {
      return fail(`buffer '${name}' has rank ${buffer.rank} but is indexed with ${indices.length} ${indices.length === 1 ? "index" : "indices"}`, pos);
    }
    const lowered = indices.map((i) => {
      const e = lower(i);
      return e.dtype === "int64" ? e : fail(`an index of '${name}' must be an integer, not ${e.dtype}`, i.pos);
    });
    return mk("load", LOAD_TYPE[buffer.dtype], lowered, { buffer: index, name });
  };

  const lowerCall = (name: string, args: Ast[], pos: number): Expr => {
    if (name === "clamp") {
      if (args.length !== CLAMP_ARITY) return fail(`clamp() takes 3 arguments (x, lo, hi), got ${args.length}`, pos);
      const [x, lo, hi] = args.map(lower);
      return apply("min", [apply("max", [x, lo], pos), hi], pos);
    }
    const fn = FUNCTIONS[name];
    if (!fn || !Object.hasOwn(FUNCTIONS, name)) {
      return fail(`unknown function '${name}'`, pos, suggest(name, [...Object.keys(FUNCTIONS), "clamp"]));
    }
    if (args.length !== fn.arity) {
      return fail(`${name}() takes ${fn.arity} argument${fn.arity === 1 ? "" : "s"}, got ${args.length}`, pos);
    }
    return apply(fn.op, args.map(lower), pos);
  };

  const root = lower(ast);
  if (scope.kind === "scoreMod") {
    if (root.dtype === "bool") {
      return fail("a score_mod must produce a number, but this expression is a bool", ast.pos, "to mask positions use maskMod");
    }
    return castTo(root, "float32");
  }
  if (root.dtype !== "bool") {
    return fail(`a mask_mod must produce a bool, but this expression is ${root.dtype}`, ast.pos, "compare it, e.g. q_idx >= kv_idx");
  }
  return root;
}

/** An explicit cast; constants are converted at once. */
export function castTo(e: Expr, dtype: DType): Expr {
  if (e.dtype === dtype) return e;
  if (e.op === "const" && e.arg !== null && "value" in e.arg) {
    const v = e.arg.value;
    if (dtype === "bool") return constant(typeof v === "boolean" ? v : v !== 0, "bool");
    const n = typeof v === "boolean" ? Number(v) : v;
    if (dtype === "int64" && !Number.isSafeInteger(Math.trunc(n))) return mk("cast", dtype, [e]);
    return constant(dtype === "int64" ? Math.trunc(n) : n, dtype);
  }
  return mk("cast", dtype, [e]);
}

/** "did you mean" for a misspelt name, by edit distance. */
export function suggest(name: string, candidates: readonly string[]): string | undefined {
  let best: string | undefined;
  let bestDistance = Infinity;
  for (const c of candidates) {
    const d = editDistance(name, c);
    if (d < bestDistance) {
      best = c;
      bestDistance = d;
    }
  }
  return best !== undefined && bestDistance <= Math.max(1, Math.floor(name.length / 3)) ? `did you mean '${best}'?` : undefined;
}

function editDistance(a: string, b: string): number {
  const row = Array.from({ length: b.length + 1 }, (_, j) => j);
  for (let i = 1; i <= a.length; i++) {
    let diagonal = row[0];
    row[0] = i;
    for (let j = 1; j <= b.length; j++) {
      const above = row[j];
      row[j] = Math.min(row[j] + 1, row[j - 1] + 1, diagonal + (a[i - 1] === b[j - 1] ? 0 : 1));
      diagonal = above;
    }
  }
  return row[b.length];
}
