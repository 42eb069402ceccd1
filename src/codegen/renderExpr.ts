import { constValue, type Expr, topoSort, varName } from "../ir/expr.js";
import type { DType } from "../ir/ops.js";
import { CPP_OPS, type Form, type ValueFacts } from "./cppOps.js";
import { CPP_TYPE, cppConstant } from "./cppLiteral.js";

/** C++ element type of each captured buffer dtype, and the mod type its loads produce. */
const BUFFER_CPP: Readonly<Record<string, { elem: string; value: DType }>> = {
  float32: { elem: "float", value: "float32" },
  int32: { elem: "int32_t", value: "int64" },
  int64: { elem: "int64_t", value: "int64" },
  bool: { elem: "uint8_t", value: "bool" },
};

/** The lane vector of each mod type in the vector form (mod_helpers.h). */
export const CPP_VECTOR_TYPE: Readonly<Record<DType, string>> = { bool: "mdm::vb", int64: "mdm::vi", float32: "mdm::vf" };

/** A uniform value as a vector: every lane the same. */
export function cppSplat(value: string, dtype: DType): string {
  return `mdm::vsplat_${dtype === "float32" ? "f" : dtype === "int64" ? "i" : "b"}(${value})`;
}

export interface RenderContext {
  /** Buffer dtypes in declaration order (generated code refers to buffers by position only). */
  readonly bufferDTypes: readonly string[];
  /** Names already bound in C++ for nodes computed elsewhere (e.g. the row-invariant part). */
  readonly bound: Map<Expr, string>;
  /** Prefix of generated temporaries, so two emitted blocks never clash. */
  readonly prefix: string;
  /**
   * The vector form: nodes in `varies` get lane vectors; every other node is already bound to a scalar, and
   * `uniform(e)` names it as a vector (a splat) where a varying node takes it as an operand.
   */
  readonly vector?: { readonly varies: ReadonlySet<Expr>; readonly uniform: (e: Expr) => string };
  /** Known value ranges (default: nothing known). */
  readonly facts?: ValueFacts;
}

const NO_FACTS: ValueFacts = { fitsInt32: () => false };

/**
 * Emits C++ statements computing `roots` (in SSA form, one `const` per node, names generated as
 * `<prefix><n>`), skipping nodes already in `ctx.bound`, and records the new names there.
 * Variables are the C++ names `score`, `b`, `h`, `q_idx`, `kv_idx` of the enclosing scope (lane vectors for
 * `score` and `kv_idx` in the vector form); the captured buffers are read through the `md_args* a` in scope.
 */
export function renderExprs(roots: readonly Expr[], ctx: RenderContext): string[] {
  const form: Form = ctx.vector ? "vector" : "scalar";
  const lines: string[] = [];
  let counter = 0;
  const operand = (s: Expr): string => (ctx.vector && !ctx.vector.varies.has(s) ? ctx.vector.uniform(s) : ctx.bound.get(s)!);
  for (const e of topoSort(roots)) {
    if (ctx.bound.has(e) || (ctx.vector && !ctx.vector.varies.has(e))) continue;
    const name = varName(e);
    if (name) {
      ctx.bound.set(e, name);
      continue;
    }
    if (e.op === "const") {
      ctx.bound.set(e, cppConstant(constValue(e), e.dtype));
      continue;
    }
    const args = e.src.map(operand);
    let value: string;
    if (e.op === "load") {
      value = renderLoad(e, args, ctx.bufferDTypes, form);
    } else {
      const render = CPP_OPS[e.op];
      if (!render) throw new Error(`no C++ rendering for op ${e.op}`);
      value = render(args, e, form, ctx.facts ?? NO_FACTS);
    }
    const temp = `${ctx.prefix}${counter++}`;
    lines.push(`const ${(form === "vector" ? CPP_VECTOR_TYPE : CPP_TYPE)[e.dtype]} ${temp} = ${value};`);
    ctx.bound.set(e, temp);
  }
  return lines;
}

/** A bounds-checked read of buffer k: one element, or in the vector form one per lane (a gather). */
function renderLoad(e: Expr, args: readonly string[], bufferDTypes: readonly string[], form: Form): string {
  const k = (e.arg as { buffer: number }).buffer;
  const { elem, value: type } = BUFFER_CPP[bufferDTypes[k]];
  const dims = args.length === 1 ? `a->buffer_dims[${2 * k}]` : `a->buffer_dims[${2 * k}], a->buffer_dims[${2 * k + 1}]`;
  if (form === "vector") {
    return `mdm::gather${args.length}<${CPP_VECTOR_TYPE[type]}, ${elem}>(a->buffers[${k}], ${dims}, ${args.join(", ")}, &a->status)`;
  }
  const load = `mdm::load${args.length}<${elem}>(a->buffers[${k}], ${dims}, ${args.join(", ")}, &a->status)`;
  return type === "bool" ? `(${load} != 0)` : elem === "int32_t" ? `((int64_t)${load})` : load;
}
