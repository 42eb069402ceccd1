import { existsSync, mkdirSync } from "node:fs";
import { join } from "node:path";
import type { GeneratedInputs } from "../io/generateInputs.js";
import { readNpyAs, writeNpy } from "../io/npy.js";
import type { AttentionGraph } from "../ir/graph.js";
import type { Tensor } from "../runtime/tensor.js";
import { UserError } from "./errors.js";

/** Reads `query.npy`, `key.npy`, `value.npy`, one file per buffer, and `pageTable.npy`/`seqLens.npy` when paged. */
export function readInputsDir(graph: AttentionGraph, dir: string): GeneratedInputs {
  const read = (name: string, dtype: Tensor["dtype"]): Tensor => {
    const path = join(dir, `${name}.npy`);
    if (!existsSync(path)) throw new UserError(`--inputs: ${name}.npy is missing in ${dir}`, `write it with numpy.save, or omit --inputs to use seeded random inputs`);
    return readNpyAs(path, dtype);
  };
  const dtype = graph.query.dtype;
  const buffers: Record<string, Tensor> = {};
  for (const b of graph.buffers) buffers[b.name] = read(b.name, b.dtype);
  return {
    query: read("query", dtype),
    key: read("key", dtype),
    value: read("value", dtype),
    buffers,
    pageTable: graph.kvCache ? read("pageTable", "int32") : undefined,
    seqLens: graph.kvCache ? read("seqLens", "int32") : undefined,
  };
}

/** Writes each tensor as `<name>.npy` (bf16 as float32, since numpy has no bf16). */
export function writeTensorsDir(dir: string, tensors: Record<string, Tensor | undefined>): string[] {
  mkdirSync(dir, { recursive: true });
  const written: string[] = [];
  for (const [name, t] of Object.entries(tensors)) {
    if (!t) continue;
    writeNpy(join(dir, `${name}.npy`), t);
    written.push(`${name}.npy`);
  }
  return written;
}

export function inputsAsRecord(inputs: GeneratedInputs): Record<string, Tensor | undefined> {
  return { query: inputs.query, key: inputs.key, value: inputs.value, ...inputs.buffers, pageTable: inputs.pageTable, seqLens: inputs.seqLens };
}
