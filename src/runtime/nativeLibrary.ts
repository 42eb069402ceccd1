/**
 * The koffi binding of a compiled kernel's C ABI (docs/abi.md): the `md_args` struct and the entry points.
 * Typed arrays are handed to koffi as they are, so it passes their memory by pointer instead of copying.
 */
import { resolve } from "node:path";
import koffi, { type KoffiFunc, type LibraryHandle, type TypeObject } from "koffi";
import { LibraryError } from "./errors.js";
import type { TensorData } from "./tensor.js";

/** The `MD_ABI_VERSION` this runtime speaks; a library reporting another version is refused. */
export const MD_ABI_VERSION = 3;

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
  /** Unused: `NativeLibrary.call` writes the `md_mods` table of the library it calls, whatever this holds. */
  mods: unknown;
  /** Strides in elements of [batch, head, position] (a pool: [page, head, slot]); the last dim is contiguous. */
  q_strides: number[];
  k_strides: number[];
  v_strides: number[];
  out_strides: number[];
  lse_strides: number[];
  /** Ragged batches: int32 [batch + 1] row starts of each sequence, or null. */
  q_start_loc: Int32Array | null;
  kv_start_loc: Int32Array | null;
  /** Quantized key/value: the float32 scales and their strides over [batch, kv head, position] (a pool: page, head, slot). */
  k_scale: Float32Array | null;
  v_scale: Float32Array | null;
  k_scale_strides: number[];
  v_scale_strides: number[];
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
  mods: "const void *",
  q_strides: "int64_t[3]",
  k_strides: "int64_t[3]",
  v_strides: "int64_t[3]",
  out_strides: "int64_t[3]",
  lse_strides: "int64_t[3]",
  q_start_loc: "const int32_t *",
  kv_start_loc: "const int32_t *",
  k_scale: "const float *",
  v_scale: "const float *",
  k_scale_strides: "int64_t[3]",
  v_scale_strides: "int64_t[3]",
} as const satisfies Record<keyof NativeArgs, string>;

// Anonymous, so that it cannot clash with another `md_args` registered in koffi's global type namespace.
const MD_ARGS = koffi.struct(MD_ARGS_FIELDS);
const MD_ARGS_SIZE = koffi.sizeof(MD_ARGS);
const VOID_POINTER = koffi.pointer("void");

/** Byte offsets of the `md_args` fields, as koffi lays the struct out (the layout test holds them against the C compiler's). */
const AT = Object.fromEntries(Object.keys(MD_ARGS_FIELDS).map((name) => [name, koffi.offsetof(MD_ARGS, name)])) as Record<keyof NativeArgs, number>;

/**
 * Writes `args` into `bytes` as the C struct `md_args`; `mods` is the address of the mod library's table. koffi could
 * encode the struct from the object itself, but it looks every field up by name on every call, which took 5-6 µs of
 * a call whose kernel takes 3; this writes each field at its offset directly. Pointers are the addresses of the
 * caller's typed arrays (their byte offsets included), valid while those arrays live: the caller keeps `args`, which
 * holds them, until the call has returned. Returns the pointer table of `buffers`, which must be kept alive as long.
 */
export function encodeArgs(args: NativeArgs, mods: bigint, bytes: ArrayBuffer): BigInt64Array | null {
  const i32 = new Int32Array(bytes, 0, MD_ARGS_SIZE / 4);
  const i64 = new BigInt64Array(bytes, 0, MD_ARGS_SIZE / 8);
  // The helpers take a field's byte offset (AT.name), not its name: AT[name] with a different name at every call site
  // is a megamorphic keyed load in V8, about 0.7 µs of a call.
  // Two's complement halves of an integer below 2^53 in magnitude (little-endian, as every target of koffi is).
  const int = (offset: number, x: number, k = 0) => {
    const at = offset / 4 + 2 * k;
    i32[at] = x >>> 0;
    i32[at + 1] = Math.floor(x / 4294967296);
  };
  const triple = (offset: number, v: readonly number[]) => {
    int(offset, v[0]!, 0);
    int(offset, v[1]!, 1);
    int(offset, v[2]!, 2);
  };
  const pointer = (offset: number, data: TensorData | BigInt64Array | null) => {
    i64[offset / 8] = data ? koffi.address(data) : 0n;
  };
  let table: BigInt64Array | null = null;
  if (args.buffers && args.buffers.length > 0) {
    table = new BigInt64Array(args.buffers.length);
    for (let k = 0; k < args.buffers.length; k++) table[k] = koffi.address(args.buffers[k]);
  }
  int(AT.batch, args.batch);
  int(AT.q_len, args.q_len);
  int(AT.kv_len, args.kv_len);
  pointer(AT.query, args.query);
  pointer(AT.key, args.key);
  pointer(AT.value, args.value);
  pointer(AT.out, args.out);
  pointer(AT.lse, args.lse);
  pointer(AT.page_table, args.page_table);
  pointer(AT.seq_lens, args.seq_lens);
  int(AT.max_pages_per_seq, args.max_pages_per_seq);
  int(AT.num_pages, args.num_pages);
  pointer(AT.kv_num_blocks, args.kv_num_blocks);
  pointer(AT.kv_indices, args.kv_indices);
  pointer(AT.full_kv_num_blocks, args.full_kv_num_blocks);
  pointer(AT.full_kv_indices, args.full_kv_indices);
  int(AT.mask_batch, args.mask_batch);
  int(AT.mask_heads, args.mask_heads);
  int(AT.q_blocks, args.q_blocks);
  int(AT.kv_blocks, args.kv_blocks);
  pointer(AT.buffers, table);
  pointer(AT.buffer_dims, args.buffer_dims);
  int(AT.partition_size, args.partition_size);
  i32[AT.num_threads / 4] = args.num_threads;
  i32[AT.status / 4] = args.status;
  i64[AT.mods / 8] = mods;
  triple(AT.q_strides, args.q_strides);
  triple(AT.k_strides, args.k_strides);
  triple(AT.v_strides, args.v_strides);
  triple(AT.out_strides, args.out_strides);
  triple(AT.lse_strides, args.lse_strides);
  pointer(AT.q_start_loc, args.q_start_loc);
  pointer(AT.kv_start_loc, args.kv_start_loc);
  pointer(AT.k_scale, args.k_scale);
  pointer(AT.v_scale, args.v_scale);
  triple(AT.k_scale_strides, args.k_scale_strides);
  triple(AT.v_scale_strides, args.v_scale_strides);
  return table;
}

