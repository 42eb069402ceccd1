import { readFileSync } from "node:fs";
import { join } from "node:path";
import { type Expr, topoSort, varName } from "../ir/expr.js";
import type { AttentionGraph } from "../ir/graph.js";
import { renderExprs } from "./renderExpr.js";
import { templatesDir } from "./templatesDir.js";

/**
 * The C++ of a graph's score_mod and mask_mod, in the form the templates call (see docs/abi.md):
 * `md_mask_mod` for one position and `md_mods_row<MASK>` for a row of kv positions. The row form hoists
 * everything that does not depend on `kv_idx` or `score` out of the loop over the row.
 */
export function renderMods(graph: AttentionGraph): string {
  const scoreIdentity = varName(graph.scoreMod) === "score";
  const maskTrue = graph.maskMod.op === "const" && graph.maskMod.arg !== null && "value" in graph.maskMod.arg && graph.maskMod.arg.value === true;
  const bufferDTypes = graph.buffers.map((b) => b.dtype);
  const params = ["b", "h", "q_idx"];

  const maskBound = new Map<Expr, string>();
  const maskBody = renderExprs([graph.maskMod], { bufferDTypes, bound: maskBound, prefix: "m" });
  const maskValue = maskBound.get(graph.maskMod)!;

  // Split the DAG: nodes that read kv_idx or score vary along the row, the rest are computed once per row.
  const varies = new Set<Expr>();
  for (const e of topoSort([graph.scoreMod, graph.maskMod])) {
    const v = varName(e);
    if (v === "kv_idx" || v === "score" || e.src.some((s) => varies.has(s))) varies.add(e);
  }
  const invariantRoots = topoSort([graph.scoreMod, graph.maskMod]).filter((e) => !varies.has(e));
  const bound = new Map<Expr, string>();
  const rowInvariant = renderExprs(invariantRoots, { bufferDTypes, bound, prefix: "r" });
  const scoreLines = renderExprs([graph.scoreMod], { bufferDTypes, bound, prefix: "s" });
  const scoreValue = bound.get(graph.scoreMod)!;
  const maskLines = renderExprs([graph.maskMod], { bufferDTypes, bound, prefix: "k" });
  const maskRowValue = bound.get(graph.maskMod)!;

  const indent = (lines: string[], depth: number): string => lines.map((l) => `${"  ".repeat(depth)}${l}\n`).join("");
  const unused = (names: string[], depth: number): string => indent(names.map((n) => `(void)${n};`), depth);
  return [
    readFileSync(join(templatesDir(), "mod_helpers.h"), "utf8").replace("#pragma once\n", ""),
    `#define MD_SCORE_MOD_IDENTITY ${scoreIdentity ? 1 : 0}`,
    `#define MD_MASK_MOD_TRUE ${maskTrue ? 1 : 0}`,
    "",
    "// mask_mod at one position.",
    "static inline bool md_mask_mod(int64_t b, int64_t h, int64_t q_idx, int64_t kv_idx, md_args* a) {",
    unused([...params, "kv_idx", "a"], 1) + indent(maskBody, 1) + `  return ${maskValue};`,
    "}",
    "",
    "// score_mod over s[0..n), the scaled scores of row (b, h, q_idx) at kv positions kv0.., then, if MASK, mask_mod.",
    "template <bool MASK>",
    "static inline void md_mods_row(float* s, int64_t n, int64_t b, int64_t h, int64_t q_idx, int64_t kv0, md_args* a) {",
    unused([...params, "a"], 1) + indent(rowInvariant, 1) + "  for (int64_t j = 0; j < n; ++j) {",
    "    const int64_t kv_idx = kv0 + j;",
    "    const float score = s[j];",
    unused(["kv_idx", "score"], 2) + indent(scoreLines, 2) + `    float result = ${scoreValue};`,
    "    if (MASK) {",
    indent(maskLines, 3) + `      if (!${maskRowValue}) result = -INFINITY;`,
    "    }",
    "    s[j] = result;",
    "  }",
    "}",
    "",
  ].join("\n");
}
