// Scalar helpers that generated score_mod / mask_mod code calls. They give the mod language PyTorch's
// semantics in C++ without undefined behaviour: integer arithmetic wraps, floor division and modulo take the
// sign of the divisor (and give 0 for a zero divisor instead of trapping), float -> int64 saturates, min/max
// propagate NaN, and buffer loads are bounds-checked.
#pragma once
#include <cmath>
#include <cstdint>

namespace mdm {

static inline int64_t add(int64_t a, int64_t b) { return (int64_t)((uint64_t)a + (uint64_t)b); }
static inline int64_t sub(int64_t a, int64_t b) { return (int64_t)((uint64_t)a - (uint64_t)b); }
static inline int64_t mul(int64_t a, int64_t b) { return (int64_t)((uint64_t)a * (uint64_t)b); }
static inline int64_t neg(int64_t a) { return (int64_t)(0 - (uint64_t)a); }
static inline int64_t abs(int64_t a) { return a < 0 ? neg(a) : a; }

static inline int64_t floordiv(int64_t a, int64_t b) {
  if (b == 0) return 0;
  if (b == -1) return neg(a);  // INT64_MIN / -1 would trap
  int64_t q = a / b;
  if ((a % b != 0) && ((a < 0) != (b < 0))) q -= 1;
  return q;
}
static inline int64_t floormod(int64_t a, int64_t b) {
  if (b == 0 || b == -1) return 0;
  int64_t r = a % b;
  if (r != 0 && ((r < 0) != (b < 0))) r += b;
  return r;
}
static inline float floordiv(float a, float b) { return std::floor(a / b); }
static inline float floormod(float a, float b) {
  float r = std::fmod(a, b);
  if (r != 0.0f && ((r < 0.0f) != (b < 0.0f))) r += b;
  return r;
}

static inline float min(float a, float b) { return (a != a || b != b) ? NAN : (a < b ? a : b); }
static inline float max(float a, float b) { return (a != a || b != b) ? NAN : (a > b ? a : b); }
static inline int64_t min(int64_t a, int64_t b) { return a < b ? a : b; }
static inline int64_t max(int64_t a, int64_t b) { return a > b ? a : b; }
static inline bool min(bool a, bool b) { return a && b; }
static inline bool max(bool a, bool b) { return a || b; }

static inline float sigmoid(float x) { return 1.0f / (1.0f + std::exp(-x)); }
static inline float silu(float x) { return x / (1.0f + std::exp(-x)); }
static inline float rsqrt(float x) { return 1.0f / std::sqrt(x); }

static inline int64_t to_int(float x) {
  if (x != x) return 0;
  if (x >= 9.2233720368547758e18f) return INT64_MAX;
  if (x <= -9.2233720368547758e18f) return INT64_MIN;
  return (int64_t)x;
}

// Out-of-range loads return 0 and set the call's status to 1, which the runtime turns into an error.
static inline void report_out_of_range(int32_t* status) { __atomic_store_n(status, 1, __ATOMIC_RELAXED); }

template <typename T>
static inline T load1(const void* data, int64_t n0, int64_t i0, int32_t* status) {
  if ((uint64_t)i0 >= (uint64_t)n0) { report_out_of_range(status); return T(0); }
  return ((const T*)data)[i0];
}
template <typename T>
static inline T load2(const void* data, int64_t n0, int64_t n1, int64_t i0, int64_t i1, int32_t* status) {
  if ((uint64_t)i0 >= (uint64_t)n0 || (uint64_t)i1 >= (uint64_t)n1) { report_out_of_range(status); return T(0); }
  return ((const T*)data)[i0 * n1 + i1];
}

}  // namespace mdm
