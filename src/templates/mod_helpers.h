// Helpers that generated score_mod / mask_mod code calls, in two forms: scalar (one kv position) and vector
// (MDM_W consecutive kv positions). They give the mod language PyTorch's semantics in C++ without undefined
// behaviour: integer arithmetic wraps, floor division and modulo take the sign of the divisor (and give 0 for a
// zero divisor instead of trapping), float -> int64 saturates, min/max propagate NaN, and buffer loads are
// bounds-checked.
//
// The two forms compute the same bits. Where a vector instruction exists with the scalar operation's exact
// rounding (+ - * / sqrt floor ceil, comparisons, selects, bool casts, int64 -> float32 of a value known to fit in
// int32) the vector form uses it; exp, tanh, sigmoid and silu are one polynomial written once as a template over
// the lane type, instantiated for float and for the vector; the remaining functions (exp2 log log2 sin cos tan
// pow), integer division, the other int64 <-> float32 casts and buffer loads (gathers) run the scalar helper lane
// by lane. So a row may be split anywhere between the forms (the vector loop, then a scalar tail) and a result
// never depends on where a position fell.
//
// Vector lanes: float32 in `vf`, int64 in `vi` (two registers), bool in `vb` as an int32 mask (all ones = true,
// 0 = false), so a bool selects between floats lane for lane. The vector form exists when the target has AVX2 with
// FMA (8 lanes), AVX-512 (16 lanes) or aarch64 NEON (4 lanes); otherwise MDM_W is 1 and only the scalar form is
// compiled.
#pragma once
#include <cmath>
#include <cstdint>
#include <cstring>
#include <type_traits>
#if defined(__x86_64__) || defined(__i386__)
#include <immintrin.h>
#endif
#if defined(__aarch64__) && defined(__ARM_NEON)
#include <arm_neon.h>
#endif

// One float lane per element of the widest vector register: 8 on AVX2 (with FMA), 16 on AVX-512, 4 on NEON.
#if defined(__AVX512F__)
#define MDM_W 16
#elif defined(__AVX2__) && defined(__FMA__)
#define MDM_W 8
#elif defined(__aarch64__) && defined(__ARM_NEON)
#define MDM_W 4
#else
#define MDM_W 1
#endif

// Forced inline, unless -DMD_NO_FORCED_INLINE (md_base.h): unoptimised builds compile faster without.
#ifdef MD_NO_FORCED_INLINE
#define MDM_FN static inline
#else
#define MDM_FN static inline __attribute__((always_inline))
#endif

