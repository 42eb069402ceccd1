import koffi from "koffi";
import { MD_ARGS_FIELDS } from "../../../src/runtime/nativeLibrary.js";
import type { KernelConfig } from "./buildKernel.js";
import { decode, type NativeData, type Problem } from "./problem.js";
import type { BlockMaskArrays } from "./reference.js";

/** md_args as the runtime lays it out (docs/abi.md); anonymous, so no clash with other koffi users in the process. */
const MD_ARGS = koffi.struct(MD_ARGS_FIELDS);
const MD_ARGS_PTR = koffi.inout(koffi.pointer(MD_ARGS));

export type Entry = "md_flash_attention" | "md_flash_decoding" | "md_naive_attention" | "md_build_block_mask";

export interface KernelLibrary {
  abiVersion(): number;
  call(entry: Entry, args: Record<string, unknown>): number;
}

const libraries = new Map<string, KernelLibrary>();

export function openKernel(soPath: string): KernelLibrary {
  let lib = libraries.get(soPath);
  if (!lib) {
    const handle = koffi.load(soPath);
    const version = handle.func("md_abi_version", "int32_t", []);
    const entries = new Map<Entry, (a: Record<string, unknown>) => number>();
    for (const e of ["md_flash_attention", "md_flash_decoding", "md_naive_attention", "md_build_block_mask"] as const)
      entries.set(e, handle.func(e, "int32_t", [MD_ARGS_PTR]));
    lib = {
      abiVersion: () => version() as number,
      call: (entry, args) => entries.get(entry)!(args),
    };
    libraries.set(soPath, lib);
  }
  return lib;
}

/** md_args for a problem, every field set (zeros / NULL where unused). */
export function argsFor(p: Problem, extra: Record<string, unknown> = {}): Record<string, unknown> {
  return {
    batch: p.batch,
    q_len: p.qLen,
    kv_len: p.kvLen,
    query: p.query,
    key: p.key,
    value: p.value,
    out: null,
    lse: null,
    page_table: p.paged?.pageTable ?? null,
    seq_lens: p.paged?.seqLens ?? null,
    max_pages_per_seq: p.paged?.maxPagesPerSeq ?? 0,
    num_pages: p.paged?.numPages ?? 0,
    kv_num_blocks: null,
    kv_indices: null,
    full_kv_num_blocks: null,
    full_kv_indices: null,
    mask_batch: 0,
    mask_heads: 0,
    q_blocks: 0,
    kv_blocks: 0,
    buffers: p.buffers.length ? [...p.buffers] : null,
    buffer_dims: p.buffers.length ? p.bufferDims : null,
    partition_size: 0,
    num_threads: 0,
    status: 0,
    ...extra,
  };
}

export function maskFields(m: BlockMaskArrays): Record<string, unknown> {
  return {
    kv_num_blocks: m.kvNumBlocks,
    kv_indices: m.kvIndices,
    full_kv_num_blocks: m.fullKvNumBlocks,
    full_kv_indices: m.fullKvIndices,
    mask_batch: m.maskBatch,
    mask_heads: m.maskHeads,
    q_blocks: m.qBlocks,
    kv_blocks: m.kvBlocks,
  };
}

export interface AttentionResult {
  status: number;
  out: Float64Array;
  lse: Float32Array;
}

/** Run an attention entry point; outputs start as NaN so anything the kernel fails to write shows. */
export function runAttention(
  lib: KernelLibrary,
  entry: Exclude<Entry, "md_build_block_mask">,
  c: KernelConfig,
  p: Problem,
  o: { mask?: BlockMaskArrays; numThreads?: number } = {},
): AttentionResult {
  const n = p.batch * c.hq * p.qLen;
  const out: NativeData = c.dtype === "float32" ? new Float32Array(n * c.vDim).fill(NaN) : new Uint16Array(n * c.vDim).fill(0x7fff);
  const lse = new Float32Array(n).fill(NaN);
  const args = argsFor(p, { out, lse, num_threads: o.numThreads ?? 0, ...(o.mask ? maskFields(o.mask) : {}) });
  const status = lib.call(entry, args);
  return { status, out: decode(out, c.dtype), lse };
}
