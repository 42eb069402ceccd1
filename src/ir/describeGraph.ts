import type { AttentionGraph } from "./graph.js";
import { printDag, printExpr } from "./printExpr.js";

/** The validated graph as plain data: what `minductor explain --json` prints. */
export function graphSummary(graph: AttentionGraph) {
  const mod = (e: AttentionGraph["scoreMod"]) => ({ expr: printExpr(e), hash: e.hash, ir: printDag(e).split("\n") });
  return {
    name: graph.name,
    query: graph.query,
    key: graph.key,
    value: graph.value,
    gqaGroup: graph.query.shape[1] / graph.key.shape[1],
    scale: graph.scale,
    blockSize: graph.blockSize,
    buffers: graph.buffers,
    kvCache: graph.kvCache ?? null,
    returnLse: graph.returnLse,
    kernelOptions: graph.kernelOptions,
    scoreMod: mod(graph.scoreMod),
    maskMod: mod(graph.maskMod),
  };
}

/** The validated graph and the simplified IR of its mods, as `minductor explain` prints it. */
export function describeGraph(graph: AttentionGraph): string {
  const shape = (s: readonly number[]) => `[${s.join(", ")}]`;
  const [, hq] = graph.query.shape;
  const hkv = graph.key.shape[1];
  const lines = [
    `graph ${graph.name}`,
    `  query    ${shape(graph.query.shape)} ${graph.query.dtype}`,
    `  key      ${shape(graph.key.shape)} ${graph.key.dtype}${graph.kvCache ? " (page pool [numPages, Hkv, pageSize, D])" : ""}`,
    `  value    ${shape(graph.value.shape)} ${graph.value.dtype}`,
    `  heads    Hq = ${hq}, Hkv = ${hkv}${hq !== hkv ? ` (GQA, ${hq / hkv} query heads per kv head)` : ""}`,
    `  scale    ${graph.scale}`,
    `  blocks   ${graph.blockSize[0]} (q) x ${graph.blockSize[1]} (kv)`,
    `  kvCache  ${graph.kvCache ? `paged, pageSize ${graph.kvCache.pageSize}` : "none (contiguous)"}`,
    `  lse      ${graph.returnLse ? "returned" : "not returned"}`,
  ];
  if (graph.buffers.length > 0) {
    lines.push(`  buffers  ${graph.buffers.map((b) => `${b.name}: ${b.dtype} ${shape(b.shape)}`).join(", ")}`);
  }
  const options = Object.entries(graph.kernelOptions);
  if (options.length > 0) lines.push(`  options  ${options.map(([k, v]) => `${k}=${v}`).join(", ")}`);
  for (const [label, e] of [["score_mod", graph.scoreMod], ["mask_mod", graph.maskMod]] as const) {
    lines.push("", `${label}  ${printExpr(e)}`, `  hash ${e.hash}`, ...printDag(e).split("\n").map((l) => `  ${l}`));
  }
  return lines.join("\n");
}