/** The `md_args` that `bytes` holds, as koffi decodes the struct (pointers as koffi's pointer objects): for tests. */
export function decodeArgs(bytes: ArrayBuffer): Record<keyof NativeArgs, unknown> {
  return koffi.decode(bytes, MD_ARGS) as Record<keyof NativeArgs, unknown>;
}

/** Byte offset of every `md_args` field and the struct's size, as koffi lays it out (for layout checks). */
export function mdArgsLayout(): { size: number; offsets: Record<keyof NativeArgs, number> } {
  const offsets = {} as Record<keyof NativeArgs, number>;
  for (const name of Object.keys(MD_ARGS_FIELDS) as (keyof NativeArgs)[]) {
    offsets[name] = koffi.offsetof(MD_ARGS, name);
  }
  return { size: koffi.sizeof(MD_ARGS), offsets };
}

/** The entry points an engine exports (a self-contained kernel exports them too). */
const ENGINE_SYMBOLS = {
  flashAttention: "md_flash_attention",
  flashDecoding: "md_flash_decoding",
  naive: "md_naive_attention",
} as const;

/** The entry points a mod library exports besides `md_mods_table` (a self-contained kernel exports them too). */
const MODS_SYMBOLS = {
  buildBlockMask: "md_build_block_mask",
} as const;

export type EntryPoint = keyof typeof ENGINE_SYMBOLS | keyof typeof MODS_SYMBOLS;

/** Field order and C types of `md_mods` (kernel.h); read once when a mod library is opened, to check its engine. */
export const MD_MODS_FIELDS = {
  abi_version: "int32_t",
  num_buffers: "int32_t",
  scale: "float",
  flags: "int32_t",
  score_row: "void *",
  score_mask_row: "void *",
  mask_row: "void *",
  engine_hash: "const char *",
} as const;
const MD_MODS = koffi.struct(MD_MODS_FIELDS);

type BoundFunction = ReturnType<LibraryHandle["func"]>;

/** A loaded kernel library. Every entry returns `md_args.status` (0 = ok). */
export interface NativeLibrary {
  /** The library's path; for a split build, the mod library's (the engine is `enginePath`). */
  readonly path: string;
  readonly enginePath: string;
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

// dlopen already shares one handle per path; this also shares the bound functions and the checks.
const openLibraries = new Map<string, NativeLibrary>();
const handles = new Map<string, LibraryHandle>();

/**
 * Loads a self-contained kernel library (one file exporting every entry point, as `--emit cpp` writes it) once per
 * path, and checks that it speaks `MD_ABI_VERSION`.
 */
export function openLibrary(soPath: string): NativeLibrary {
  const path = resolve(soPath);
  return opened(path, () => {
    const handle = loadChecked(path);
    return libraryOf(path, path, bindEntries(handle, path, ENGINE_SYMBOLS), bindEntries(handle, path, MODS_SYMBOLS), modsTable(handle, path, ""));
  });
}

/**
 * Loads the two libraries of a split build: the engine of a configuration and a mod library built for it, which
 * must report `engineHash` (the sha256 of the engine's source). A mod library built for another engine is refused
 * with a `ModsMismatchError` before any kernel runs, so the caller can rebuild it.
 */
export function openSplitLibrary(enginePath: string, modsPath: string, engineHash: string): NativeLibrary {
  const engine = resolve(enginePath);
  const mods = resolve(modsPath);
  return opened(`${engine}\0${mods}`, () => {
    const engineHandle = loadChecked(engine);
    const modsHandle = loadChecked(mods);
    const table = modsTable(modsHandle, mods, engineHash);
    return libraryOf(mods, engine, bindEntries(engineHandle, engine, ENGINE_SYMBOLS), bindEntries(modsHandle, mods, MODS_SYMBOLS), table);
  });
}

/** A mod library whose `md_mods` table belongs to another engine (or ABI) than the one it was paired with. */
export class ModsMismatchError extends LibraryError {
  constructor(path: string, message: string) {
    super(path, message);
    this.name = "ModsMismatchError";
  }
}

function opened(id: string, open: () => NativeLibrary): NativeLibrary {
  const known = openLibraries.get(id);
  if (known) return known;
  const library = open();
  openLibraries.set(id, library);
  return library;
}

/** koffi's handle of a library (one per path), after checking its ABI version. */
function loadChecked(path: string): LibraryHandle {
  const known = handles.get(path);
  if (known) return known;
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
  } catch (error) {
    handle.unload();
    throw error;
  }
  handles.set(path, handle);
  return handle;
}

