import koffi from "koffi";
import { MD_ARGS_FIELDS, MD_MODS_FIELDS } from "../../../src/runtime/nativeLibrary.js";
import type { BuiltKernel, KernelConfig } from "./buildKernel.js";
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
const ENGINE_ENTRIES = ["md_flash_attention", "md_flash_decoding", "md_naive_attention"] as const;

/**
 * Loads a built kernel. A split build calls the engine's entry points with `mods` = the mod library's
 * `md_mods_table()` (after checking that the table names this engine), as the runtime does; a self-contained one
 * ignores `mods`.
 */
export function openKernel(built: BuiltKernel): KernelLibrary {
  const id = "selfContained" in built ? built.selfContained : `${built.engine}\0${built.mods}`;
  let lib = libraries.get(id);
  if (!lib) {
    const engine = koffi.load("selfContained" in built ? built.selfContained : built.engine);
    const mods = "selfContained" in built ? engine : koffi.load(built.mods);
    const version = engine.func("md_abi_version", "int32_t", []);
    const table = mods.func("md_mods_table", "const void *", [])() as unknown;
    const engineHash = (koffi.decode(table, MD_MODS) as { engine_hash: string }).engine_hash;
    if (engineHash !== ("selfContained" in built ? "" : built.engineHash)) throw new Error(`mod library built for engine ${engineHash}`);
    const entries = new Map<Entry, (a: Record<string, unknown>) => number>();
    for (const e of ENGINE_ENTRIES) entries.set(e, engine.func(e, "int32_t", [MD_ARGS_PTR]));
    entries.set("md_build_block_mask", mods.func("md_build_block_mask", "int32_t", [MD_ARGS_PTR]));
    lib = {
      abiVersion: () => version() as number,
      call: (entry, args) => {
        args.mods = table;
        return entries.get(entry)!(args);
      },
    };
    libraries.set(id, lib);
  }
  return lib;
}

/** `md_mods` as the runtime reads it (docs/abi.md). */
const MD_MODS = koffi.struct(MD_MODS_FIELDS);

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
    mods: null,
    ...p.strides,
    q_start_loc: null,
    kv_start_loc: null,
    k_scale: null,
    v_scale: null,
    k_scale_strides: [0, 0, 0],
    v_scale_strides: [0, 0, 0],
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
