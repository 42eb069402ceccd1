/*
 * probe.cpp: measures the denominators of minductor's efficiency figures on this machine, the read bandwidth of main
 * memory, the fp32 FMA peak and, where the compiler targets AVX512-BF16, the bf16 dot-product (VDPBF16PS) peak, and
 * where it targets AVX2 or AVX-512BW the 16-bit integer dot-product peak (what int8 decoding multiplies q . k with),
 * each with one thread and with every OpenMP thread.
 *
 * A real source, compiled as it is with the kernel flags (g++ -O3 -march=native -fopenmp -shared -fPIC), so the
 * peak is the one kernels built the same way can reach. Every figure is the best of several timed passes.
 *
 * The machines this runs on are often shared (CI, a laptop compiling in the background). Work is split into chunks
 * that each thread takes from its own range first and from the others' ranges afterwards, so a thread that another
 * process keeps off its core delays a pass by one chunk instead of by its whole share. Each thread also compares
 * its CPU time with its wall time, and the share of time spent off the CPU is reported, so the caller can tell a
 * disturbed measurement from a clean one.
 */
#include <math.h>
#include <stdint.h>
#include <stdlib.h>
#include <time.h>
#include <atomic>
#if defined(__linux__)
#include <sys/mman.h>
#endif
#if defined(__AVX512F__) || (defined(__AVX2__) && defined(__FMA__))
#include <immintrin.h>
#endif
#ifdef _OPENMP
#include <omp.h>
#else
/* Built without OpenMP the pragmas are ignored; these keep the probe correct with one thread. */
static int omp_get_max_threads(void) { return 1; }
static int omp_get_thread_num(void) { return 0; }
static int omp_get_num_threads(void) { return 1; }
#endif
/* Team sizes are only read by the pragmas, which a build without OpenMP ignores. */
#define MD_PROBE_TEAM_SIZE_USED(threads) (void)(threads)

#define MD_PROBE_VERSION 6

/* Read-bandwidth blocks are reduced one at a time: small enough that fp32 lane sums of 1.0f stay exact, so the
 * checksum proves every byte was read; large enough that the per-block reduction costs nothing. */
#define MD_PROBE_BLOCK_FLOATS 16384
#define MD_PROBE_BLOCK_BYTES (MD_PROBE_BLOCK_FLOATS * (int64_t)sizeof(float))
/* 2 MiB read chunks: long enough for the prefetchers, short enough that taking one over costs a fraction of a ms. */
#define MD_PROBE_CHUNK_BLOCKS 32
/* Sequential streams a thread reads at once; every lane still sums at most 4 x 16384 / 64 = 1024 ones. */
#define MD_PROBE_STREAMS 4
/* Independent FMA chains per thread: latency 4-5 cycles x 2 FMA pipes needs at least 10 in flight. */
#define MD_PROBE_CHAINS 12
#define MD_PROBE_FMA_CHUNKS_PER_THREAD 8

enum md_probe_status { MD_PROBE_OK = 0, MD_PROBE_NO_MEMORY = 1, MD_PROBE_BAD_ARGUMENT = 2, MD_PROBE_UNSUPPORTED = 3 };