/** An entry point, bound to take the bytes of an encoded `md_args` (see encodeArgs). */
type EntryFunction = KoffiFunc<(args: ArrayBuffer) => number>;

function bindEntries<E extends EntryPoint>(handle: LibraryHandle, path: string, symbols: Readonly<Record<E, string>>): Record<E, EntryFunction> {
  const entries = {} as Record<E, EntryFunction>;
  for (const [entry, symbol] of Object.entries(symbols) as [E, string][]) {
    entries[entry] = bindSymbol(handle, path, symbol, "int32_t", [VOID_POINTER]) as EntryFunction;
  }
  return entries;
}

/**
 * The library's `md_mods` table as an opaque pointer for `md_args.mods`, after checking its ABI version and the
 * engine it was built for (`""`: a self-contained kernel, whose table names none).
 */
function modsTable(handle: LibraryHandle, path: string, engineHash: string): unknown {
  const pointer = bindSymbol(handle, path, "md_mods_table", "const void *", [])() as unknown;
  if (pointer === null) throw new LibraryError(path, `kernel library ${path} returned no md_mods table`);
  const table = koffi.decode(pointer, MD_MODS) as { abi_version: number; engine_hash: string | null };
  if (table.abi_version !== MD_ABI_VERSION) {
    throw new ModsMismatchError(path, `mod library ${path} has an md_mods table of ABI version ${table.abi_version}, this runtime speaks ${MD_ABI_VERSION}`);
  }
  const builtFor = table.engine_hash ?? "";
  if (builtFor !== engineHash) {
    throw new ModsMismatchError(
      path,
      `mod library ${path} was built for engine ${builtFor.slice(0, 12) || "(none: self-contained)"}, not for engine ${engineHash.slice(0, 12) || "(none: self-contained)"}`,
    );
  }
  return pointer;
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

function libraryOf(
  path: string,
  enginePath: string,
  engine: Record<keyof typeof ENGINE_SYMBOLS, EntryFunction>,
  mods: Record<keyof typeof MODS_SYMBOLS, EntryFunction>,
  table: unknown,
): NativeLibrary {
  const entries: Record<EntryPoint, EntryFunction> = { ...engine, ...mods };
  const modsAddress = koffi.address(table);
  // A synchronous call finishes before the next can start, so they all encode into one buffer.
  const syncBytes = new ArrayBuffer(MD_ARGS_SIZE);
  const call = (entry: EntryPoint, args: NativeArgs): number => {
    const pointers = encodeArgs(args, modsAddress, syncBytes);
    const status = entries[entry](syncBytes);
    keepAlive(args, pointers);
    return status;
  };
  // koffi holds no reference to an asynchronous call's arguments: the struct's own bytes are held by the callback
  // with the arrays they point to, or a collection while the call waits for a worker thread frees them.
  const callAsync = (entry: EntryPoint, args: NativeArgs): Promise<number> =>
    new Promise((resolvePromise, reject) => {
      const bytes = new ArrayBuffer(MD_ARGS_SIZE);
      const pointers = encodeArgs(args, modsAddress, bytes);
      entries[entry].async(bytes, (error: unknown, status: number) => {
        keepAlive(bytes, args, pointers);
        if (error) reject(error);
        else resolvePromise(status);
      });
    });
  return {
    path,
    enginePath,
    abiVersion: MD_ABI_VERSION,
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

/** Holds the arrays a call's encoded pointers point into until the call has returned (the closures that call it do). */
function keepAlive(..._arrays: unknown[]): void {}

function messageOf(cause: unknown): string {
  return cause instanceof Error ? cause.message : String(cause);
}
