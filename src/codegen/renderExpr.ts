import { constValue, type Expr, topoSort, varName } from "../ir/expr.js";
import { CPP_OPS } from "./cppOps.js";
import { CPP_TYPE, cppConstant } from "./cppLiteral.js";

/** C++ element type of each captured buffer dtype, and the mod type its loads produce. */
const BUFFER_CPP: Readonly<Record<string, { elem: string; value: string }>> = {
  float32: { elem: "float", value: "float" },
  int32: { elem: "int32_t", value: "int64_t" },
  int64: { elem: "int64_t", value: "int64_t" },
  bool: { elem: "uint8_t", value: "bool" },
};

export interface RenderContext {
  /** Buffer dtypes in declaration order (generated code refers to buffers by position only). */
  readonly bufferDTypes: readonly string[];
  /** Names already bound in C++ for nodes computed elsewhere (e.g. the row-invariant part). */
  readonly bound: Map<Expr, string>;
  /** Prefix of generated temporaries, so two emitted blocks never clash. */
  readonly prefix: string;
}

/**
 * Emits C++ statements computing `roots` (in SSA form, one `const` per node, names generated as
 * `<prefix><n>`), skipping nodes already in `ctx.bound`, and records the new names there.
 * Variables are the C++ parameters `score`, `b`, `h`, `q_idx`, `kv_idx` of the enclosing function;
 * the captured buffers are read through the `md_args* a` in scope.
 */
export function renderExprs(roots: readonly Expr[], ctx: RenderContext): string[] {
  const lines: string[] = [];
  let counter = 0;
  for (const e of topoSort(roots)) {
    if (ctx.bound.has(e)) continue;
    const name = varName(e);
    if (name) {
      ctx.bound.set(e, name);
      continue;
    }
    if (e.op === "const") {
      ctx.bound.set(e, cppConstant(constValue(e), e.dtype));
      continue;
    }
    const args = e.src.map((s) => ctx.bound.get(s)!);
    let value: string;
    if (e.op === "load") {
      const k = (e.arg as { buffer: number }).buffer;
      const { elem, value: type } = BUFFER_CPP[ctx.bufferDTypes[k]];
      const dims = args.length === 1 ? `a->buffer_dims[${2 * k}]` : `a->buffer_dims[${2 * k}], a->buffer_dims[${2 * k + 1}]`;
      const load = `mdm::load${args.length}<${elem}>(a->buffers[${k}], ${dims}, ${args.join(", ")}, &a->status)`;
      value = type === "bool" ? `(${load} != 0)` : elem === "int32_t" ? `((int64_t)${load})` : load;
    } else {
      const render = CPP_OPS[e.op];
      if (!render) throw new Error(`no C++ rendering for op ${e.op}`);
      value = render(args, e);
    }
    const temp = `${ctx.prefix}${counter++}`;
    lines.push(`const ${CPP_TYPE[e.dtype]} ${temp} = ${value};`);
    ctx.bound.set(e, temp);
  }
  return lines;
}