extern "C" {

typedef struct md_probe_read_result {
  double one_thread_gbs; /* 1e9 bytes/s */
  double all_threads_gbs;
  double one_thread_checksum; /* the sum of every float one pass read: equals `floats` when all were read */
  double all_threads_checksum;
  double off_cpu; /* the largest share of wall time a thread of the best passes spent descheduled */
  int64_t floats; /* floats streamed per pass (the requested bytes rounded down to whole blocks) */
  int32_t threads; /* the team OpenMP granted for the all-threads figure */
  int32_t status;
} md_probe_read_result;

/* Also the result of the bf16 dot-product peak, where `lanes` are the fp32 accumulator lanes of one instruction. */
typedef struct md_probe_fma_result {
  double one_thread_gflops; /* an FMA counts as 2 flops, a VDPBF16PS lane as 4 (two products, two additions) */
  double all_threads_gflops;
  double off_cpu;
  double sink; /* the sum of every chain of every pass, so no chain is dead code */
  int64_t iterations; /* per chunk, calibrated so that a one-thread pass takes at least min_seconds */
  int32_t lanes; /* fp32 lanes per FMA instruction */
  int32_t threads;
  int32_t status;
} md_probe_fma_result;

int32_t md_probe_version(void);
const char* md_probe_isa(void);
/* 1 where the build targets AVX512-BF16 and AVX512-VBMI: decoding then makes 8-bit K/V codes bf16 by byte lookups
 * for the bf16 dot products (minductor.h, MD_CODES_BF16_LOOKUP), 0 elsewhere. */
int32_t md_probe_byte_lookups(void);
int32_t md_probe_read_bandwidth(int64_t bytes, int32_t reps, md_probe_read_result* out);
/* A read pass to time beside other work (the bench times one in the rounds of each decode case): a buffer of `bytes`
 * (whole blocks) filled with ones, NULL when it cannot be allocated; one pass over it on every OpenMP thread, each
 * reading its own share as md_probe_read_bandwidth's passes do, returning the sum of the floats read (their count
 * when every byte was read); and the buffer freed. */
float* md_probe_read_buffer(int64_t bytes);
double md_probe_read_pass(const float* data, int64_t bytes);
void md_probe_read_buffer_free(float* data);
int32_t md_probe_fma_peak(double min_seconds, int32_t reps, md_probe_fma_result* out);
/* MD_PROBE_UNSUPPORTED (out->status too) where the build does not target AVX512-BF16. */
int32_t md_probe_bf16_dot_peak(double min_seconds, int32_t reps, md_probe_fma_result* out);
/* VPDPWSSD (AVX512-VNNI, AVX-VNNI) or VPMADDWD + VPADDD, as minductor.h's md_vi_dot; MD_PROBE_UNSUPPORTED where the
 * build targets neither AVX2 nor AVX-512BW. `lanes` are the int32 lanes of one instruction, each counting 4 ops. */
int32_t md_probe_int16_dot_peak(double min_seconds, int32_t reps, md_probe_fma_result* out);

/* The AMX-BF16 peak (TDPBF16PS, an fp32 accumulator counting 64 flops per product of tiles: 32 products, 32
 * additions); MD_PROBE_UNSUPPORTED where the build lacks AMX or Linux refuses the process the tiles. */
int32_t md_probe_amx_bf16_peak(double min_seconds, int32_t reps, md_probe_fma_result* out);

}  // extern "C"

static double clock_seconds(clockid_t clock) {
  struct timespec t;
  clock_gettime(clock, &t);
  return (double)t.tv_sec + 1e-9 * (double)t.tv_nsec;
}

static double now_seconds(void) { return clock_seconds(CLOCK_MONOTONIC); }

/* Advances only while this thread runs: wall time beyond it was spent waiting for a core. */
static double thread_cpu_seconds(void) { return clock_seconds(CLOCK_THREAD_CPUTIME_ID); }

/* ---------------------------------------------------------------------------------------------------------------- */
/* Timed passes */

/* Chunks [first, end) that `thread` of a `team` owns: it runs them first, and first-touches their pages. */
static void owned_chunks(int64_t chunks, int thread, int team, int64_t* first, int64_t* end) {
  *first = chunks * thread / team;
  *end = chunks * (thread + 1) / team;
}

struct alignas(64) md_probe_cursor {
  std::atomic<int64_t> next;
  int64_t end;
};

struct md_probe_pass {
  double seconds;
  double off_cpu; /* the largest share of its span a thread of the pass spent descheduled */
};

/*
 * One pass of `run_chunk(c)` over chunks [0, chunks) on a team of `threads`. Each thread times its span from after
 * the barrier to the end of its last chunk; the pass lasts from the earliest start to the latest end, so it covers
 * all the work and never team start-up. The chunks' results are summed into *total; the team OpenMP actually
 * granted goes to *team_size.
 */
