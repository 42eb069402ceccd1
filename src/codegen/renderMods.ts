import { readFileSync } from "node:fs";
import { join } from "node:path";
import { type Expr, freeVars, readsBuffers, topoSort, variable, varName } from "../ir/expr.js";
import type { AttentionGraph } from "../ir/graph.js";
import { CPP_VECTOR_TYPE, cppSplat, renderExprs } from "./renderExpr.js";
import { type BlockRanges, intervalOf } from "../ir/intervals.js";
import type { ValueFacts } from "./cppOps.js";
import { MAX_POSITIONS } from "./kernelAbi.js";
import { templatesDir } from "./templatesDir.js";

/** Value ranges from the positions a call can have: b, q_idx and kv_idx below MAX_POSITIONS, h below Hq. */
function valueFacts(graph: AttentionGraph): ValueFacts {
  const last = MAX_POSITIONS - 1;
  const ranges: BlockRanges = { b: [0, last], h: [0, graph.query.shape[1] - 1], q_idx: [0, last], kv_idx: [0, last] };
  return {
    fitsInt32: (e) => {
      const { lo, hi } = intervalOf(e, ranges);
      return lo >= -(2 ** 31) && hi <= 2 ** 31 - 1;
    },
  };
}

/**
 * The C++ of a graph's score_mod and mask_mod, in the form the templates call (see docs/abi.md):
 * `md_mask_mod` for one position and `md_mods_row<MASK>` for a row of kv positions. The row form hoists
 * everything that does not depend on `kv_idx` or `score` out of the loop over the row, then runs the varying
 * part MDM_W positions at a time on lane vectors (when the target has AVX2 or AVX-512) and the remaining
 * positions one at a time. Both forms compute the same bits (mod_helpers.h), so `md_mods_row<MASK, false>`,
 * the scalar loop alone, gives the same row; the harness's `--check-mods` holds them to that.
 */
export function renderMods(graph: AttentionGraph): string {
  return `${modHelpersText()}${renderModsCode(graph)}`;
}

/** mod_helpers.h as pasted before the mods (its include guard dropped: the source pastes it once). */
export function modHelpersText(): string {
  return readFileSync(join(templatesDir(), "mod_helpers.h"), "utf8").replace("#pragma once\n", "");
}

/** `renderMods` without the helpers, for a source that has them already (the mod library's prelude). */
export function renderModsCode(graph: AttentionGraph): string {
  const scoreIdentity = varName(graph.scoreMod) === "score";
  const maskTrue = graph.maskMod.op === "const" && graph.maskMod.arg !== null && "value" in graph.maskMod.arg && graph.maskMod.arg.value === true;
  // Partial prefill tiles first find which positions the mask keeps (md_mask_row) to skip the rest of the tile's
  // work; worth it when the mask is cheap to evaluate twice: indices only, no buffer reads.
  const maskRowEnds = !maskTrue && !readsBuffers(graph.maskMod) && freeVars(graph.maskMod).has("kv_idx");
  const bufferDTypes = graph.buffers.map((b) => b.dtype);

  const maskBound = new Map<Expr, string>();
  const maskBody = renderExprs([graph.maskMod], { bufferDTypes, bound: maskBound, prefix: "m" });
  const maskValue = maskBound.get(graph.maskMod)!;

  return [
    `#define MD_SCORE_MOD_IDENTITY ${scoreIdentity ? 1 : 0}`,
    `#define MD_MASK_MOD_TRUE ${maskTrue ? 1 : 0}`,
    `#define MD_MASK_ROW_ENDS ${maskRowEnds ? 1 : 0}`,
    "",
    "// mask_mod at one position.",
    "static inline bool md_mask_mod(int64_t b, int64_t h, int64_t q_idx, int64_t kv_idx, md_args* a) {",
    unused([...PARAMS, "kv_idx", "a"], 1) + indent(maskBody, 1) + `  return ${maskValue};`,
    "}",
    "",
    "// score_mod over s[0..n), the scaled scores of row (b, h, q_idx) at kv positions kv0.., then, if MASK, mask_mod;",
    "// VECTOR = false runs the scalar loop alone.",
    "template <bool MASK, bool VECTOR = true>",
    "static inline void md_mods_row(float* s, int64_t n, int64_t b, int64_t h, int64_t q_idx, int64_t kv0, md_args* a) {",
    renderRow(graph, graph.scoreMod, graph.maskMod),
    "}",
    "",
    "// mask_mod alone over s[0..n): s[j] = -inf where row (b, h, q_idx) masks kv position kv0 + j.",
    "template <bool VECTOR = true>",
    "static inline void md_mask_row(float* s, int64_t n, int64_t b, int64_t h, int64_t q_idx, int64_t kv0, md_args* a) {",
    "  constexpr bool MASK = true;",
    renderRow(graph, variable("score"), graph.maskMod),
    "}",
    "",
  ].join("\n");
}

