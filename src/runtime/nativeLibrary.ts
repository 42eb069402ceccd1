/**
 * The koffi binding of a compiled kernel's C ABI (docs/abi.md): the `md_args` struct and the entry points.
 * Typed arrays are handed to koffi as they are, so it passes their memory by pointer instead of copying.
 */
import { resolve } from "node:path";
import koffi, { type KoffiFunc, type LibraryHandle, type TypeObject } from "koffi";
import { LibraryError } from "./errors.js";
import type { TensorData } from "./tensor.js";

/** The `MD_ABI_VERSION` this runtime speaks; a library reporting another version is refused. */
export const MD_ABI_VERSION = 1;

/** `md_args` with the C field names; pointers are typed arrays (or null), int64 fields are numbers. */
export interface NativeArgs {
  batch: number;
  q_len: number;
  kv_len: number;
  query: TensorData;
  key: TensorData;
  value: TensorData;
  out: TensorData | null;
  lse: Float32Array | null;
  page_table: Int32Array | null;
  seq_lens: Int32Array | null;
  max_pages_per_seq: number;
  num_pages: number;
  kv_num_blocks: Int32Array | null;
  kv_indices: Int32Array | null;
  full_kv_num_blocks: Int32Array | null;
  full_kv_indices: Int32Array | null;
  mask_batch: number;
  mask_heads: number;
  q_blocks: number;
  kv_blocks: number;
  /** One typed array per captured buffer, in declaration order; koffi builds the pointer array per call. */
  buffers: TensorData[] | null;
  /** [numBuffers][2], unused trailing dims 1. */
  buffer_dims: BigInt64Array | null;
  partition_size: number;
  num_threads: number;
  status: number;
}

/** Field order and C types of `md_args`; the order is the ABI, so it must never be sorted or regrouped. */
export const MD_ARGS_FIELDS = {
  batch: "int64_t",
  q_len: "int64_t",
  kv_len: "int64_t",
  query: "const void *",
  key: "const void *",
  value: "const void *",
  out: "void *",
  lse: "float *",
  page_table: "const int32_t *",
  seq_lens: "const int32_t *",
  max_pages_per_seq: "int64_t",
  num_pages: "int64_t",
  kv_num_blocks: "int32_t *",
  kv_indices: "int32_t *",
  full_kv_num_blocks: "int32_t *",
  full_kv_indices: "int32_t *",
  mask_batch: "int64_t",
  mask_heads: "int64_t",
  q_blocks: "int64_t",
  kv_blocks: "int64_t",
  buffers: "const void **",
  buffer_dims: "const int64_t *",
  partition_size: "int64_t",
  num_threads: "int32_t",
  status: "int32_t",
} as const satisfies Record<keyof NativeArgs, string>;

// Anonymous, so that it cannot clash with another `md_args` registered in koffi's global type namespace.
const MD_ARGS = koffi.struct(MD_ARGS_FIELDS);
const MD_ARGS_POINTER = koffi.pointer(MD_ARGS);

/** Byte offset of every `md_args` field and the struct's size, as koffi lays it out (for layout checks). */
export function mdArgsLayout(): { size: number; offsets: Record<keyof NativeArgs, number> } {
  const offsets = {} as Record<keyof NativeArgs, number>;
  for (const name of Object.keys(MD_ARGS_FIELDS) as (keyof NativeArgs)[]) {
    offsets[name] = koffi.offsetof(MD_ARGS, name);
  }
  return { size: koffi.sizeof(MD_ARGS), offsets };
}

const ENTRY_SYMBOLS = {
  flashAttention: "md_flash_attention",
  flashDecoding: "md_flash_decoding",
  buildBlockMask: "md_build_block_mask",
  naive: "md_naive_attention",
} as const;

export type EntryPoint = keyof typeof ENTRY_SYMBOLS;

type EntryFunction = KoffiFunc<(args: NativeArgs) => number>;
type BoundFunction = ReturnType<LibraryHandle["func"]>;