template <class RunChunk>
static md_probe_pass timed_pass(int threads, int64_t chunks, const RunChunk& run_chunk, double* total,
                                int32_t* team_size) {
  md_probe_cursor* cursors = new md_probe_cursor[threads];
  double started = HUGE_VAL, finished = 0, sum = 0, off_cpu = 0;
  int team = 1;
#pragma omp parallel num_threads(threads)
  {
    const int me = omp_get_thread_num(), size = omp_get_num_threads();
    int64_t first, end;
    owned_chunks(chunks, me, size, &first, &end);
    cursors[me].next.store(first);
    cursors[me].end = end;
#pragma omp barrier
    const double my_start = now_seconds(), my_cpu_start = thread_cpu_seconds();
    double mine = 0, my_end = 0, my_cpu_end = 0;
    int64_t my_chunks = 0;
    for (int k = 0; k < size; k++) {
      md_probe_cursor& cursor = cursors[(me + k) % size];
      for (int64_t c = cursor.next.fetch_add(1); c < cursor.end; c = cursor.next.fetch_add(1)) {
        mine += run_chunk(c);
        my_end = now_seconds();
        my_cpu_end = thread_cpu_seconds();
        my_chunks++;
      }
    }
#pragma omp critical(md_probe_pass)
    {
      team = size;
      sum += mine;
      if (my_chunks > 0) {
        started = fmin(started, my_start);
        finished = fmax(finished, my_end);
        const double span = my_end - my_start;
        if (span > 0) off_cpu = fmax(off_cpu, 1.0 - (my_cpu_end - my_cpu_start) / span);
      } else if (end > first) {
        /* It only got a core after the others had done all its chunks too: its own chunks come first, so on a
         * quiet machine that never happens, and the pass ran a thread short. */
        off_cpu = 1.0;
      }
    }
  }
  delete[] cursors;
  *total = sum;
  *team_size = team;
  return md_probe_pass{finished - started, fmax(off_cpu, 0.0)};
}

/* Keeps the fastest pass: the one least disturbed by whatever else runs on the machine. */
static void keep_best(md_probe_pass pass, md_probe_pass* best) {
  if (pass.seconds < best->seconds) *best = pass;
}

/* Horizontal sums go through memory: they are outside every timed loop, and this avoids GCC 12's false
 * -Wuninitialized in _mm512_reduce_add_ps. */
#if defined(__AVX512F__)
static double lane_sum(__m512 v) {
  alignas(64) float lanes[16];
  _mm512_store_ps(lanes, v);
  double total = 0;
  for (int l = 0; l < 16; l++) total += lanes[l];
  return total;
}
#elif defined(__AVX2__) && defined(__FMA__)
static double lane_sum(__m256 v) {
  alignas(32) float lanes[8];
  _mm256_store_ps(lanes, v);
  double total = 0;
  for (int l = 0; l < 8; l++) total += lanes[l];
  return total;
}
#endif

/* ---------------------------------------------------------------------------------------------------------------- */
/* Read bandwidth */

/*
 * Sums S blocks at once, one 8-vector step of each in turn: several concurrent sequential streams per core keep more
 * cache-line fills in flight than one (about 15% more bandwidth on one Zen 3 core). Eight independent accumulators
 * keep the adds off the critical path, so the loop is bound by loads alone.
 */
template <int S>
static double sum_blocks(const float* const* starts) {
#if defined(__AVX512F__)
  __m512 acc[8];
  for (int a = 0; a < 8; a++) acc[a] = _mm512_setzero_ps();
  for (int i = 0; i < MD_PROBE_BLOCK_FLOATS; i += 8 * 16)
    for (int s = 0; s < S; s++)
      for (int a = 0; a < 8; a++) acc[a] = _mm512_add_ps(acc[a], _mm512_load_ps(starts[s] + i + 16 * a));
  for (int a = 1; a < 8; a++) acc[0] = _mm512_add_ps(acc[0], acc[a]);
  return lane_sum(acc[0]);
#elif defined(__AVX2__) && defined(__FMA__)
  __m256 acc[8];
  for (int a = 0; a < 8; a++) acc[a] = _mm256_setzero_ps();
  for (int i = 0; i < MD_PROBE_BLOCK_FLOATS; i += 8 * 8)
    for (int s = 0; s < S; s++)
      for (int a = 0; a < 8; a++) acc[a] = _mm256_add_ps(acc[a], _mm256_load_ps(starts[s] + i + 8 * a));
  for (int a = 1; a < 8; a++) acc[0] = _mm256_add_ps(acc[0], acc[a]);
  return lane_sum(acc[0]);
#else
  float acc[8] = {0, 0, 0, 0, 0, 0, 0, 0};
  for (int i = 0; i < MD_PROBE_BLOCK_FLOATS; i += 8)
    for (int s = 0; s < S; s++)
      for (int a = 0; a < 8; a++) acc[a] += starts[s][i + a];
  double total = 0;
  for (int a = 0; a < 8; a++) total += acc[a];
  return total;
#endif
}