const PARAMS = ["b", "h", "q_idx"];
const indent = (lines: string[], depth: number): string => lines.map((l) => `${"  ".repeat(depth)}${l}\n`).join("");
const unused = (names: string[], depth: number): string => indent(names.map((n) => `(void)${n};`), depth);

/**
 * The body of a row function over s[0..n) (parameters b, h, q_idx, kv0, a; template parameters MASK and VECTOR):
 * `scoreMod`, then `maskMod` when MASK. Nodes that depend on neither kv_idx nor score are computed once, before
 * the loop; the vector loop takes MDM_W positions at a time and the scalar loop the rest.
 */
function renderRow(graph: AttentionGraph, scoreMod: Expr, maskMod: Expr): string {
  const bufferDTypes = graph.buffers.map((b) => b.dtype);
  const roots = [scoreMod, maskMod];
  // Split the DAG: nodes that read kv_idx or score vary along the row, the rest are computed once per row.
  const varies = new Set<Expr>();
  for (const e of topoSort(roots)) {
    const v = varName(e);
    if (v === "kv_idx" || v === "score" || e.src.some((s) => varies.has(s))) varies.add(e);
  }
  const invariantRoots = topoSort(roots).filter((e) => !varies.has(e));
  const bound = new Map<Expr, string>();
  const rowInvariant = renderExprs(invariantRoots, { bufferDTypes, bound, prefix: "r" });
  const scalarBound = new Map(bound);
  const scoreLines = renderExprs([scoreMod], { bufferDTypes, bound: scalarBound, prefix: "s" });
  const maskLines = renderExprs([maskMod], { bufferDTypes, bound: scalarBound, prefix: "k" });

  // The vector form: uniform operands of varying nodes become splats, of constants in place, of the other
  // row-invariant values once before the loop.
  const splats: string[] = [];
  const splatNames = new Map<Expr, string>();
  const uniform = (e: Expr): string => {
    if (e.op === "const") return cppSplat(bound.get(e)!, e.dtype);
    let name = splatNames.get(e);
    if (!name) {
      name = `u${splatNames.size}`;
      splatNames.set(e, name);
      splats.push(`const ${CPP_VECTOR_TYPE[e.dtype]} ${name} = ${cppSplat(bound.get(e)!, e.dtype)};`);
    }
    return name;
  };
  const vectorBound = new Map<Expr, string>();
  const vector = { varies, uniform };
  const facts = valueFacts(graph);
  const vScoreLines = renderExprs([scoreMod], { bufferDTypes, bound: vectorBound, prefix: "vs", vector, facts });
  const vMaskLines = renderExprs([maskMod], { bufferDTypes, bound: vectorBound, prefix: "vk", vector, facts });
  // Before the lines are joined: a row-invariant root adds its splat to `splats`.
  const vScoreValue = varies.has(scoreMod) ? vectorBound.get(scoreMod)! : uniform(scoreMod);
  const vMaskValue = varies.has(maskMod) ? vectorBound.get(maskMod)! : uniform(maskMod);

  return [
    unused([...PARAMS, "a"], 1) + indent(rowInvariant, 1) + "  int64_t j = 0;",
    "#if MDM_W > 1",
    "  if (VECTOR) {",
    indent(splats, 2) + "    mdm::vi kv_next = mdm::iota_from(kv0);",
    "    for (; j + MDM_W <= n; j += MDM_W, kv_next += MDM_W) {",
    "      const mdm::vi kv_idx = kv_next;",
    "      const mdm::vf score = mdm::vload(s + j);",
    unused(["kv_idx", "score"], 3) + indent(vScoreLines, 3) + `      mdm::vf result = ${vScoreValue};`,
    "      if (MASK) {",
    indent(vMaskLines, 4) + `        result = mdm::select(${vMaskValue}, result, mdm::vsplat_f(-INFINITY));`,
    "      }",
    "      mdm::vstore(s + j, result);",
    "    }",
    "  }",
    "#endif",
    "  for (; j < n; ++j) {",
    "    const int64_t kv_idx = kv0 + j;",
    "    const float score = s[j];",
    unused(["kv_idx", "score"], 2) + indent(scoreLines, 2) + `    float result = ${scalarBound.get(scoreMod)!};`,
    "    if (MASK) {",
    indent(maskLines, 3) + `      if (!${scalarBound.get(maskMod)!}) result = -INFINITY;`,
    "    }",
    "    s[j] = result;",
    "  }",
  ].join("\n");
}
