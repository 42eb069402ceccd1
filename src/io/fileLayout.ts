/**
 * How the tensors of a spec sit in their `.npy` files (DESIGN "Tensor views"): a "bshd" tensor's file holds
 * [B, L, H, D] (a pool [numPages, pageSize, Hkv, D]) while the kernel, the reference and the spec speak of the logical
 * [B, H, L, D]. A file is read as a permuted view of its own data, never copied; the kernel reads it through strides.
 */
import type { AttentionGraph, TensorLayout } from "../ir/graph.js";
import type { Tensor } from "../runtime/tensor.js";
import { contiguous, permute } from "../runtime/view.js";

/** Swapping dims 1 and 2 maps [B, H, L, D] to [B, L, H, D] and back: the permutation is its own inverse. */
const SWAP_HL = [0, 2, 1, 3] as const;

/** The logical [B, H, L, D] view of a rank-4 tensor stored in `layout` (file order): no copy. */
export function logicalView(file: Tensor, layout: TensorLayout): Tensor {
  return layout === "bshd" ? permute(file, SWAP_HL) : file;
}

/**
 * The tensor in its file's order, plain (contiguous, offset 0), as `.npy` files hold it: no copy when the view already
 * stores its elements that way (a view made by `logicalView` or `storedAs`), a copy otherwise.
 */
export function fileOrder(t: Tensor, layout: TensorLayout): Tensor {
  return contiguous(layout === "bshd" && t.shape.length === 4 ? permute(t, SWAP_HL) : t);
}

/** A logical [B, H, L, D] tensor's values stored in `layout`: the logical view of a new file-order tensor (a copy for "bshd"). */
export function storedAs(t: Tensor, layout: TensorLayout): Tensor {
  return layout === "bshd" ? logicalView(fileOrder(t, layout), layout) : t;
}

/**
 * Whether `field` is packed token-major in calls of `graph`: a ragged query ([totalQ, Hq, D]) and, without a page
 * pool, the key/value beside it ([totalKv, Hkv, D]).
 */
export function isPacked(graph: AttentionGraph, field: "query" | "key" | "value" | "out"): boolean {
  if (!graph.raggedQuery) return false;
  return field === "query" || field === "out" || graph.kvCache === undefined;
}

/** The layout of `field`'s file; `out` follows the query. Hand-built graphs without a layout are "bhsd". */
export function layoutOf(graph: AttentionGraph, field: "query" | "key" | "value" | "out"): TensorLayout {
  return graph[field === "out" ? "query" : field].layout === "bshd" ? "bshd" : "bhsd";
}

/** The dims of `field`'s file, by name, in file order (what the CLI expects `<field>.npy` to hold). */
export function fileDims(graph: AttentionGraph, field: "query" | "key" | "value" | "out"): string[] {
  const heads = field === "query" || field === "out" ? `Hq=${graph.query.shape[1]}` : `Hkv=${graph.key.shape[1]}`;
  const dim = field === "value" || field === "out" ? `Dv=${graph.value.shape[3]}` : `D=${graph.query.shape[3]}`;
  if (isPacked(graph, field)) return [field === "query" || field === "out" ? "totalQ" : "totalKv", heads, dim];
  const bshd = layoutOf(graph, field) === "bshd";
  if (graph.kvCache && (field === "key" || field === "value")) {
    const pageSize = `pageSize=${graph.kvCache.pageSize}`;
    return bshd ? ["numPages", pageSize, heads, dim] : ["numPages", heads, pageSize, dim];
  }
  return bshd ? ["B", "L", heads, dim] : ["B", heads, "L", dim];
}