/* Blocks [first, end) as MD_PROBE_STREAMS equal streams walked together, then the few left over one by one. */
static double sum_range(const float* data, int64_t first, int64_t end) {
  const int64_t per_stream = (end - first) / MD_PROBE_STREAMS;
  double total = 0;
  for (int64_t j = 0; j < per_stream; j++) {
    const float* starts[MD_PROBE_STREAMS];
    for (int s = 0; s < MD_PROBE_STREAMS; s++) starts[s] = data + (first + s * per_stream + j) * MD_PROBE_BLOCK_FLOATS;
    total += sum_blocks<MD_PROBE_STREAMS>(starts);
  }
  for (int64_t b = first + MD_PROBE_STREAMS * per_stream; b < end; b++) {
    const float* start = data + b * MD_PROBE_BLOCK_FLOATS;
    total += sum_blocks<1>(&start);
  }
  return total;
}

/* Blocks [first, end) of read chunk `chunk`; the last chunk may be short. */
static void chunk_blocks(int64_t chunk, int64_t blocks, int64_t* first, int64_t* end) {
  *first = chunk * MD_PROBE_CHUNK_BLOCKS < blocks ? chunk * MD_PROBE_CHUNK_BLOCKS : blocks;
  *end = *first + MD_PROBE_CHUNK_BLOCKS < blocks ? *first + MD_PROBE_CHUNK_BLOCKS : blocks;
}

/* Each thread touches the chunks it owns in an all-threads pass, so it reads memory local to its socket. */
static void fill_ones(float* data, int64_t blocks, int64_t chunks, int threads) {
  MD_PROBE_TEAM_SIZE_USED(threads);
#pragma omp parallel num_threads(threads)
  {
    int64_t first_chunk, end_chunk, first, end, unused;
    owned_chunks(chunks, omp_get_thread_num(), omp_get_num_threads(), &first_chunk, &end_chunk);
    chunk_blocks(first_chunk, blocks, &first, &unused);
    chunk_blocks(end_chunk, blocks, &end, &unused);
    for (int64_t i = first * MD_PROBE_BLOCK_FLOATS; i < end * MD_PROBE_BLOCK_FLOATS; i++) data[i] = 1.0f;
  }
}

/* Read chunks of `blocks` blocks. */
static int64_t read_chunks(int64_t blocks) { return (blocks + MD_PROBE_CHUNK_BLOCKS - 1) / MD_PROBE_CHUNK_BLOCKS; }

/* The sum of read chunk `chunk` of `blocks` blocks at data. */
static double sum_chunk(const float* data, int64_t blocks, int64_t chunk) {
  int64_t first, end;
  chunk_blocks(chunk, blocks, &first, &end);
  return sum_range(data, first, end);
}

float* md_probe_read_buffer(int64_t bytes) {
  const int64_t blocks = bytes / MD_PROBE_BLOCK_BYTES;
  if (blocks < 1) return NULL;
  const int64_t size = blocks * MD_PROBE_BLOCK_BYTES;
  const int64_t huge_page = 2 << 20;
  float* data = (float*)aligned_alloc(huge_page, (size + huge_page - 1) / huge_page * huge_page);
  if (data == NULL) return NULL;
#if defined(__linux__) && defined(MADV_HUGEPAGE)
  /* A gigabyte of 4 KiB pages costs a quarter million page faults and TLB misses; huge pages leave only DRAM. */
  madvise(data, (size_t)size, MADV_HUGEPAGE);
#endif
  fill_ones(data, blocks, read_chunks(blocks), omp_get_max_threads());
  return data;
}