/** A loaded kernel library. Every entry returns `md_args.status` (0 = ok). */
export interface NativeLibrary {
  readonly path: string;
  readonly abiVersion: number;
  call(entry: EntryPoint, args: NativeArgs): number;
  /** Runs the entry on one of koffi's worker threads, leaving the event loop free. */
  callAsync(entry: EntryPoint, args: NativeArgs): Promise<number>;
  flashAttention(args: NativeArgs): number;
  flashDecoding(args: NativeArgs): number;
  buildBlockMask(args: NativeArgs): number;
  naive(args: NativeArgs): number;
  flashAttentionAsync(args: NativeArgs): Promise<number>;
  flashDecodingAsync(args: NativeArgs): Promise<number>;
  buildBlockMaskAsync(args: NativeArgs): Promise<number>;
  naiveAsync(args: NativeArgs): Promise<number>;
}

// dlopen already shares one handle per path; this also shares the bound functions and the version check.
const openLibraries = new Map<string, NativeLibrary>();

/** Loads the kernel library at `soPath` (once per path) and checks that it speaks `MD_ABI_VERSION`. */
export function openLibrary(soPath: string): NativeLibrary {
  const path = resolve(soPath);
  const known = openLibraries.get(path);
  if (known) return known;
  const library = bindLibrary(path);
  openLibraries.set(path, library);
  return library;
}

function bindLibrary(path: string): NativeLibrary {
  let handle: LibraryHandle;
  try {
    handle = koffi.load(path);
  } catch (cause) {
    throw new LibraryError(path, `cannot load kernel library ${path}: ${messageOf(cause)}`);
  }
  try {
    const abiVersion = bindSymbol(handle, path, "md_abi_version", "int32_t", [])() as number;
    if (abiVersion !== MD_ABI_VERSION) {
      throw new LibraryError(
        path,
        `kernel library ${path} speaks ABI version ${abiVersion}, this runtime speaks ${MD_ABI_VERSION}; recompile it`,
      );
    }
    const entries = {} as Record<EntryPoint, EntryFunction>;
    for (const [entry, symbol] of Object.entries(ENTRY_SYMBOLS) as [EntryPoint, string][]) {
      entries[entry] = bindSymbol(handle, path, symbol, "int32_t", [MD_ARGS_POINTER]) as EntryFunction;
    }
    return libraryOf(path, abiVersion, entries);
  } catch (error) {
    handle.unload();
    throw error;
  }
}

function bindSymbol(
  handle: LibraryHandle,
  path: string,
  symbol: string,
  result: string,
  params: TypeObject[],
): BoundFunction {
  try {
    return handle.func(symbol, result, params);
  } catch (cause) {
    throw new LibraryError(path, `kernel library ${path} does not export ${symbol}: ${messageOf(cause)}`);
  }
}

function libraryOf(path: string, abiVersion: number, entries: Record<EntryPoint, EntryFunction>): NativeLibrary {
  const call = (entry: EntryPoint, args: NativeArgs): number => entries[entry](args);
  const callAsync = (entry: EntryPoint, args: NativeArgs): Promise<number> =>
    new Promise((resolvePromise, reject) => {
      entries[entry].async(args, (error: unknown, status: number) => {
        if (error) reject(error);
        else resolvePromise(status);
      });
    });
  return {
    path,
    abiVersion,
    call,
    callAsync,
    flashAttention: (args) => call("flashAttention", args),
    flashDecoding: (args) => call("flashDecoding", args),
    buildBlockMask: (args) => call("buildBlockMask", args),
    naive: (args) => call("naive", args),
    flashAttentionAsync: (args) => callAsync("flashAttention", args),
    flashDecodingAsync: (args) => callAsync("flashDecoding", args),
    buildBlockMaskAsync: (args) => callAsync("buildBlockMask", args),
    naiveAsync: (args) => callAsync("naive", args),
  };
}

function messageOf(cause: unknown): string {
  return cause instanceof Error ? cause.message : String(cause);
}
