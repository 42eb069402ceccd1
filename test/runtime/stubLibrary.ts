/**
 * A stand-in kernel library for the runtime tests: the real ABI (`md_args` exactly as docs/abi.md lays it
 * out), entry points that echo every field they received, copy query into out, write lse = q_len, and
 * return a status the test chooses.
 */
import { execFile } from "node:child_process";
import { mkdtemp, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { promisify } from "node:util";
import koffi from "koffi";

const STUB_SOURCE = String.raw`
#include <stddef.h>
#include <stdint.h>
#include <string.h>
#include <unistd.h>

typedef struct md_args {
  int64_t batch;
  int64_t q_len;
  int64_t kv_len;
  const void* query;
  const void* key;
  const void* value;
  void* out;
  float* lse;
  const int32_t* page_table;
  const int32_t* seq_lens;
  int64_t max_pages_per_seq;
  int64_t num_pages;
  const int32_t* kv_num_blocks;
  const int32_t* kv_indices;
  const int32_t* full_kv_num_blocks;
  const int32_t* full_kv_indices;
  int64_t mask_batch, mask_heads, q_blocks, kv_blocks;
  const void* const* buffers;
  const int64_t* buffer_dims;
  int64_t partition_size;
  int32_t num_threads;
  int32_t status;
  const void* mods;
  int64_t q_strides[3];
  int64_t k_strides[3];
  int64_t v_strides[3];
  int64_t out_strides[3];
  int64_t lse_strides[3];
  const int32_t* q_start_loc;
  const int32_t* kv_start_loc;
  const float* k_scale;
  const float* v_scale;
  int64_t k_scale_strides[3];
  int64_t v_scale_strides[3];
} md_args;

typedef struct md_mods {
  int32_t abi_version;
  int32_t num_buffers;
  float scale;
  int32_t flags;
  void* score_row;
  void* score_mask_row;
  void* mask_row;
  const char* engine_hash;
} md_mods;

/* A self-contained library's table: built for no engine. */
static const md_mods stub_mods = { ABI, 0, 1.0f, 0, NULL, NULL, NULL, "" };

#if ELEM_BYTES == 4
typedef float elem_t;
#else
typedef uint16_t elem_t;
#endif

enum { ECHO_LEN = ECHO_SLOTS };
static int64_t echo[ECHO_LEN];
static int32_t next_status = 0;
static int32_t sleep_ms = 0;
static int32_t echo_buffers = 0;
static int32_t sleep_before_ms = 0;
static int64_t calls = 0;

template <typename T>
static int64_t sum(const T* p, int64_t n) {
  if (!p) return -1;
  double s = 0;
  for (int64_t i = 0; i < n; i++) s += (double)p[i];
  return (int64_t)s;
}

static void record(int64_t entry, md_args* a) {
  calls++;
  memset(echo, 0, sizeof echo);
  const bool paged = a->page_table != NULL;
  const int64_t kv_rows = paged ? a->num_pages * HKV * PAGE_SIZE : a->batch * HKV * a->kv_len;
  const int64_t mask_rows = a->mask_batch * a->mask_heads * a->q_blocks;
  echo[0] = entry;
  echo[1] = a->batch;
  echo[2] = a->q_len;
  echo[3] = a->kv_len;
  echo[4] = sum((const elem_t*)a->query, a->batch * HQ * a->q_len * Q_DIM);
  echo[5] = sum((const elem_t*)a->key, kv_rows * Q_DIM);
  echo[6] = sum((const elem_t*)a->value, kv_rows * V_DIM);
  echo[7] = a->out != NULL;
  echo[8] = a->lse != NULL;
  echo[9] = sum(a->page_table, a->batch * a->max_pages_per_seq);
  echo[10] = sum(a->seq_lens, a->batch);
  echo[11] = a->max_pages_per_seq;
  echo[12] = a->num_pages;
  echo[13] = sum(a->kv_num_blocks, mask_rows);
  echo[14] = sum(a->kv_indices, mask_rows * a->kv_blocks);
  echo[15] = sum(a->full_kv_num_blocks, mask_rows);
  echo[16] = sum(a->full_kv_indices, mask_rows * a->kv_blocks);
  echo[17] = a->mask_batch;
  echo[18] = a->mask_heads;
  echo[19] = a->q_blocks;
  echo[20] = a->kv_blocks;
  echo[21] = a->buffers != NULL;
  echo[22] = a->buffer_dims != NULL;
  if (echo_buffers && a->buffers && a->buffer_dims) {
    /* The layout test's graph: float32 [n], int64 [n, m], bool [n], int32 [n]. */
    for (int i = 0; i < 8; i++) echo[23 + i] = a->buffer_dims[i];
    const int64_t* d = a->buffer_dims;
    echo[31] = sum((const float*)a->buffers[0], d[0] * d[1]);
    echo[32] = sum((const int64_t*)a->buffers[1], d[2] * d[3]);
    echo[33] = sum((const uint8_t*)a->buffers[2], d[4] * d[5]);
    echo[34] = sum((const int32_t*)a->buffers[3], d[6] * d[7]);
  }
  echo[35] = a->partition_size;
  echo[36] = a->num_threads;
  echo[37] = a->status;
  echo[38] = 0x5eed;
  echo[39] = a->mods == &stub_mods;
}

static int32_t attention(int64_t entry, md_args* a) {
  if (sleep_before_ms > 0) usleep(sleep_before_ms * 1000);
  record(entry, a);
  if (sleep_ms > 0) usleep(sleep_ms * 1000);
  const int64_t rows = a->batch * HQ * a->q_len;
  if (a->out) memcpy(a->out, a->query, (size_t)(rows * (Q_DIM < V_DIM ? Q_DIM : V_DIM)) * sizeof(elem_t));
  if (a->lse) for (int64_t i = 0; i < rows; i++) a->lse[i] = (float)a->q_len;
  a->status = next_status;
  return a->status;
}

extern "C" {
int32_t md_abi_version(void) { return ABI; }
const md_mods* md_mods_table(void) { return &stub_mods; }
int32_t md_flash_attention(md_args* a) { return attention(1, a); }
int32_t md_flash_decoding(md_args* a) { return attention(2, a); }
#ifndef NO_NAIVE
int32_t md_naive_attention(md_args* a) { return attention(4, a); }
#endif

/* A causal-looking mask: row qb has full blocks [0, qb) and partial block qb (when they exist). */
int32_t md_build_block_mask(md_args* a) {
  record(3, a);
  int32_t* num = (int32_t*)a->kv_num_blocks;
  int32_t* idx = (int32_t*)a->kv_indices;
  int32_t* full_num = (int32_t*)a->full_kv_num_blocks;
  int32_t* full_idx = (int32_t*)a->full_kv_indices;
  const int64_t rows = a->mask_batch * a->mask_heads * a->q_blocks;
  for (int64_t r = 0; r < rows; r++) {
    const int64_t qb = r % a->q_blocks;
    const int64_t nfull = qb < a->kv_blocks ? qb : a->kv_blocks;
    full_num[r] = (int32_t)nfull;
    for (int64_t j = 0; j < nfull; j++) full_idx[r * a->kv_blocks + j] = (int32_t)j;
    num[r] = qb < a->kv_blocks ? 1 : 0;
    if (num[r]) idx[r * a->kv_blocks] = (int32_t)qb;
  }
  a->status = next_status;
  return a->status;
}

void stub_set(int32_t status, int32_t sleep, int32_t buffers, int32_t sleep_before) {
  next_status = status;
  sleep_ms = sleep;
  echo_buffers = buffers;
  sleep_before_ms = sleep_before;
}
int64_t stub_calls(void) { return calls; }
void stub_echo(int64_t* dst) { memcpy(dst, echo, sizeof echo); }

#define MD_FIELDS(X) X(batch) X(q_len) X(kv_len) X(query) X(key) X(value) X(out) X(lse) X(page_table) \
  X(seq_lens) X(max_pages_per_seq) X(num_pages) X(kv_num_blocks) X(kv_indices) X(full_kv_num_blocks) \
  X(full_kv_indices) X(mask_batch) X(mask_heads) X(q_blocks) X(kv_blocks) X(buffers) X(buffer_dims) \
  X(partition_size) X(num_threads) X(status) X(mods) X(q_strides) X(k_strides) X(v_strides) X(out_strides) \
  X(lse_strides) X(q_start_loc) X(kv_start_loc) X(k_scale) X(v_scale) X(k_scale_strides) X(v_scale_strides)
/* sizeof(md_args), then every field's offset in declaration order. */
void stub_layout(int64_t* dst) {
  int i = 0;
  dst[i++] = sizeof(md_args);
#define OFFSET(f) dst[i++] = offsetof(md_args, f);
  MD_FIELDS(OFFSET)
}
}
`;

/** Echo slots written by the stub, by name (index = slot). */
export const ECHO = [
  "entry", "batch", "q_len", "kv_len", "querySum", "keySum", "valueSum", "hasOut", "hasLse",
  "pageTableSum", "seqLensSum", "max_pages_per_seq", "num_pages",
  "kvNumBlocksSum", "kvIndicesSum", "fullKvNumBlocksSum", "fullKvIndicesSum",
  "mask_batch", "mask_heads", "q_blocks", "kv_blocks", "hasBuffers", "hasBufferDims",
  "dim0", "dim1", "dim2", "dim3", "dim4", "dim5", "dim6", "dim7",
  "buffer0Sum", "buffer1Sum", "buffer2Sum", "buffer3Sum",
  "partition_size", "num_threads", "statusIn", "sentinel", "hasOwnMods",
] as const;
export type EchoName = (typeof ECHO)[number];
/** The stub's echo array length (ECHO_SLOTS in the C++); stub_echo copies all of it. */
const ECHO_SLOTS = 40;

/** Field order of md_args in the stub's offsetof table. */
export const FIELD_ORDER = [
  "batch", "q_len", "kv_len", "query", "key", "value", "out", "lse", "page_table", "seq_lens",
  "max_pages_per_seq", "num_pages", "kv_num_blocks", "kv_indices", "full_kv_num_blocks", "full_kv_indices",
  "mask_batch", "mask_heads", "q_blocks", "kv_blocks", "buffers", "buffer_dims", "partition_size",
  "num_threads", "status", "mods", "q_strides", "k_strides", "v_strides", "out_strides", "lse_strides",
  "q_start_loc", "kv_start_loc", "k_scale", "v_scale", "k_scale_strides", "v_scale_strides",
] as const;

export const ENTRY_IDS = { flash_attention: 1, flash_decoding: 2, buildBlockMask: 3, naive: 4 } as const;

export interface StubConfig {
  elemBytes: 2 | 4;
  hq: number;
  hkv: number;
  qDim: number;
  vDim: number;
  pageSize: number;
  abi: number;
  /** Leave out md_naive_attention, to test the missing-symbol error. */
  withoutNaive?: boolean;
}

/** Compiles the stub for `config` into a fresh temporary directory and returns the library's path. */
export async function compileStub(config: StubConfig, name = "stub"): Promise<string> {
  const dir = await mkdtemp(join(tmpdir(), "minductor-runtime-"));
  const source = join(dir, `${name}.cpp`);
  const library = join(dir, `${name}.so`);
  await writeFile(source, STUB_SOURCE);
  const defines = [
    `-DELEM_BYTES=${config.elemBytes}`, `-DHQ=${config.hq}`, `-DHKV=${config.hkv}`, `-DQ_DIM=${config.qDim}`,
    `-DV_DIM=${config.vDim}`, `-DPAGE_SIZE=${config.pageSize}`, `-DABI=${config.abi}`, `-DECHO_SLOTS=${ECHO_SLOTS}`,
    ...(config.withoutNaive ? ["-DNO_NAIVE"] : []),
  ];
  await promisify(execFile)("g++", ["-shared", "-fPIC", "-O1", "-std=gnu++17", ...defines, source, "-o", library]);
  return library;
}

/** The stub's test-only controls (same dlopen handle as the runtime's, so the same globals). */
export class StubControl {
  private readonly setFn;
  private readonly callsFn;
  private readonly echoFn;
  private readonly layoutFn;

  constructor(path: string) {
    const lib = koffi.load(path);
    this.setFn = lib.func("void stub_set(int32_t status, int32_t sleep, int32_t buffers, int32_t sleep_before)");
    this.callsFn = lib.func("int64_t stub_calls(void)");
    this.echoFn = lib.func("void stub_echo(int64_t *dst)");
    this.layoutFn = lib.func("void stub_layout(int64_t *dst)");
  }

  /** `sleepMs` sleeps after the entry point has read its arguments, `sleepBeforeMs` before it reads them. */
  set(options: { status?: number; sleepMs?: number; echoBuffers?: boolean; sleepBeforeMs?: number } = {}): void {
    this.setFn(options.status ?? 0, options.sleepMs ?? 0, options.echoBuffers ? 1 : 0, options.sleepBeforeMs ?? 0);
  }

  calls(): number {
    return Number(this.callsFn());
  }

  echo(): Record<EchoName, number> {
    const raw = new BigInt64Array(ECHO_SLOTS);
    this.echoFn(raw);
    return Object.fromEntries(ECHO.map((name, i) => [name, Number(raw[i])])) as Record<EchoName, number>;
  }

  /** [sizeof(md_args), offsets in FIELD_ORDER] as the C++ compiler lays the struct out. */
  layout(): { size: number; offsets: Record<(typeof FIELD_ORDER)[number], number> } {
    const raw = new BigInt64Array(1 + FIELD_ORDER.length);
    this.layoutFn(raw);
    const offsets = Object.fromEntries(FIELD_ORDER.map((name, i) => [name, Number(raw[i + 1])]));
    return { size: Number(raw[0]), offsets: offsets as Record<(typeof FIELD_ORDER)[number], number> };
  }
}