double md_probe_read_pass(const float* data, int64_t bytes) {
  const int64_t blocks = bytes / MD_PROBE_BLOCK_BYTES;
  if (data == NULL || blocks < 1) return 0.0;
  const int64_t chunks = read_chunks(blocks);
  double total = 0.0;
#pragma omp parallel reduction(+ : total)
  {
    int64_t first_chunk, end_chunk;
    owned_chunks(chunks, omp_get_thread_num(), omp_get_num_threads(), &first_chunk, &end_chunk);
    for (int64_t c = first_chunk; c < end_chunk; c++) total += sum_chunk(data, blocks, c);
  }
  return total;
}

void md_probe_read_buffer_free(float* data) { free(data); }

/*
 * The 1-thread and all-threads passes alternate, so a burst of load from another process spoils one round of both
 * rather than every pass of one figure.
 */
int32_t md_probe_read_bandwidth(int64_t bytes, int32_t reps, md_probe_read_result* out) {
  if (out == NULL) return MD_PROBE_BAD_ARGUMENT;
  const int64_t blocks = bytes / MD_PROBE_BLOCK_BYTES;
  if (blocks < 1 || reps < 1) return out->status = MD_PROBE_BAD_ARGUMENT;
  const int64_t chunks = read_chunks(blocks);
  const int64_t size = blocks * MD_PROBE_BLOCK_BYTES;
  float* data = md_probe_read_buffer(bytes);
  if (data == NULL) return out->status = MD_PROBE_NO_MEMORY;
  const int all = omp_get_max_threads();
  const auto read_chunk = [&](int64_t chunk) { return sum_chunk(data, blocks, chunk); };
  md_probe_pass one = {HUGE_VAL, 0}, many = {HUGE_VAL, 0};
  int32_t one_team = 1;
  for (int r = 0; r < reps; r++) {
    keep_best(timed_pass(1, chunks, read_chunk, &out->one_thread_checksum, &one_team), &one);
    keep_best(timed_pass(all, chunks, read_chunk, &out->all_threads_checksum, &out->threads), &many);
  }
  md_probe_read_buffer_free(data);
  out->floats = blocks * MD_PROBE_BLOCK_FLOATS;
  out->one_thread_gbs = (double)size / one.seconds * 1e-9;
  out->all_threads_gbs = (double)size / many.seconds * 1e-9;
  out->off_cpu = fmax(one.off_cpu, many.off_cpu);
  return out->status = MD_PROBE_OK;
}

/* ---------------------------------------------------------------------------------------------------------------- */
/* FMA peak */

/*
 * acc = acc * m + c converges to c / (1 - m) = 1, so the chains never overflow nor reach denormals, and the compiler
 * cannot fold a recurrence whose length it does not know. Every chain's value leaves through the return value.
 */
#if defined(__AVX512F__)
#define MD_PROBE_LANES 16
static double fma_chains(int64_t iterations, float seed) {
  const __m512 m = _mm512_set1_ps(0.999f), c = _mm512_set1_ps(0.001f);
  __m512 acc[MD_PROBE_CHAINS];
  for (int a = 0; a < MD_PROBE_CHAINS; a++) acc[a] = _mm512_set1_ps(seed + 0.01f * (float)a);
  for (int64_t i = 0; i < iterations; i++)
    for (int a = 0; a < MD_PROBE_CHAINS; a++) acc[a] = _mm512_fmadd_ps(acc[a], m, c);
  for (int a = 1; a < MD_PROBE_CHAINS; a++) acc[0] = _mm512_add_ps(acc[0], acc[a]);
  return lane_sum(acc[0]);
}
#elif defined(__AVX2__) && defined(__FMA__)
#define MD_PROBE_LANES 8
static double fma_chains(int64_t iterations, float seed) {
  const __m256 m = _mm256_set1_ps(0.999f), c = _mm256_set1_ps(0.001f);
  __m256 acc[MD_PROBE_CHAINS];
  for (int a = 0; a < MD_PROBE_CHAINS; a++) acc[a] = _mm256_set1_ps(seed + 0.01f * (float)a);
  for (int64_t i = 0; i < iterations; i++)
    for (int a = 0; a < MD_PROBE_CHAINS; a++) acc[a] = _mm256_fmadd_ps(acc[a], m, c);
  for (int a = 1; a < MD_PROBE_CHAINS; a++) acc[0] = _mm256_add_ps(acc[0], acc[a]);
  return lane_sum(acc[0]);
}
#else
/* Whatever the compiler makes of a multiply-add (fused, vectorised or not) is what the kernels' fallback gets too. */
#define MD_PROBE_LANES 1
static double fma_chains(int64_t iterations, float seed) {
  float acc[MD_PROBE_CHAINS];
  for (int a = 0; a < MD_PROBE_CHAINS; a++) acc[a] = seed + 0.01f * (float)a;
  for (int64_t i = 0; i < iterations; i++)
    for (int a = 0; a < MD_PROBE_CHAINS; a++) acc[a] = acc[a] * 0.999f + 0.001f;
  double total = 0;
  for (int a = 0; a < MD_PROBE_CHAINS; a++) total += acc[a];
  return total;
}
#endif