namespace mdm {

// ---- scalar form -------------------------------------------------------------------------------------------

MDM_FN int64_t add(int64_t a, int64_t b) { return (int64_t)((uint64_t)a + (uint64_t)b); }
MDM_FN int64_t sub(int64_t a, int64_t b) { return (int64_t)((uint64_t)a - (uint64_t)b); }
MDM_FN int64_t mul(int64_t a, int64_t b) { return (int64_t)((uint64_t)a * (uint64_t)b); }
MDM_FN int64_t neg(int64_t a) { return (int64_t)(0 - (uint64_t)a); }
MDM_FN int64_t abs(int64_t a) { return a < 0 ? neg(a) : a; }

MDM_FN int64_t floordiv(int64_t a, int64_t b) {
  if (b == 0) return 0;
  if (b == -1) return neg(a);  // INT64_MIN / -1 would trap
  int64_t q = a / b;
  if ((a % b != 0) && ((a < 0) != (b < 0))) q -= 1;
  return q;
}
MDM_FN int64_t floormod(int64_t a, int64_t b) {
  if (b == 0 || b == -1) return 0;
  int64_t r = a % b;
  if (r != 0 && ((r < 0) != (b < 0))) r += b;
  return r;
}
MDM_FN float floordiv(float a, float b) { return std::floor(a / b); }
MDM_FN float floormod(float a, float b) {
  float r = std::fmod(a, b);
  if (r != 0.0f && ((r < 0.0f) != (b < 0.0f))) r += b;
  return r;
}

MDM_FN float min(float a, float b) { return (a != a || b != b) ? NAN : (a < b ? a : b); }
MDM_FN float max(float a, float b) { return (a != a || b != b) ? NAN : (a > b ? a : b); }
MDM_FN int64_t min(int64_t a, int64_t b) { return a < b ? a : b; }
MDM_FN int64_t max(int64_t a, int64_t b) { return a > b ? a : b; }
MDM_FN bool min(bool a, bool b) { return a && b; }
MDM_FN bool max(bool a, bool b) { return a || b; }

MDM_FN float fabs(float x) { return std::fabs(x); }
MDM_FN float floor(float x) { return std::floor(x); }
MDM_FN float ceil(float x) { return std::ceil(x); }
MDM_FN float sqrt(float x) { return std::sqrt(x); }
MDM_FN float rsqrt(float x) { return 1.0f / std::sqrt(x); }
MDM_FN float exp2(float x) { return std::exp2(x); }
MDM_FN float log(float x) { return std::log(x); }
MDM_FN float log2(float x) { return std::log2(x); }
MDM_FN float sin(float x) { return std::sin(x); }
MDM_FN float cos(float x) { return std::cos(x); }
MDM_FN float tan(float x) { return std::tan(x); }
// Opaque to the optimiser (noipa), so that a constant exponent is not specialised (pow(x, 2) -> x * x) in the
// scalar form only; both forms then call the same libm function. Squares are rendered as products instead.
__attribute__((noipa, unused)) static float pow(float a, float b) { return std::pow(a, b); }

MDM_FN int64_t to_int(float x) {
  if (x != x) return 0;
  if (x >= 9.2233720368547758e18f) return INT64_MAX;
  if (x <= -9.2233720368547758e18f) return INT64_MIN;
  return (int64_t)x;
}

// Out-of-range loads return 0 and set the call's status to 1, which the runtime turns into an error.
MDM_FN void report_out_of_range(int32_t* status) { __atomic_store_n(status, 1, __ATOMIC_RELAXED); }

template <typename T>
MDM_FN T load1(const void* data, int64_t n0, int64_t i0, int32_t* status) {
  if ((uint64_t)i0 >= (uint64_t)n0) { report_out_of_range(status); return T(0); }
  return ((const T*)data)[i0];
}
template <typename T>
MDM_FN T load2(const void* data, int64_t n0, int64_t n1, int64_t i0, int64_t i1, int32_t* status) {
  if ((uint64_t)i0 >= (uint64_t)n0 || (uint64_t)i1 >= (uint64_t)n1) { report_out_of_range(status); return T(0); }
  return ((const T*)data)[i0 * n1 + i1];
}

// The primitives the shared polynomials below are written in, for float.
MDM_FN float fma_(float a, float b, float c) { return __builtin_fmaf(a, b, c); }
MDM_FN float round_even(float x) { return __builtin_nearbyintf(x); }
MDM_FN float select(bool c, float a, float b) { return c ? a : b; }
MDM_FN float copysign_(float magnitude, float sign) { return __builtin_copysignf(magnitude, sign); }
MDM_FN float pow2i(float n) {  // 2^n for an integral n in [-126, 127]
  const int32_t bits = ((int32_t)n + 127) << 23;
  float f;
  std::memcpy(&f, &bits, 4);
  return f;
}
MDM_FN float splat(float x, float) { return x; }

// ---- vector form -------------------------------------------------------------------------------------------
#if MDM_W > 1
typedef float vf __attribute__((vector_size(4 * MDM_W)));
typedef int32_t vb __attribute__((vector_size(4 * MDM_W)));
// int64 lanes take two registers: GCC lowers a vector type wider than the hardware's one element at a time (an
// 8 x int64 comparison on AVX2 would become 8 scalar ones), so `vi` is a pair of native halves. On AVX2 the halves
// hold positions {0, 1, 4, 5} and {2, 3, 6, 7}: that is the order in which one in-lane shuffle takes the low 32 bits
// of both halves into positions 0..7 (narrow); on NEON the halves hold {0, 1} and {2, 3}, which one unzip narrows.
// slot(p) is where position p is stored.
typedef int64_t vh __attribute__((vector_size(4 * MDM_W)));
typedef uint64_t vhu __attribute__((vector_size(4 * MDM_W)));
struct vi {
  vh lo, hi;
};
static_assert(sizeof(vi) == 8 * MDM_W, "vi is MDM_W contiguous int64 lanes");
#if MDM_W == 16 || MDM_W == 4
MDM_FN constexpr int slot(int p) { return p; }
#else
MDM_FN constexpr int slot(int p) { return (p & ~6) | ((p & 2) << 1) | ((p & 4) >> 1); }  // swaps bits 1 and 2
#endif
// Between a vi and MDM_W int64 values in position order, for the lane-by-lane helpers.
MDM_FN void to_lanes(vi x, int64_t* out) {
  int64_t stored[MDM_W];
  std::memcpy(stored, &x, sizeof x);
  for (int p = 0; p < MDM_W; ++p) out[p] = stored[slot(p)];
}
MDM_FN vi from_lanes(const int64_t* in) {
  int64_t stored[MDM_W];
  for (int p = 0; p < MDM_W; ++p) stored[slot(p)] = in[p];
  vi r;
  std::memcpy(&r, stored, sizeof r);
  return r;
}

MDM_FN vf vsplat_f(float x) {
  vf v;
  for (int l = 0; l < MDM_W; ++l) v[l] = x;
  return v;
}
MDM_FN vi vsplat_i(int64_t x) { return vi{vh{} + x, vh{} + x}; }
MDM_FN vb vsplat_b(bool x) { return vb{} + (x ? -1 : 0); }
MDM_FN vf splat(float x, vf) { return vsplat_f(x); }
// k, k + 1, ..., k + MDM_W - 1
MDM_FN vi iota_from(int64_t k) {
  int64_t lanes[MDM_W];
  for (int p = 0; p < MDM_W; ++p) lanes[p] = k + p;
  return from_lanes(lanes);
}
MDM_FN vi& operator+=(vi& a, int64_t k) {
  a.lo += k;
  a.hi += k;
  return a;
}
MDM_FN vf vload(const float* p) {
  vf v;
  std::memcpy(&v, p, sizeof v);
  return v;
}
MDM_FN void vstore(float* p, vf v) { std::memcpy(p, &v, sizeof v); }

// A pair of int64 masks (or values) -> the low 32 bits of each lane, in position order; and bool lanes -> int64
// masks.
#if MDM_W == 16
MDM_FN vb narrow(vh lo, vh hi) {
  const __m512i even = _mm512_setr_epi32(0, 2, 4, 6, 8, 10, 12, 14, 16, 18, 20, 22, 24, 26, 28, 30);
  return (vb)_mm512_permutex2var_epi32((__m512i)lo, even, (__m512i)hi);
}
MDM_FN vi widen(vb m) {
  return vi{(vh)_mm512_cvtepi32_epi64(_mm512_castsi512_si256((__m512i)m)),
            (vh)_mm512_cvtepi32_epi64(_mm512_extracti64x4_epi64((__m512i)m, 1))};
}
#elif MDM_W == 4
MDM_FN vb narrow(vh lo, vh hi) { return (vb)vuzp1q_s32((int32x4_t)lo, (int32x4_t)hi); }
MDM_FN vi widen(vb m) { return vi{(vh)vmovl_s32(vget_low_s32((int32x4_t)m)), (vh)vmovl_high_s32((int32x4_t)m)}; }
#else
MDM_FN vb narrow(vh lo, vh hi) { return (vb)_mm256_shuffle_ps((__m256)lo, (__m256)hi, _MM_SHUFFLE(2, 0, 2, 0)); }
MDM_FN vi widen(vb m) {
  const __m256i by_slot = _mm256_permutevar8x32_epi32((__m256i)m, _mm256_setr_epi32(0, 1, 4, 5, 2, 3, 6, 7));
  return vi{(vh)_mm256_cvtepi32_epi64(_mm256_castsi256_si128(by_slot)),
            (vh)_mm256_cvtepi32_epi64(_mm256_extracti128_si256(by_slot, 1))};
}
#endif

// Integer lanes: wrapping arithmetic, comparisons to bool lanes, and the bitwise operators the op table writes.
MDM_FN vi add(vi a, vi b) { return vi{(vh)((vhu)a.lo + (vhu)b.lo), (vh)((vhu)a.hi + (vhu)b.hi)}; }
MDM_FN vi sub(vi a, vi b) { return vi{(vh)((vhu)a.lo - (vhu)b.lo), (vh)((vhu)a.hi - (vhu)b.hi)}; }
MDM_FN vi mul(vi a, vi b) { return vi{(vh)((vhu)a.lo * (vhu)b.lo), (vh)((vhu)a.hi * (vhu)b.hi)}; }
MDM_FN vi neg(vi a) { return vi{(vh)((vhu){} - (vhu)a.lo), (vh)((vhu){} - (vhu)a.hi)}; }
MDM_FN vi abs(vi a) {
  const vi n = neg(a);
  return vi{a.lo < 0 ? n.lo : a.lo, a.hi < 0 ? n.hi : a.hi};
}
MDM_FN vi operator&(vi a, vi b) { return vi{a.lo & b.lo, a.hi & b.hi}; }
MDM_FN vi operator|(vi a, vi b) { return vi{a.lo | b.lo, a.hi | b.hi}; }
MDM_FN vi operator^(vi a, vi b) { return vi{a.lo ^ b.lo, a.hi ^ b.hi}; }
MDM_FN vi operator~(vi a) { return vi{~a.lo, ~a.hi}; }
MDM_FN vi operator&(vi a, int64_t m) { return vi{a.lo & m, a.hi & m}; }
MDM_FN vi operator>>(vi a, int k) { return vi{a.lo >> k, a.hi >> k}; }  // arithmetic: floor division by 2^k

MDM_FN vb eq(vi a, vi b) { return narrow(a.lo == b.lo, a.hi == b.hi); }
MDM_FN vb ne(vi a, vi b) { return narrow(a.lo != b.lo, a.hi != b.hi); }
MDM_FN vb lt(vi a, vi b) { return narrow(a.lo < b.lo, a.hi < b.hi); }
MDM_FN vb le(vi a, vi b) { return narrow(a.lo <= b.lo, a.hi <= b.hi); }
MDM_FN vb gt(vi a, vi b) { return narrow(a.lo > b.lo, a.hi > b.hi); }
MDM_FN vb ge(vi a, vi b) { return narrow(a.lo >= b.lo, a.hi >= b.hi); }
// Bools order false < true; the lanes hold 0 and -1, so compare the negated lanes (0 and 1).
MDM_FN vb lt(vb a, vb b) { return -a < -b; }
MDM_FN vb le(vb a, vb b) { return -a <= -b; }
MDM_FN vb gt(vb a, vb b) { return -a > -b; }
MDM_FN vb ge(vb a, vb b) { return -a >= -b; }

// A bool lane is all ones or all zeros, so a blend on its sign bit is the select.
#if MDM_W == 16
MDM_FN vf select(vb c, vf a, vf b) { return (vf)_mm512_mask_blend_ps(_mm512_movepi32_mask((__m512i)c), (__m512)b, (__m512)a); }
#elif MDM_W == 4
MDM_FN vf select(vb c, vf a, vf b) { return (vf)vbslq_f32((uint32x4_t)c, (float32x4_t)a, (float32x4_t)b); }
#else
MDM_FN vf select(vb c, vf a, vf b) { return (vf)_mm256_blendv_ps((__m256)b, (__m256)a, (__m256)c); }
#endif
MDM_FN vf where(vb c, vf a, vf b) { return select(c, a, b); }
MDM_FN vi where(vb c, vi a, vi b) {
  const vi m = widen(c);
  return vi{m.lo ? a.lo : b.lo, m.hi ? a.hi : b.hi};
}
MDM_FN vb where(vb c, vb a, vb b) { return (c & a) | (~c & b); }

MDM_FN vf min(vf a, vf b) { return select((a != a) | (b != b), vsplat_f(NAN), select(a < b, a, b)); }
MDM_FN vf max(vf a, vf b) { return select((a != a) | (b != b), vsplat_f(NAN), select(a > b, a, b)); }
MDM_FN vi min(vi a, vi b) { return vi{a.lo < b.lo ? a.lo : b.lo, a.hi < b.hi ? a.hi : b.hi}; }
MDM_FN vi max(vi a, vi b) { return vi{a.lo > b.lo ? a.lo : b.lo, a.hi > b.hi ? a.hi : b.hi}; }
MDM_FN vb min(vb a, vb b) { return a & b; }
MDM_FN vb max(vb a, vb b) { return a | b; }

// Casts. bool lanes are 0 / -1; as numbers they are 0 / 1. int64 -> float32 rounds to nearest as the scalar cast
// does; when the value is known to fit in int32 (to_float_i32, chosen by the code generator from the value's
// range) the int32 conversion gives the same float and is one instruction.
MDM_FN vf to_float(vi x) {
  int64_t lanes[MDM_W];
  to_lanes(x, lanes);
  vf r;
  for (int p = 0; p < MDM_W; ++p) r[p] = (float)lanes[p];
  return r;
}
MDM_FN vf to_float_i32(vi x) { return __builtin_convertvector(narrow(x.lo, x.hi), vf); }
MDM_FN vf to_float(vb x) { return __builtin_convertvector(x & 1, vf); }
MDM_FN vi to_int64(vb x) {
  const vi m = widen(x);
  return vi{m.lo & 1, m.hi & 1};
}
MDM_FN vb to_bool(vf x) { return x != 0.0f; }
MDM_FN vb to_bool(vi x) { return narrow(x.lo != 0, x.hi != 0); }

#if MDM_W == 16
MDM_FN vf fma_(vf a, vf b, vf c) { return (vf)_mm512_fmadd_ps((__m512)a, (__m512)b, (__m512)c); }
MDM_FN vf round_even(vf x) { return (vf)_mm512_roundscale_ps((__m512)x, _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC); }
MDM_FN vf floor(vf x) { return (vf)_mm512_roundscale_ps((__m512)x, _MM_FROUND_TO_NEG_INF | _MM_FROUND_NO_EXC); }
MDM_FN vf ceil(vf x) { return (vf)_mm512_roundscale_ps((__m512)x, _MM_FROUND_TO_POS_INF | _MM_FROUND_NO_EXC); }
MDM_FN vf sqrt(vf x) { return (vf)_mm512_sqrt_ps((__m512)x); }
#elif MDM_W == 4
MDM_FN vf fma_(vf a, vf b, vf c) { return (vf)vfmaq_f32((float32x4_t)c, (float32x4_t)a, (float32x4_t)b); }
MDM_FN vf round_even(vf x) { return (vf)vrndnq_f32((float32x4_t)x); }
MDM_FN vf floor(vf x) { return (vf)vrndmq_f32((float32x4_t)x); }
MDM_FN vf ceil(vf x) { return (vf)vrndpq_f32((float32x4_t)x); }
MDM_FN vf sqrt(vf x) { return (vf)vsqrtq_f32((float32x4_t)x); }
#else
MDM_FN vf fma_(vf a, vf b, vf c) { return (vf)_mm256_fmadd_ps((__m256)a, (__m256)b, (__m256)c); }
MDM_FN vf round_even(vf x) { return (vf)_mm256_round_ps((__m256)x, _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC); }
MDM_FN vf floor(vf x) { return (vf)_mm256_round_ps((__m256)x, _MM_FROUND_TO_NEG_INF | _MM_FROUND_NO_EXC); }
MDM_FN vf ceil(vf x) { return (vf)_mm256_round_ps((__m256)x, _MM_FROUND_TO_POS_INF | _MM_FROUND_NO_EXC); }
MDM_FN vf sqrt(vf x) { return (vf)_mm256_sqrt_ps((__m256)x); }
#endif
MDM_FN vf rsqrt(vf x) { return 1.0f / sqrt(x); }
MDM_FN vf fabs(vf x) { return (vf)((vb)x & 0x7fffffff); }
MDM_FN vf copysign_(vf magnitude, vf sign) {
  return (vf)(((vb)magnitude & 0x7fffffff) | ((vb)sign & (int32_t)0x80000000u));
}
MDM_FN vf pow2i(vf n) { return (vf)((__builtin_convertvector(n, vb) + 127) << 23); }

// Lane by lane through the scalar helper: functions without an exact vector instruction, integer division,
// float -> int64 (saturating), and loads.
#define MDM_FLOAT_LANES_1(name)                                   \
  MDM_FN vf name(vf x) {                                          \
    vf r;                                                         \
    for (int l = 0; l < MDM_W; ++l) r[l] = mdm::name(x[l]);       \
    return r;                                                     \
  }
#define MDM_FLOAT_LANES_2(name)                                   \
  MDM_FN vf name(vf x, vf y) {                                    \
    vf r;                                                         \
    for (int l = 0; l < MDM_W; ++l) r[l] = mdm::name(x[l], y[l]); \
    return r;                                                     \
  }
#define MDM_INT_LANES_2(name)                                     \
  MDM_FN vi name(vi x, vi y) {                                    \
    int64_t a[MDM_W], b[MDM_W];                                   \
    to_lanes(x, a);                                               \
    to_lanes(y, b);                                               \
    for (int p = 0; p < MDM_W; ++p) a[p] = mdm::name(a[p], b[p]); \
    return from_lanes(a);                                         \
  }
MDM_FLOAT_LANES_1(exp2)
MDM_FLOAT_LANES_1(log)
MDM_FLOAT_LANES_1(log2)
MDM_FLOAT_LANES_1(sin)
MDM_FLOAT_LANES_1(cos)
MDM_FLOAT_LANES_1(tan)
MDM_FLOAT_LANES_2(pow)
MDM_FLOAT_LANES_2(floordiv)
MDM_FLOAT_LANES_2(floormod)
MDM_INT_LANES_2(floordiv)
MDM_INT_LANES_2(floormod)
#undef MDM_FLOAT_LANES_1
#undef MDM_FLOAT_LANES_2
#undef MDM_INT_LANES_2
MDM_FN vi to_int64(vf x) {
  int64_t r[MDM_W];
  for (int p = 0; p < MDM_W; ++p) r[p] = to_int(x[p]);
  return from_lanes(r);
}

// Buffer loads at MDM_W indices: T is the element type in memory, V the lane vector the value lands in (int32
// widens to int64, a bool byte becomes a mask lane). Every lane is bounds-checked like a scalar load.
template <typename V, typename T>
MDM_FN V lanes_to(const T* x) {
  if constexpr (std::is_same<V, vi>::value) {
    int64_t wide[MDM_W];
    for (int p = 0; p < MDM_W; ++p) wide[p] = x[p];
    return from_lanes(wide);
  } else {
    V r;
    for (int p = 0; p < MDM_W; ++p) {
      if constexpr (std::is_same<V, vb>::value) r[p] = x[p] != 0 ? -1 : 0;
      else r[p] = x[p];
    }
    return r;
  }
}
template <typename V, typename T>
MDM_FN V gather1(const void* data, int64_t n0, vi i0, int32_t* status) {
  int64_t i[MDM_W];
  to_lanes(i0, i);
  T x[MDM_W];
  for (int p = 0; p < MDM_W; ++p) x[p] = load1<T>(data, n0, i[p], status);
  return lanes_to<V>(x);
}
template <typename V, typename T>
MDM_FN V gather2(const void* data, int64_t n0, int64_t n1, vi i0, vi i1, int32_t* status) {
  int64_t i[MDM_W], j[MDM_W];
  to_lanes(i0, i);
  to_lanes(i1, j);
  T x[MDM_W];
  for (int p = 0; p < MDM_W; ++p) x[p] = load2<T>(data, n0, n1, i[p], j[p], status);
  return lanes_to<V>(x);
}
#endif  // MDM_W > 1

// ---- exp, tanh, sigmoid, silu: one polynomial for both forms ------------------------------------------------
// exp: Cody-Waite reduction by ln 2 and a degree-6 minimax polynomial (the kernel's softmax exp); 2^n applied as
// two factors so the clamped input range needs no special cases. NaN propagates, exp(-inf) = 0, large -> inf.
template <typename F>
MDM_FN F exp_poly(F x) {
  x = select(x < -110.0f, splat(-110.0f, x), x);  // comparisons are false for NaN, which so survives
  x = select(x > 89.0f, splat(89.0f, x), x);
  const F n = round_even(x * 1.44269504088896341f);
  F r = fma_(-n, splat(0.693359375f, x), x);
  r = fma_(-n, splat(-2.12194440e-4f, x), r);
  F p = splat(1.9875691500e-4f, x);
  p = fma_(p, r, splat(1.3981999507e-3f, x));
  p = fma_(p, r, splat(8.3334519073e-3f, x));
  p = fma_(p, r, splat(4.1665795894e-2f, x));
  p = fma_(p, r, splat(1.6666665459e-1f, x));
  p = fma_(p, r, splat(5.0000001201e-1f, x));
  const F y = fma_(p, r * r, r) + 1.0f;
  const F half = floor(n * 0.5f);
  return select(n != n, n, y * pow2i(select(n != n, splat(0.0f, x), half)) *
                              pow2i(select(n != n, splat(0.0f, x), n - half)));
}
// tanh: an odd minimax polynomial below |x| = 0.625, 1 - 2 / (exp(2|x|) + 1) with x's sign above.
template <typename F>
MDM_FN F tanh_poly(F x) {
  const F ax = fabs(x);
  const F z = x * x;
  F p = splat(-5.70498872745e-3f, x);
  p = fma_(p, z, splat(2.06390887954e-2f, x));
  p = fma_(p, z, splat(-5.37397155531e-2f, x));
  p = fma_(p, z, splat(1.33314422036e-1f, x));
  p = fma_(p, z, splat(-3.33332819422e-1f, x));
  const F small = fma_(x * z, p, x);
  const F large = copysign_(1.0f - 2.0f / (exp_poly(ax + ax) + 1.0f), x);
  return select(ax < 0.625f, small, large);
}

MDM_FN float exp(float x) { return exp_poly(x); }
MDM_FN float tanh(float x) { return tanh_poly(x); }
MDM_FN float sigmoid(float x) { return 1.0f / (1.0f + exp_poly(-x)); }
MDM_FN float silu(float x) { return x / (1.0f + exp_poly(-x)); }
#if MDM_W > 1
MDM_FN vf exp(vf x) { return exp_poly(x); }
MDM_FN vf tanh(vf x) { return tanh_poly(x); }
MDM_FN vf sigmoid(vf x) { return 1.0f / (1.0f + exp_poly(-x)); }
MDM_FN vf silu(vf x) { return x / (1.0f + exp_poly(-x)); }
#endif

}  // namespace mdm
