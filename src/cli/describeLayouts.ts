import { isPacked, layoutOf } from "../io/fileLayout.js";
import type { GeneratedInputs } from "../io/generateInputs.js";
import type { AttentionGraph } from "../ir/graph.js";
import { toFloat64 } from "../runtime/tensor.js";

type Field = "query" | "key" | "value" | "out";

export interface LayoutReport {
  /** How each tensor's .npy file is stored: "bhsd", "bshd" or "packed" (ragged, token-major). */
  layout: Record<Field, "bhsd" | "bshd" | "packed">;
  /** Ragged calls: the number of sequences, their query rows and their key/value lengths. */
  sequences?: { count: number; queryRows: number[]; kvLengths: number[] | null };
}

/** The layouts of a call's files and, when ragged, its sequences' lengths (for `run`'s report). */
export function describeLayouts(graph: AttentionGraph, inputs: GeneratedInputs): LayoutReport {
  const of = (field: Field): LayoutReport["layout"][Field] => (isPacked(graph, field) ? "packed" : layoutOf(graph, field));
  const layout = { query: of("query"), key: of("key"), value: of("value"), out: of("out") };
  if (!inputs.qStartLoc) return { layout };
  const diffs = (t: GeneratedInputs["qStartLoc"]) => {
    const loc = toFloat64(t!);
    return Array.from({ length: loc.length - 1 }, (_, b) => loc[b + 1] - loc[b]);
  };
  const kvLengths = inputs.seqLens ? Array.from(toFloat64(inputs.seqLens)) : inputs.kvStartLoc ? diffs(inputs.kvStartLoc) : null;
  const queryRows = diffs(inputs.qStartLoc);
  return { layout, sequences: { count: queryRows.length, queryRows, kvLengths } };
}

/** The text lines of a LayoutReport held in a run report; none when every file is plain bhsd. */
export function layoutLines(r: Record<string, unknown>): string[] {
  const { layout, sequences } = r as unknown as LayoutReport;
  const lines: string[] = [];
  if (Object.values(layout).some((l) => l !== "bhsd")) {
    lines.push(`  files    ${(Object.entries(layout) as Array<[Field, string]>).map(([f, l]) => `${f === "out" ? "out.npy" : f} ${l}`).join(", ")}`);
  }
  if (sequences) {
    const list = (xs: number[]) => `[${xs.slice(0, 8).join(", ")}${xs.length > 8 ? ", ..." : ""}]`;
    lines.push(`  ragged   ${sequences.count} sequences, query rows ${list(sequences.queryRows)}${sequences.kvLengths ? `, kv lengths ${list(sequences.kvLengths)}` : ""}`);
  }
  return lines;
}