#if defined(__AVX512BF16__)
/*
 * VDPBF16PS chains: acc += 0.5 * 0.25 + (-0.5) * 0.25 per lane, exactly 0, so every chain keeps its value (no overflow,
 * no denormals) while the unit does the full work; the compiler does not fold the intrinsic.
 */
static double bf16_dot_chains(int64_t iterations, float seed) {
  /* bf16 bit patterns, a pair per 32-bit lane (element 2i in the low half): (0.5, -0.5) and (0.25, 0.25) */
  const __m512bh x = (__m512bh)_mm512_set1_epi32((int)0xbf003f00u);
  const __m512bh y = (__m512bh)_mm512_set1_epi32(0x3e803e80);
  __m512 acc[MD_PROBE_CHAINS];
  for (int a = 0; a < MD_PROBE_CHAINS; a++) acc[a] = _mm512_set1_ps(seed + 0.01f * (float)a);
  for (int64_t i = 0; i < iterations; i++)
    for (int a = 0; a < MD_PROBE_CHAINS; a++) acc[a] = _mm512_dpbf16_ps(acc[a], x, y);
  for (int a = 1; a < MD_PROBE_CHAINS; a++) acc[0] = _mm512_add_ps(acc[0], acc[a]);
  return lane_sum(acc[0]);
}
#endif

#if defined(__AMX_TILE__) && defined(__AMX_BF16__) && defined(__linux__)
#define MD_PROBE_AMX 1
#include <sys/syscall.h>
#include <unistd.h>
/*
 * AMX-BF16 chains: four accumulator tiles (16 x 16 fp32), each TDPBF16PS adding a 16 x 32 by 32 x 16 bf16 product
 * (16384 flops); MD_PROBE_CHAINS products per iteration, three rounds over the four. A holds the pairs (0.5, -0.5) and
 * B (0.25, 0.25), so every product adds exactly 0 and the tiles keep their value. The tile configuration is this
 * thread's own, loaded here and released at the end; the tiles need the process's permission (arch_prctl
 * ARCH_REQ_XCOMP_PERM, asked by md_probe_amx_bf16_peak).
 */
static double amx_bf16_chains(int64_t iterations, float seed) {
  struct alignas(64) {
    uint8_t palette, start_row, reserved[14];
    uint16_t colsb[16];
    uint8_t rows[16];
  } config = {};
  config.palette = 1;
  for (int t = 0; t < 6; t++) {
    config.colsb[t] = 64;
    config.rows[t] = 16;
  }
  alignas(64) uint32_t a[16 * 16], b[16 * 16];
  alignas(64) float c[16 * 16];
  for (int i = 0; i < 16 * 16; i++) {
    a[i] = 0xbf003f00u;
    b[i] = 0x3e803e80u;
    c[i] = seed;
  }
  _tile_loadconfig(&config);
  _tile_loadd(4, a, 64);
  _tile_loadd(5, b, 64);
  _tile_loadd(0, c, 64);
  _tile_loadd(1, c, 64);
  _tile_loadd(2, c, 64);
  _tile_loadd(3, c, 64);
  static_assert(MD_PROBE_CHAINS % 4 == 0, "the AMX chains run in rounds of four tiles");
  for (int64_t i = 0; i < iterations; i++)
    for (int round = 0; round < MD_PROBE_CHAINS / 4; round++) {
      _tile_dpbf16ps(0, 4, 5);
      _tile_dpbf16ps(1, 4, 5);
      _tile_dpbf16ps(2, 4, 5);
      _tile_dpbf16ps(3, 4, 5);
    }
  double total = 0;
  _tile_stored(0, c, 64);
  for (int i = 0; i < 16 * 16; i++) total += c[i];
  _tile_stored(3, c, 64);
  for (int i = 0; i < 16 * 16; i++) total += c[i];
  _tile_release();
  return total;
}
#endif

