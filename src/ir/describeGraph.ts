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
    raggedQuery: graph.raggedQuery,
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
  const paged = graph.kvCache !== undefined;
  const ragged = graph.raggedQuery === true;
  /** The tensor's storage, as its .npy file holds it. */
  const stored = (field: "query" | "key" | "value"): string => {
    const h = field === "query" ? "Hq" : "Hkv";
    const d = field === "value" ? "Dv" : "D";
    if (ragged && (field === "query" || !paged)) return `packed: file ${field === "query" ? "[totalQ, Hq, D]" : `[totalKv, Hkv, ${d}]`}`;
    const bshd = graph[field].layout === "bshd";
    if (paged && field !== "query") {
      return bshd ? `bshd, token-major pool: file [numPages, pageSize, Hkv, ${d}]` : `bhsd, page pool: file [numPages, Hkv, pageSize, ${d}]`;
    }
    return bshd ? `bshd: file [B, L, ${h}, ${d}]` : `bhsd: file [B, ${h}, L, ${d}]`;
  };
  const broadcast = !paged && !ragged && graph.key.shape[0] === 1 && graph.query.shape[0] > 1 ? "; batch 1 broadcasts over the query's" : "";
  const lines = [
    `graph ${graph.name}`,
    `  query    ${shape(graph.query.shape)} ${graph.query.dtype} (${stored("query")})`,
    `  key      ${shape(graph.key.shape)} ${graph.key.dtype} (${stored("key")}${broadcast})`,
    `  value    ${shape(graph.value.shape)} ${graph.value.dtype} (${stored("value")}${broadcast})`,
    `  ragged   ${ragged ? `yes: query rows by qStartLoc [B + 1]${paged ? "" : ", kv rows by kvStartLoc [B + 1]"}; a call is judged by its shortest sequence` : "no"}`,
    `  heads    Hq = ${hq}, Hkv = ${hkv}${hq !== hkv ? ` (GQA, ${hq / hkv} query heads per kv head)` : ""}`,
    `  scale    ${graph.scale}`,
    `  blocks   ${graph.blockSize[0]} (q) x ${graph.blockSize[1]} (kv)`,
    `  kvCache  ${graph.kvCache ? `paged, pageSize ${graph.kvCache.pageSize}` : "none (unpaged)"}`,
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
