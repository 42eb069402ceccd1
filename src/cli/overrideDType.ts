import type { AttentionGraph, TensorDType } from "../ir/graph.js";
import { UserError } from "./errors.js";

const DTYPES: readonly TensorDType[] = ["float32", "bfloat16", "float16"];

/** The graph with q/k/v in another dtype (`--dtype`): the same attention, compiled for bf16 or fp16 inputs. */
export function overrideDType(graph: AttentionGraph, dtype: string | undefined): AttentionGraph {
  if (dtype === undefined) return graph;
  if (!DTYPES.includes(dtype as TensorDType)) throw new UserError(`--dtype must be one of ${DTYPES.join(", ")}, got '${dtype}'`);
  const d = dtype as TensorDType;
  return { ...graph, query: { ...graph.query, dtype: d }, key: { ...graph.key, dtype: d }, value: { ...graph.value, dtype: d } };
}