#if (defined(__AVX512BW__) && defined(__AVX512VL__)) || (defined(__AVX2__) && defined(__FMA__) && !defined(__AVX512F__))
#define MD_PROBE_INT16_DOT 1
#if defined(__AVX512BW__)
typedef __m512i md_probe_vi;
#define MD_PROBE_VI_LANES 16
static inline md_probe_vi vi_set1(int32_t x) { return _mm512_set1_epi32(x); }
static inline void vi_store(int32_t* p, md_probe_vi v) { _mm512_store_si512((void*)p, v); }
static inline md_probe_vi vi_dot(md_probe_vi acc, md_probe_vi a, md_probe_vi b) {
#if defined(__AVX512VNNI__)
  return _mm512_dpwssd_epi32(acc, a, b);
#else
  return _mm512_add_epi32(acc, _mm512_madd_epi16(a, b));
#endif
}
#else
typedef __m256i md_probe_vi;
#define MD_PROBE_VI_LANES 8
static inline md_probe_vi vi_set1(int32_t x) { return _mm256_set1_epi32(x); }
static inline void vi_store(int32_t* p, md_probe_vi v) { _mm256_store_si256((__m256i*)p, v); }
static inline md_probe_vi vi_dot(md_probe_vi acc, md_probe_vi a, md_probe_vi b) {
#if defined(__AVXVNNI__)
  return _mm256_dpwssd_avx_epi32(acc, a, b);
#else
  return _mm256_add_epi32(acc, _mm256_madd_epi16(a, b));
#endif
}
#endif
/*
 * 16-bit dot-product chains: acc += 1 * 1 + (-1) * 1 per int32 lane, 0, so no chain overflows. The first operand is
 * the chain itself reinterpreted (its int16 halves hold 1 and -1 throughout), so a multiply-add that is not fused
 * cannot be hoisted out of the loop as a constant.
 */
static double int16_dot_chains(int64_t iterations, float seed) {
  const md_probe_vi ones = vi_set1(0x00010001);
  md_probe_vi acc[MD_PROBE_CHAINS];
  /* (1, -1) in every lane's halves; the seed (always below 2) keeps the start a run-time value */
  for (int a = 0; a < MD_PROBE_CHAINS; a++) acc[a] = vi_set1((int32_t)0xffff0001u + (seed > 2.0f ? a : 0));
  for (int64_t i = 0; i < iterations; i++)
    for (int a = 0; a < MD_PROBE_CHAINS; a++) acc[a] = vi_dot(acc[a], acc[a], ones);
  alignas(64) int32_t lanes[MD_PROBE_VI_LANES];
  int64_t total = 0;
  for (int a = 0; a < MD_PROBE_CHAINS; a++) {
    vi_store(lanes, acc[a]);
    for (int i = 0; i < MD_PROBE_VI_LANES; i++) total += lanes[i];
  }
  return (double)total;
}
#endif

