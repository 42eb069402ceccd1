/*
 * md_base.h: what every part of a generated kernel library needs, the engine and the mods alike: standard headers,
 * the dtype codes, integer helpers, OpenMP threads and per-thread scratch. Compiles on its own
 * (g++ -std=gnu++17 -fsyntax-only md_base.h). Generated sources paste it, so they need no include path.
 */
#ifndef MD_BASE_H
#define MD_BASE_H

#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <float.h>
#include <math.h>
#if defined(__x86_64__) || defined(__i386__)
#include <immintrin.h>
#endif
#if defined(__aarch64__) && defined(__ARM_NEON)
#include <arm_neon.h>
#endif
#ifdef _OPENMP
#include <omp.h>
#endif

/* Helpers are forced inline: the kernels are built from them. -DMD_NO_FORCED_INLINE leaves inlining to the compiler,
 * for unoptimised (-O0) and sanitized builds of the same source, which then compile in about half the time. */
#ifdef MD_NO_FORCED_INLINE
#define MD_INLINE static inline
#else
#define MD_INLINE static inline __attribute__((always_inline))
#endif

/* Element types of query/key/value; bf16 and fp16 travel as uint16_t bit patterns. A quantized key/value holds
 * int8 codes (value = scale * code) or OCP fp8 codes (e4m3fn, e5m2) as uint8_t. */
enum md_dtype { MD_FLOAT32 = 0, MD_BFLOAT16 = 1, MD_FLOAT16 = 2, MD_INT8 = 3, MD_FP8_E4M3FN = 4, MD_FP8_E5M2 = 5 };

MD_INLINE constexpr int64_t md_round_up(int64_t x, int64_t m) { return (x + m - 1) / m * m; }
MD_INLINE constexpr int64_t md_min(int64_t a, int64_t b) { return a < b ? a : b; }
MD_INLINE constexpr int64_t md_max(int64_t a, int64_t b) { return a > b ? a : b; }

/* ------------------------------------------------------------------------------------------------------------ */
/* Scratch: one allocation per call, carved into per-thread slices aligned to 64 bytes (no false sharing). */
MD_INLINE int64_t md_threads_for(int32_t requested) {
#ifdef _OPENMP
  return requested > 0 ? requested : omp_get_max_threads();
#else
  (void)requested;
  return 1;
#endif
}

MD_INLINE int md_thread_id(void) {
#ifdef _OPENMP
  return omp_get_thread_num();
#else
  return 0;
#endif
}

/* Runs `body` on `threads` OpenMP threads, its worksharing constructs (`omp for`, `omp single`) orphaned inside it.
 * One thread runs it on the caller without a team: libgomp wakes a team's barrier with a futex syscall even when
 * the team has one thread, which for a call of a few microseconds costs more than the work. */
template <class Body>
static inline void md_parallel(int64_t threads, Body&& body) {
#ifdef _OPENMP
  if (threads > 1) {
#pragma omp parallel num_threads(threads)
    body();
    return;
  }
#else
  (void)threads;
#endif
  body();
}

/* The threads a call runs on: at most `threads`, one for every `per_thread` units of its `work`, at least one; a thread
 * that would get less costs more to wake than it saves (a team of two costs about 10 us to start, synchronise and
 * join on the machines measured: libgomp makes a futex syscall per barrier).
 * With MINDUCTOR_WAKE_EVERY_THREAD set in the environment every call takes all `threads`, whatever its work: tests of
 * the parallel paths set it, so that their small calls run them. */
MD_INLINE int64_t md_threads_for_work(int64_t threads, int64_t work, int64_t per_thread) {
  static const bool every = getenv("MINDUCTOR_WAKE_EVERY_THREAD") != nullptr;
  return md_max(1, every ? threads : md_min(threads, work / per_thread));
}

MD_INLINE float* md_scratch_alloc(int64_t threads, int64_t floats_per_thread) {
  const size_t bytes = (size_t)threads * (size_t)md_round_up(floats_per_thread, 16) * sizeof(float);
  return (float*)aligned_alloc(64, md_round_up((int64_t)bytes, 64));
}

MD_INLINE float* md_scratch_slice(float* base, int64_t floats_per_thread, int thread) {
  return base + (int64_t)thread * md_round_up(floats_per_thread, 16);
}

#endif /* MD_BASE_H */
