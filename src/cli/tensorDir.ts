import { existsSync, mkdirSync } from "node:fs";
import { join } from "node:path";
import { fileDims, fileOrder, isPacked, layoutOf, logicalView } from "../io/fileLayout.js";
import type { GeneratedInputs } from "../io/generateInputs.js";
import { readNpyAs, writeNpy } from "../io/npy.js";
import type { AttentionGraph } from "../ir/graph.js";
import { type Tensor, tensor } from "../runtime/tensor.js";
import { isPlain } from "../runtime/view.js";
import { UserError } from "./errors.js";

/**
 * Reads `query.npy`, `key.npy`, `value.npy`, one file per buffer, `pageTable.npy`/`seqLens.npy` when paged, and, for a
 * ragged graph, `qStartLoc.npy` (and `kvStartLoc.npy` unless paged). Each file is in its tensor's layout (fileDims);
 * a "bshd" file becomes a permuted view of its own data, so nothing is copied.
 */
export function readInputsDir(graph: AttentionGraph, dir: string): GeneratedInputs {
  const read = (name: string, dtype: Tensor["dtype"]): Tensor => {
    const path = join(dir, `${name}.npy`);
    if (!existsSync(path)) throw new UserError(`--inputs: ${name}.npy is missing in ${dir}`, `write it with numpy.save, or omit --inputs to use seeded random inputs`);
    return readNpyAs(path, dtype);
  };
  const optional = (name: string, dtype: Tensor["dtype"]): Tensor | undefined => (existsSync(join(dir, `${name}.npy`)) ? read(name, dtype) : undefined);
  /** Reads q, k or v and checks its file's rank, heads and head dim, naming them in the file's order. */
  const readQkv = (field: "query" | "key" | "value"): Tensor => {
    const file = read(field, graph[field].dtype);
    const dims = fileDims(graph, field);
    const fixed = dims.map((d) => /=(\d+)$/.exec(d)?.[1]);
    if (file.shape.length !== dims.length || fixed.some((n, i) => n !== undefined && file.shape[i] !== Number(n))) {
      const why = isPacked(graph, field) ? "packed token-major (raggedQuery)" : `layout ${layoutOf(graph, field)}${graph.kvCache && field !== "query" ? ", a page pool" : ""}`;
      throw new UserError(`--inputs: ${field}.npy has shape [${file.shape.join(", ")}], expected [${dims.join(", ")}] (${why})`);
    }
    return isPacked(graph, field) ? file : logicalView(file, layoutOf(graph, field));
  };
  const buffers: Record<string, Tensor> = {};
  for (const b of graph.buffers) buffers[b.name] = read(b.name, b.dtype);
  const packedKv = graph.raggedQuery && !graph.kvCache;
  return {
    query: readQkv("query"),
    key: readQkv("key"),
    value: readQkv("value"),
    buffers,
    pageTable: graph.kvCache ? read("pageTable", "int32") : undefined,
    seqLens: graph.kvCache ? read("seqLens", "int32") : undefined,
    ...(graph.raggedQuery ? { qStartLoc: read("qStartLoc", "int32") } : {}),
    ...(packedKv ? { kvStartLoc: read("kvStartLoc", "int32") } : {}),
    // Quantized key/value: their float32 scales, when given.
    ...optionalScales(optional),
  };
}

function optionalScales(optional: (name: string, dtype: Tensor["dtype"]) => Tensor | undefined): { keyScale?: Tensor; valueScale?: Tensor } {
  const keyScale = optional("keyScale", "float32");
  const valueScale = optional("valueScale", "float32");
  return { ...(keyScale ? { keyScale } : {}), ...(valueScale ? { valueScale } : {}) };
}

/**
 * The output the kernel writes for `inputs`, allocated in the order of `out.npy` (the query's layout: [B, Lq, Hq, Dv]
 * for "bshd", [B, Hq, Lq, Dv] for "bhsd", [totalQ, Hq, Dv] when ragged): `file` is written as is, `view` (its logical
 * [B, Hq, Lq, Dv], or the packed shape) is what the kernel is given as its caller-owned `out`.
 */
export function outputFor(graph: AttentionGraph, inputs: Pick<GeneratedInputs, "query">): { file: Tensor; view: Tensor } {
  const dv = graph.value.shape[3];
  const q = inputs.query.shape;
  if (isPacked(graph, "out")) {
    const file = tensor(graph.query.dtype, [q[0], q[1], dv]);
    return { file, view: file };
  }
  const layout = layoutOf(graph, "out");
  const [batch, heads, len] = q;
  const file = tensor(graph.query.dtype, layout === "bshd" ? [batch, len, heads, dv] : [batch, heads, len, dv]);
  return { file, view: logicalView(file, layout) };
}

/** Writes each tensor as `<name>.npy` (bf16 as float32, since numpy has no bf16). Tensors must be plain (file order). */
export function writeTensorsDir(dir: string, tensors: Record<string, Tensor | undefined>): string[] {
  mkdirSync(dir, { recursive: true });
  const written: string[] = [];
  for (const [name, t] of Object.entries(tensors)) {
    if (!t) continue;
    // A view would be written in its data's order under its logical shape: callers pass file-order tensors.
    if (!isPlain(t)) throw new Error(`writeTensorsDir: ${name} is a view; write fileOrder(${name}) instead`);
    writeNpy(join(dir, `${name}.npy`), t);
    written.push(`${name}.npy`);
  }
  return written;
}

/** The inputs as their files hold them: q/k/v in their layouts (no copy for generated ones), everything else as is. */
export function inputsAsRecord(graph: AttentionGraph, inputs: GeneratedInputs): Record<string, Tensor | undefined> {
  const stored = (field: "query" | "key" | "value") => fileOrder(inputs[field], isPacked(graph, field) ? "bhsd" : layoutOf(graph, field));
  return {
    query: stored("query"),
    key: stored("key"),
    value: stored("value"),
    ...inputs.buffers,
    pageTable: inputs.pageTable,
    seqLens: inputs.seqLens,
    qStartLoc: inputs.qStartLoc,
    kvStartLoc: inputs.kvStartLoc,
    keyScale: inputs.keyScale,
    valueScale: inputs.valueScale,
  };
}