/* The best one-thread and all-threads rates of `chains_of` chains, flops_per_step flops per chain and iteration. */
template <class Chains>
static int32_t measure_peak(double min_seconds, int32_t reps, Chains chains_of, double flops_per_step, int32_t lanes,
                            md_probe_fma_result* out) {
  if (!(min_seconds > 0) || reps < 1) return out->status = MD_PROBE_BAD_ARGUMENT;
  const int all = omp_get_max_threads();
  const int64_t one_chunks = MD_PROBE_FMA_CHUNKS_PER_THREAD;
  const int64_t all_chunks = (int64_t)all * MD_PROBE_FMA_CHUNKS_PER_THREAD;
  int64_t iterations = 1 << 10;
  const auto run_chains = [&](int64_t chunk) { return chains_of(iterations, 0.5f + 0.001f * (float)(chunk % 64)); };
  double chains = 0;
  int32_t one_team = 1;
  out->sink = 0;
  /* Doubling until one pass is long enough also warms the core up to its sustained clock. */
  while (timed_pass(1, one_chunks, run_chains, &chains, &one_team).seconds < min_seconds &&
         iterations < ((int64_t)1 << 40)) {
    out->sink += chains;
    iterations *= 2;
  }
  md_probe_pass one = {HUGE_VAL, 0}, many = {HUGE_VAL, 0};
  for (int r = 0; r < reps; r++) {
    keep_best(timed_pass(1, one_chunks, run_chains, &chains, &one_team), &one);
    out->sink += chains;
    keep_best(timed_pass(all, all_chunks, run_chains, &chains, &out->threads), &many);
    out->sink += chains;
  }
  const double flops_per_chunk = (double)iterations * MD_PROBE_CHAINS * flops_per_step;
  out->iterations = iterations;
  out->lanes = lanes;
  out->one_thread_gflops = flops_per_chunk * (double)one_chunks / one.seconds * 1e-9;
  out->all_threads_gflops = flops_per_chunk * (double)all_chunks / many.seconds * 1e-9;
  out->off_cpu = fmax(one.off_cpu, many.off_cpu);
  return out->status = MD_PROBE_OK;
}

int32_t md_probe_fma_peak(double min_seconds, int32_t reps, md_probe_fma_result* out) {
  if (out == NULL) return MD_PROBE_BAD_ARGUMENT;
  return measure_peak(min_seconds, reps, fma_chains, MD_PROBE_LANES * 2.0, MD_PROBE_LANES, out);
}

int32_t md_probe_bf16_dot_peak(double min_seconds, int32_t reps, md_probe_fma_result* out) {
  if (out == NULL) return MD_PROBE_BAD_ARGUMENT;
#if defined(__AVX512BF16__)
  return measure_peak(min_seconds, reps, bf16_dot_chains, 16 * 4.0, 16, out);
#else
  (void)min_seconds;
  (void)reps;
  return out->status = MD_PROBE_UNSUPPORTED;
#endif
}

int32_t md_probe_amx_bf16_peak(double min_seconds, int32_t reps, md_probe_fma_result* out) {
  if (out == NULL) return MD_PROBE_BAD_ARGUMENT;
#if defined(MD_PROBE_AMX)
  /* ARCH_REQ_XCOMP_PERM (0x1023) for XFEATURE_XTILEDATA (18): without the permission there are no tiles to time */
  if (syscall(SYS_arch_prctl, 0x1023, 18) != 0) return out->status = MD_PROBE_UNSUPPORTED;
  return measure_peak(min_seconds, reps, amx_bf16_chains, 16.0 * 16 * 32 * 2, 256, out);
#else
  (void)min_seconds;
  (void)reps;
  return out->status = MD_PROBE_UNSUPPORTED;
#endif
}

int32_t md_probe_int16_dot_peak(double min_seconds, int32_t reps, md_probe_fma_result* out) {
  if (out == NULL) return MD_PROBE_BAD_ARGUMENT;
#if defined(MD_PROBE_INT16_DOT)
  return measure_peak(min_seconds, reps, int16_dot_chains, MD_PROBE_VI_LANES * 4.0, MD_PROBE_VI_LANES, out);
#else
  (void)min_seconds;
  (void)reps;
  return out->status = MD_PROBE_UNSUPPORTED;
#endif
}

int32_t md_probe_version(void) { return MD_PROBE_VERSION; }

int32_t md_probe_byte_lookups(void) {
#if defined(__AVX512BF16__) && defined(__AVX512VBMI__)
  return 1;
#else
  return 0;
#endif
}

const char* md_probe_isa(void) {
#if defined(__AVX512F__)
  return "avx512f";
#elif defined(__AVX2__) && defined(__FMA__)
  return "avx2+fma";
#else
  return "scalar";
#endif
}
