/*
 * minductor.h: the fixed C++ helpers every generated kernel is built from.
 *
 * This is a real header: it compiles on its own (g++ -std=gnu++17 -fsyntax-only minductor.h) and knows nothing
 * about a particular spec. The generated kernel pastes it (and md_base.h, which it includes) at its top, so a
 * kernel source stays one self-contained file. Everything that depends on the spec (head counts, dims, dtype,
 * paging, the mods) lives in the templates.
 *
 * Layout conventions shared by the helpers:
 *   - tiles are fp32, row-major, with a leading dimension (ld) padded to the SIMD width;
 *   - K tiles are transposed (kt[d * ld + j] = key row j, element d) so QK^T broadcasts q and loads K^T rows;
 *   - V and output accumulators are [rows][ld] with ld a multiple of MD_W;
 *   - with AVX512-BF16 (MD_BF16_DOT), bf16 operands of the dot products are pairs of elements in 32-bit words instead
 *     (see "bf16 dot products" below).
 */
#ifndef MINDUCTOR_H
#define MINDUCTOR_H

#include "md_base.h"

/* ------------------------------------------------------------------------------------------------------------ */
/* SIMD width and register blocking. MD_MR rows x 2 vectors of accumulators must fit the register file with room
 * for two B loads and one broadcast: 6x2+3 = 15 of 16 ymm, 12x2+3 = 27 of 32 zmm, 8x2+3 = 19 of 32 NEON q registers
 * (aarch64: 8 rather than 12 because q tiles of the usual block sizes, 64 and 128, are whole blocks of 8 rows; not
 * timed, as no ARM machine was at hand). */
#if defined(__AVX512F__)
#define MD_W 16
#define MD_MR 12
#define MD_VREGS 32
#elif defined(__AVX2__) && defined(__FMA__)
#define MD_W 8
#define MD_MR 6
#define MD_VREGS 16
#elif defined(__aarch64__) && defined(__ARM_NEON)
#define MD_W 4
#define MD_MR 8
#define MD_VREGS 32
#else
#define MD_W 1
#define MD_MR 4
#define MD_VREGS 16
#endif


#if MD_W == 16
#if defined(__GNUC__) && !defined(__clang__) && __GNUC__ < 13
/* GCC 12's AVX-512 intrinsics trip -Wmaybe-uninitialized on their own `__Y = __Y` placeholders (GCC PR105593). */
#pragma GCC diagnostic ignored "-Wmaybe-uninitialized"
#endif
typedef __m512 md_vf;
MD_INLINE md_vf md_vload(const float* p) { return _mm512_loadu_ps(p); }
MD_INLINE void md_vstore(float* p, md_vf v) { _mm512_storeu_ps(p, v); }
MD_INLINE md_vf md_vset1(float x) { return _mm512_set1_ps(x); }
MD_INLINE md_vf md_vfma(md_vf a, md_vf b, md_vf c) { return _mm512_fmadd_ps(a, b, c); }
MD_INLINE md_vf md_vmul(md_vf a, md_vf b) { return _mm512_mul_ps(a, b); }
MD_INLINE md_vf md_vadd(md_vf a, md_vf b) { return _mm512_add_ps(a, b); }
MD_INLINE md_vf md_vsub(md_vf a, md_vf b) { return _mm512_sub_ps(a, b); }
MD_INLINE md_vf md_vmax(md_vf a, md_vf b) { return _mm512_max_ps(a, b); }
MD_INLINE float md_vhsum(md_vf v) { return _mm512_reduce_add_ps(v); }
MD_INLINE float md_vhmax(md_vf v) { return _mm512_reduce_max_ps(v); }
#elif MD_W == 8
typedef __m256 md_vf;
MD_INLINE md_vf md_vload(const float* p) { return _mm256_loadu_ps(p); }
MD_INLINE void md_vstore(float* p, md_vf v) { _mm256_storeu_ps(p, v); }
MD_INLINE md_vf md_vset1(float x) { return _mm256_set1_ps(x); }
MD_INLINE md_vf md_vfma(md_vf a, md_vf b, md_vf c) { return _mm256_fmadd_ps(a, b, c); }
MD_INLINE md_vf md_vmul(md_vf a, md_vf b) { return _mm256_mul_ps(a, b); }
MD_INLINE md_vf md_vadd(md_vf a, md_vf b) { return _mm256_add_ps(a, b); }
MD_INLINE md_vf md_vsub(md_vf a, md_vf b) { return _mm256_sub_ps(a, b); }
MD_INLINE md_vf md_vmax(md_vf a, md_vf b) { return _mm256_max_ps(a, b); }
MD_INLINE float md_vhsum(md_vf v) {
  __m128 s = _mm_add_ps(_mm256_castps256_ps128(v), _mm256_extractf128_ps(v, 1));
  s = _mm_add_ps(s, _mm_movehl_ps(s, s));
  s = _mm_add_ss(s, _mm_movehdup_ps(s));
  return _mm_cvtss_f32(s);
}
MD_INLINE float md_vhmax(md_vf v) {
  __m128 s = _mm_max_ps(_mm256_castps256_ps128(v), _mm256_extractf128_ps(v, 1));
  s = _mm_max_ps(s, _mm_movehl_ps(s, s));
  s = _mm_max_ss(s, _mm_movehdup_ps(s));
  return _mm_cvtss_f32(s);
}
#elif MD_W == 4
typedef float32x4_t md_vf;
MD_INLINE md_vf md_vload(const float* p) { return vld1q_f32(p); }
MD_INLINE void md_vstore(float* p, md_vf v) { vst1q_f32(p, v); }
MD_INLINE md_vf md_vset1(float x) { return vdupq_n_f32(x); }
MD_INLINE md_vf md_vfma(md_vf a, md_vf b, md_vf c) { return vfmaq_f32(c, a, b); }
MD_INLINE md_vf md_vmul(md_vf a, md_vf b) { return vmulq_f32(a, b); }
MD_INLINE md_vf md_vadd(md_vf a, md_vf b) { return vaddq_f32(a, b); }
MD_INLINE md_vf md_vsub(md_vf a, md_vf b) { return vsubq_f32(a, b); }
MD_INLINE md_vf md_vmax(md_vf a, md_vf b) { return vmaxq_f32(a, b); }
MD_INLINE float md_vhsum(md_vf v) { return vaddvq_f32(v); }
MD_INLINE float md_vhmax(md_vf v) { return vmaxvq_f32(v); }
#else
typedef float md_vf;
MD_INLINE md_vf md_vload(const float* p) { return *p; }
MD_INLINE void md_vstore(float* p, md_vf v) { *p = v; }
MD_INLINE md_vf md_vset1(float x) { return x; }
MD_INLINE md_vf md_vfma(md_vf a, md_vf b, md_vf c) { return fmaf(a, b, c); }
MD_INLINE md_vf md_vmul(md_vf a, md_vf b) { return a * b; }
MD_INLINE md_vf md_vadd(md_vf a, md_vf b) { return a + b; }
MD_INLINE md_vf md_vsub(md_vf a, md_vf b) { return a - b; }
MD_INLINE md_vf md_vmax(md_vf a, md_vf b) { return a > b ? a : b; }
MD_INLINE float md_vhsum(md_vf v) { return v; }
MD_INLINE float md_vhmax(md_vf v) { return v; }
#endif

/* ------------------------------------------------------------------------------------------------------------ */
/* exp. Range-reduced polynomial (Cody-Waite split of ln 2, Cephes degree-6 minimax on [-ln2/2, ln2/2]), about
 * 1 ulp. The input is clamped to [-110, 89] first; 2^n is applied as two factors 2^(n/2) * 2^(n-n/2) (on AVX-512 by
 * one VSCALEFPS, with the same result) so the clamped range needs no special cases: exp(-inf) and anything below
 * about -103.9 round to exactly 0, subnormal results are produced by one final rounding, and inputs above
 * ln(FLT_MAX) give +inf. NaN propagates. */
#define MD_EXP_LO (-110.0f)
#define MD_EXP_HI (89.0f)
#define MD_LOG2E 1.44269504088896341f
#define MD_LN2_HI 0.693359375f
#define MD_LN2_LO (-2.12194440e-4f)
#define MD_EXP_P0 1.9875691500e-4f
#define MD_EXP_P1 1.3981999507e-3f
#define MD_EXP_P2 8.3334519073e-3f
#define MD_EXP_P3 4.1665795894e-2f
#define MD_EXP_P4 1.6666665459e-1f
#define MD_EXP_P5 5.0000001201e-1f

MD_INLINE float md_exp_scalar(float x) {
  /* max/min written so that a NaN input survives the clamp */
  x = x < MD_EXP_LO ? MD_EXP_LO : x;
  x = x > MD_EXP_HI ? MD_EXP_HI : x;
  const float n = nearbyintf(x * MD_LOG2E);
  float r = fmaf(-n, MD_LN2_HI, x);
  r = fmaf(-n, MD_LN2_LO, r);
  float p = MD_EXP_P0;
  p = fmaf(p, r, MD_EXP_P1);
  p = fmaf(p, r, MD_EXP_P2);
  p = fmaf(p, r, MD_EXP_P3);
  p = fmaf(p, r, MD_EXP_P4);
  p = fmaf(p, r, MD_EXP_P5);
  const float y = fmaf(p, r * r, r) + 1.0f;
  if (n != n) return n; /* NaN */
  const int32_t ni = (int32_t)n;
  const int32_t h = ni >> 1;
  const int32_t bits1 = (h + 127) << 23, bits2 = (ni - h + 127) << 23;
  float s1, s2;
  memcpy(&s1, &bits1, 4);
  memcpy(&s2, &bits2, 4);
  return y * s1 * s2;
}

#if MD_W == 16
MD_INLINE md_vf md_vexp(md_vf x) {
  x = _mm512_max_ps(_mm512_set1_ps(MD_EXP_LO), x);
  x = _mm512_min_ps(_mm512_set1_ps(MD_EXP_HI), x);
  const __m512 n = _mm512_roundscale_ps(_mm512_mul_ps(x, _mm512_set1_ps(MD_LOG2E)),
                                        _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC);
  __m512 r = _mm512_fnmadd_ps(n, _mm512_set1_ps(MD_LN2_HI), x);
  r = _mm512_fnmadd_ps(n, _mm512_set1_ps(MD_LN2_LO), r);
  __m512 p = _mm512_set1_ps(MD_EXP_P0);
  p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(MD_EXP_P1));
  p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(MD_EXP_P2));
  p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(MD_EXP_P3));
  p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(MD_EXP_P4));
  p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(MD_EXP_P5));
  const __m512 y = _mm512_add_ps(_mm512_fmadd_ps(p, _mm512_mul_ps(r, r), r), _mm512_set1_ps(1.0f));
  /* y * 2^n in one VSCALEFPS: exact where the result is normal, one rounding where it is subnormal, as the two exact
   * multiplications by 2^(n/2) of the other widths */
  return _mm512_scalef_ps(y, n);
}
#elif MD_W == 8
MD_INLINE md_vf md_vexp(md_vf x) {
  x = _mm256_max_ps(_mm256_set1_ps(MD_EXP_LO), x);
  x = _mm256_min_ps(_mm256_set1_ps(MD_EXP_HI), x);
  const __m256 n = _mm256_round_ps(_mm256_mul_ps(x, _mm256_set1_ps(MD_LOG2E)),
                                   _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC);
  __m256 r = _mm256_fnmadd_ps(n, _mm256_set1_ps(MD_LN2_HI), x);
  r = _mm256_fnmadd_ps(n, _mm256_set1_ps(MD_LN2_LO), r);
  __m256 p = _mm256_set1_ps(MD_EXP_P0);
  p = _mm256_fmadd_ps(p, r, _mm256_set1_ps(MD_EXP_P1));
  p = _mm256_fmadd_ps(p, r, _mm256_set1_ps(MD_EXP_P2));
  p = _mm256_fmadd_ps(p, r, _mm256_set1_ps(MD_EXP_P3));
  p = _mm256_fmadd_ps(p, r, _mm256_set1_ps(MD_EXP_P4));
  p = _mm256_fmadd_ps(p, r, _mm256_set1_ps(MD_EXP_P5));
  const __m256 y = _mm256_add_ps(_mm256_fmadd_ps(p, _mm256_mul_ps(r, r), r), _mm256_set1_ps(1.0f));
  const __m256i ni = _mm256_cvtps_epi32(n);
  const __m256i h = _mm256_srai_epi32(ni, 1);
  const __m256i bias = _mm256_set1_epi32(127);
  const __m256 s1 = _mm256_castsi256_ps(_mm256_slli_epi32(_mm256_add_epi32(h, bias), 23));
  const __m256 s2 = _mm256_castsi256_ps(_mm256_slli_epi32(_mm256_add_epi32(_mm256_sub_epi32(ni, h), bias), 23));
  return _mm256_mul_ps(_mm256_mul_ps(y, s1), s2);
}
#elif MD_W == 4
MD_INLINE md_vf md_vexp(md_vf x) {
  /* vmaxq/vminq return NaN when either input is NaN, so a NaN survives the clamp */
  x = vmaxq_f32(vdupq_n_f32(MD_EXP_LO), x);
  x = vminq_f32(vdupq_n_f32(MD_EXP_HI), x);
  const float32x4_t n = vrndnq_f32(vmulq_f32(x, vdupq_n_f32(MD_LOG2E)));
  float32x4_t r = vfmsq_f32(x, n, vdupq_n_f32(MD_LN2_HI));
  r = vfmsq_f32(r, n, vdupq_n_f32(MD_LN2_LO));
  float32x4_t p = vdupq_n_f32(MD_EXP_P0);
  p = vfmaq_f32(vdupq_n_f32(MD_EXP_P1), p, r);
  p = vfmaq_f32(vdupq_n_f32(MD_EXP_P2), p, r);
  p = vfmaq_f32(vdupq_n_f32(MD_EXP_P3), p, r);
  p = vfmaq_f32(vdupq_n_f32(MD_EXP_P4), p, r);
  p = vfmaq_f32(vdupq_n_f32(MD_EXP_P5), p, r);
  const float32x4_t y = vaddq_f32(vfmaq_f32(r, p, vmulq_f32(r, r)), vdupq_n_f32(1.0f));
  /* n is integral (or NaN, which converts to 0 and leaves y's NaN alone) */
  const int32x4_t ni = vcvtq_s32_f32(n);
  const int32x4_t h = vshrq_n_s32(ni, 1);
  const int32x4_t bias = vdupq_n_s32(127);
  const float32x4_t s1 = vreinterpretq_f32_s32(vshlq_n_s32(vaddq_s32(h, bias), 23));
  const float32x4_t s2 = vreinterpretq_f32_s32(vshlq_n_s32(vaddq_s32(vsubq_s32(ni, h), bias), 23));
  return vmulq_f32(vmulq_f32(y, s1), s2);
}
#else
MD_INLINE md_vf md_vexp(md_vf x) { return md_exp_scalar(x); }
#endif

/* ------------------------------------------------------------------------------------------------------------ */
/* dtype conversions. bf16 -> f32 is exact (bits << 16); f32 -> bf16/fp16 round to nearest even; NaN stays a
 * quiet NaN. fp16 uses F16C when available (on aarch64, NEON's conversion in the vector loads, md_load4) and an exact
 * bit-level fallback otherwise. */
MD_INLINE float md_f32_from_bits(uint32_t u) { float f; memcpy(&f, &u, 4); return f; }
MD_INLINE uint32_t md_bits_from_f32(float f) { uint32_t u; memcpy(&u, &f, 4); return u; }

MD_INLINE float md_bf16_to_f32(uint16_t h) { return md_f32_from_bits((uint32_t)h << 16); }
MD_INLINE uint16_t md_f32_to_bf16(float f) {
  const uint32_t u = md_bits_from_f32(f);
  if ((u & 0x7fffffffu) > 0x7f800000u) return (uint16_t)((u >> 16) | 0x0040u);
  return (uint16_t)((u + 0x7fffu + ((u >> 16) & 1u)) >> 16);
}

MD_INLINE float md_f16_to_f32_exact(uint16_t h) {
  const uint32_t sign = (uint32_t)(h & 0x8000u) << 16;
  const uint32_t exp = (h >> 10) & 0x1fu, man = h & 0x3ffu;
  if (exp == 0x1f) return md_f32_from_bits(sign | 0x7f800000u | (man << 13));
  if (exp != 0) return md_f32_from_bits(sign | ((exp + 112u) << 23) | (man << 13));
  /* zero or subnormal: man * 2^-24, exact in fp32 */
  const float mag = (float)man * 5.9604644775390625e-8f;
  return sign ? -mag : mag;
}
MD_INLINE uint16_t md_f32_to_f16_exact(float f) {
  const uint32_t u = md_bits_from_f32(f);
  const uint16_t sign = (uint16_t)((u >> 16) & 0x8000u);
  const uint32_t a = u & 0x7fffffffu;
  if (a > 0x7f800000u) return (uint16_t)(sign | 0x7e00u | ((a >> 13) & 0x3ffu));
  if (a >= 0x477ff000u) return (uint16_t)(sign | 0x7c00u); /* rounds to >= 65520: inf */
  if (a >= 0x38800000u) {                                   /* normal fp16 */
    const uint32_t r = a + 0xfffu + ((a >> 13) & 1u) - (112u << 23);
    return (uint16_t)(sign | (r >> 13));
  }
  if (a < 0x33000000u) return sign; /* below half the smallest subnormal: +-0 */
  /* subnormal fp16: shift the full significand, round to nearest even on the dropped bits */
  const uint32_t e = a >> 23, m = (a & 0x7fffffu) | 0x800000u;
  const uint32_t shift = 126u - e; /* 14..24 */
  const uint32_t q = m >> shift, rem = m & ((1u << shift) - 1u), half = 1u << (shift - 1u);
  const uint32_t rounded = q + ((rem > half || (rem == half && (q & 1u))) ? 1u : 0u);
  return (uint16_t)(sign | rounded);
}
#if defined(__F16C__)
MD_INLINE float md_f16_to_f32(uint16_t h) { return _cvtsh_ss(h); }
MD_INLINE uint16_t md_f32_to_f16(float f) { return (uint16_t)_cvtss_sh(f, _MM_FROUND_TO_NEAREST_INT); }
#else
MD_INLINE float md_f16_to_f32(uint16_t h) { return md_f16_to_f32_exact(h); }
MD_INLINE uint16_t md_f32_to_f16(float f) { return md_f32_to_f16_exact(f); }
#endif

/* OCP fp8 codes. e5m2 is the top byte of a binary16. e4m3fn's exponent and mantissa fields, moved to those of a
 * binary16 ((c & 0x7f) << 7), denote the value times 2^-8 (bias 15 instead of 7, subnormals included), so one
 * binary16 conversion decodes it exactly in units of 2^-8; it has no infinities and S.1111.111 is NaN.
 * Loads of e4m3fn codes (md_load_elem, md_load8, md_vload_dt) give values in those units: the factor
 * MD_FP8_E4M3FN_UNIT rides with the scales (a kernel multiplies every quantized row's scale by md_kv_unit<DT>()),
 * which keeps a multiply out of the loads. md_e4m3fn_to_f32 is the exact value. */
MD_INLINE uint16_t md_e4m3fn_as_f16_bits(uint8_t c) { return (uint16_t)(((c & 0x80u) << 8) | ((c & 0x7fu) << 7)); }
MD_INLINE float md_e4m3fn_to_f32_units(uint8_t c) {
  return (c & 0x7fu) == 0x7fu ? NAN : md_f16_to_f32_exact(md_e4m3fn_as_f16_bits(c));
}
MD_INLINE float md_e4m3fn_to_f32(uint8_t c) { return md_e4m3fn_to_f32_units(c) * 256.0f; }
#define MD_FP8_E4M3FN_UNIT 256.0f
/* What a loaded element of dtype DT is to be multiplied by: 256 for e4m3fn (above), 1 otherwise. */
template <int DT> MD_INLINE constexpr float md_kv_unit() { return DT == MD_FP8_E4M3FN ? MD_FP8_E4M3FN_UNIT : 1.0f; }
MD_INLINE float md_e5m2_to_f32(uint8_t c) { return md_f16_to_f32_exact((uint16_t)(c << 8)); }

/* float32 -> fp8, round to nearest even; a finite value beyond the largest code saturates to it (+-448 for e4m3fn,
 * +-57344 for e5m2), infinities too for e4m3fn (which has none) while e5m2 keeps them; NaN stays NaN. */
MD_INLINE uint8_t md_f32_to_fp8(float f, int exp_bits, int man_bits, int max_exp_field, uint32_t max_man) {
  const uint32_t u = md_bits_from_f32(f);
  const uint8_t sign = (uint8_t)((u >> 24) & 0x80u);
  const uint32_t a = u & 0x7fffffffu;
  const int bias = (1 << (exp_bits - 1)) - 1;
  const uint8_t max_code = (uint8_t)(((uint32_t)max_exp_field << man_bits) | max_man);
  if (a > 0x7f800000u) return (uint8_t)(sign | 0x7fu); /* NaN: e4m3fn's S.1111.111, a NaN of e5m2 too */
  if (a == 0x7f800000u && exp_bits == 5) return (uint8_t)(sign | 0x7cu);
  if (a >= 0x7f800000u) return (uint8_t)(sign | max_code);
  const int e = (int)(a >> 23) - 127; /* unbiased exponent of a normal float32 (float32 subnormals round to 0 below) */
  int field = e + bias;
  uint32_t code;
  if (field >= 1) {
    /* normal: keep man_bits of the 23, round to nearest even; a carry moves to the next exponent */
    const int shift = 23 - man_bits;
    const uint32_t m = a & 0x7fffffu, kept = m >> shift, rest = m & ((1u << shift) - 1u), half = 1u << (shift - 1);
    code = ((uint32_t)field << man_bits) + kept + ((rest > half || (rest == half && (kept & 1u))) ? 1u : 0u);
  } else {
    /* subnormal: units of 2^(1 - bias - man_bits) */
    const int shift = 23 - man_bits + (1 - field);
    if (shift > 24 || (a >> 23) == 0) return sign;
    const uint32_t m = (a & 0x7fffffu) | 0x800000u, kept = m >> shift, rest = m & ((1u << shift) - 1u), half = 1u << (shift - 1);
    code = kept + ((rest > half || (rest == half && (kept & 1u))) ? 1u : 0u);
  }
  if (code > max_code) code = max_code;
  return (uint8_t)(sign | code);
}
MD_INLINE uint8_t md_f32_to_e4m3fn(float f) { return md_f32_to_fp8(f, 4, 3, 15, 6); }
MD_INLINE uint8_t md_f32_to_e5m2(float f) { return md_f32_to_fp8(f, 5, 2, 30, 3); }

template <int DT> MD_INLINE float md_load_elem(const void* p, int64_t i) {
  if constexpr (DT == MD_FLOAT32) return ((const float*)p)[i];
  else if constexpr (DT == MD_BFLOAT16) return md_bf16_to_f32(((const uint16_t*)p)[i]);
  else if constexpr (DT == MD_FLOAT16) return md_f16_to_f32(((const uint16_t*)p)[i]);
  else if constexpr (DT == MD_INT8) return (float)((const int8_t*)p)[i];
  else if constexpr (DT == MD_FP8_E4M3FN) return md_e4m3fn_to_f32_units(((const uint8_t*)p)[i]);
  else return md_e5m2_to_f32(((const uint8_t*)p)[i]);
}
template <int DT> MD_INLINE void md_store_elem(void* p, int64_t i, float x) {
  if constexpr (DT == MD_FLOAT32) ((float*)p)[i] = x;
  else if constexpr (DT == MD_BFLOAT16) ((uint16_t*)p)[i] = md_f32_to_bf16(x);
  else ((uint16_t*)p)[i] = md_f32_to_f16(x);
}
/* p[0..n) = x[0..n) * mul in DT. fp16 eight at a time where F16C converts vectors: the same products and the same
 * rounding as md_store_elem's one at a time, which g++ leaves scalar (bit-identical outputs). As md_finalize_row's
 * store, fp16 decode, kv 16, D 128, 2 threads: G 4 8.4 -> 6.9 us a call, G 1 5.3 -> 4.8, G 4 B 4 25.4 -> 18.9 (bf16
 * G 4: 6.5). */
template <int DT> MD_INLINE void md_store_scaled(void* p, const float* x, int64_t n, float mul) {
  int64_t i = 0;
#if defined(__F16C__)
  if constexpr (DT == MD_FLOAT16) {
    const __m256 m = _mm256_set1_ps(mul);
    for (; i + 8 <= n; i += 8)
      _mm_storeu_si128((__m128i*)((uint16_t*)p + i), _mm256_cvtps_ph(_mm256_mul_ps(_mm256_loadu_ps(x + i), m), _MM_FROUND_TO_NEAREST_INT));
  }
#endif
  for (; i < n; ++i) md_store_elem<DT>(p, i, x[i] * mul);
}

#if defined(__AVX2__)
/* e4m3fn codes as binary16 in units of 2^-8 (md_kv_unit), from h0 = (int16)(int8)code << 7 per 16-bit lane: the
 * sign lands at bits 15 and 14 and c6..c0 (exponent, mantissa) at bits 13..7, so clearing bit 14 gives the binary16
 * of the value (a subnormal code a subnormal binary16, exactly). The NaN codes S.1111.111 are the ones whose bits
 * 13..7 are all set; adding 0x80 to those bits carries into bit 14 exactly then, which turns the exponent into
 * 11111: binary16 NaN. No compare, no blend. */
MD_INLINE __m128i md_e4m3fn_as_f16(__m128i h0) {
  const __m128i carry = _mm_add_epi16(_mm_and_si128(h0, _mm_set1_epi16(0x3f80)), _mm_set1_epi16(0x0080));
  return _mm_or_si128(_mm_and_si128(h0, _mm_set1_epi16((short)0xbf80)), _mm_and_si128(carry, _mm_set1_epi16(0x4000)));
}
MD_INLINE __m256i md_e4m3fn_as_f16(__m256i h0) {
  const __m256i carry = _mm256_add_epi16(_mm256_and_si256(h0, _mm256_set1_epi16(0x3f80)), _mm256_set1_epi16(0x0080));
#if defined(__AVX512VL__)
  /* bitwise select: h0 where 0xbf80 has a bit, carry elsewhere (bit 14; carry's bits 6..0 are zero) */
  return _mm256_ternarylogic_epi32(h0, carry, _mm256_set1_epi16((short)0xbf80), 0xe4);
#else
  return _mm256_or_si256(_mm256_and_si256(h0, _mm256_set1_epi16((short)0xbf80)), _mm256_and_si256(carry, _mm256_set1_epi16(0x4000)));
#endif
}

/* Eight fp8 codes at p, widened to 16-bit lanes. */
MD_INLINE __m128i md_load8_u8_as_u16(const void* p) { return _mm_cvtepu8_epi16(_mm_loadl_epi64((const __m128i*)p)); }

/* Eight consecutive elements of a row as fp32. */
template <int DT> MD_INLINE __m256 md_load8(const void* p, int64_t i) {
  if constexpr (DT == MD_FLOAT32) return _mm256_loadu_ps((const float*)p + i);
  else if constexpr (DT == MD_INT8) return _mm256_cvtepi32_ps(_mm256_cvtepi8_epi32(_mm_loadl_epi64((const __m128i*)((const int8_t*)p + i))));
  else if constexpr (DT == MD_FP8_E4M3FN || DT == MD_FP8_E5M2) {
#if defined(__F16C__)
    const __m128i c = md_load8_u8_as_u16((const uint8_t*)p + i);
    if constexpr (DT == MD_FP8_E5M2) return _mm256_cvtph_ps(_mm_slli_epi16(c, 8));
    /* (int8)c << 7 puts c6..c0 at bits 13..7 and the sign at bits 15..14; clearing bit 14 leaves the binary16 (see
     * md_e4m3fn_as_f16) */
    return _mm256_cvtph_ps(md_e4m3fn_as_f16(_mm_slli_epi16(_mm_srai_epi16(_mm_slli_epi16(c, 8), 8), 7)));
#else
    float t[8];
    for (int k = 0; k < 8; ++k) t[k] = md_load_elem<DT>(p, i + k);
    return _mm256_loadu_ps(t);
#endif
  } else if constexpr (DT == MD_BFLOAT16) {
    const __m128i h = _mm_loadu_si128((const __m128i*)((const uint16_t*)p + i));
    return _mm256_castsi256_ps(_mm256_slli_epi32(_mm256_cvtepu16_epi32(h), 16));
  } else {
#if defined(__F16C__)
    return _mm256_cvtph_ps(_mm_loadu_si128((const __m128i*)((const uint16_t*)p + i)));
#else
    float t[8];
    for (int k = 0; k < 8; ++k) t[k] = md_f16_to_f32_exact(((const uint16_t*)p)[i + k]);
    return _mm256_loadu_ps(t);
#endif
  }
}

/* In-register transpose of the 8x8 block r[0..8). */
MD_INLINE void md_transpose8(__m256 r[8]) {
  const __m256 t0 = _mm256_unpacklo_ps(r[0], r[1]), t1 = _mm256_unpackhi_ps(r[0], r[1]);
  const __m256 t2 = _mm256_unpacklo_ps(r[2], r[3]), t3 = _mm256_unpackhi_ps(r[2], r[3]);
  const __m256 t4 = _mm256_unpacklo_ps(r[4], r[5]), t5 = _mm256_unpackhi_ps(r[4], r[5]);
  const __m256 t6 = _mm256_unpacklo_ps(r[6], r[7]), t7 = _mm256_unpackhi_ps(r[6], r[7]);
  const __m256 u0 = _mm256_shuffle_ps(t0, t2, _MM_SHUFFLE(1, 0, 1, 0));
  const __m256 u1 = _mm256_shuffle_ps(t0, t2, _MM_SHUFFLE(3, 2, 3, 2));
  const __m256 u2 = _mm256_shuffle_ps(t1, t3, _MM_SHUFFLE(1, 0, 1, 0));
  const __m256 u3 = _mm256_shuffle_ps(t1, t3, _MM_SHUFFLE(3, 2, 3, 2));
  const __m256 u4 = _mm256_shuffle_ps(t4, t6, _MM_SHUFFLE(1, 0, 1, 0));
  const __m256 u5 = _mm256_shuffle_ps(t4, t6, _MM_SHUFFLE(3, 2, 3, 2));
  const __m256 u6 = _mm256_shuffle_ps(t5, t7, _MM_SHUFFLE(1, 0, 1, 0));
  const __m256 u7 = _mm256_shuffle_ps(t5, t7, _MM_SHUFFLE(3, 2, 3, 2));
  r[0] = _mm256_permute2f128_ps(u0, u4, 0x20);
  r[1] = _mm256_permute2f128_ps(u1, u5, 0x20);
  r[2] = _mm256_permute2f128_ps(u2, u6, 0x20);
  r[3] = _mm256_permute2f128_ps(u3, u7, 0x20);
  r[4] = _mm256_permute2f128_ps(u0, u4, 0x31);
  r[5] = _mm256_permute2f128_ps(u1, u5, 0x31);
  r[6] = _mm256_permute2f128_ps(u2, u6, 0x31);
  r[7] = _mm256_permute2f128_ps(u3, u7, 0x31);
}
#endif

#if MD_W == 4
/* e4m3fn codes as binary16 in units of 2^-8, from h0 = (int16)(int8)code << 7 per 16-bit lane: the AVX2
 * md_e4m3fn_as_f16 above, with one bitwise select (h0 where 0xbf80 has a bit, else the carry, whose bits 6..0 are
 * zero). */
MD_INLINE uint16x4_t md_e4m3fn_as_f16(uint16x4_t h0) {
  const uint16x4_t carry = vadd_u16(vand_u16(h0, vdup_n_u16(0x3f80)), vdup_n_u16(0x0080));
  return vbsl_u16(vdup_n_u16(0xbf80), h0, carry);
}

/* Four 8-bit codes at p in the low lanes (the high four repeat them). */
MD_INLINE uint8x8_t md_load4_u8(const void* p) {
  uint32_t w;
  memcpy(&w, p, 4);
  return vreinterpret_u8_u32(vdup_n_u32(w));
}

/* Four consecutive elements of a row as fp32. */
template <int DT> MD_INLINE float32x4_t md_load4(const void* p, int64_t i) {
  if constexpr (DT == MD_FLOAT32) return vld1q_f32((const float*)p + i);
  else if constexpr (DT == MD_INT8) {
    const int16x8_t w = vmovl_s8(vreinterpret_s8_u8(md_load4_u8((const int8_t*)p + i)));
    return vcvtq_f32_s32(vmovl_s16(vget_low_s16(w)));
  } else if constexpr (DT == MD_FP8_E5M2) {
    return vcvt_f32_f16(vreinterpret_f16_u16(vget_low_u16(vshll_n_u8(md_load4_u8((const uint8_t*)p + i), 8))));
  } else if constexpr (DT == MD_FP8_E4M3FN) {
    const int16x4_t h0 = vshl_n_s16(vget_low_s16(vmovl_s8(vreinterpret_s8_u8(md_load4_u8((const uint8_t*)p + i)))), 7);
    return vcvt_f32_f16(vreinterpret_f16_u16(md_e4m3fn_as_f16(vreinterpret_u16_s16(h0))));
  } else if constexpr (DT == MD_BFLOAT16) {
    return vreinterpretq_f32_u32(vshll_n_u16(vld1_u16((const uint16_t*)p + i), 16));
  } else {
    return vcvt_f32_f16(vreinterpret_f16_u16(vld1_u16((const uint16_t*)p + i)));
  }
}

/* In-register transpose of the 4x4 block r[0..4). */
MD_INLINE void md_transpose4(float32x4_t r[4]) {
  const float32x4_t t0 = vtrn1q_f32(r[0], r[1]), t1 = vtrn2q_f32(r[0], r[1]);
  const float32x4_t t2 = vtrn1q_f32(r[2], r[3]), t3 = vtrn2q_f32(r[2], r[3]);
  r[0] = vreinterpretq_f32_f64(vtrn1q_f64(vreinterpretq_f64_f32(t0), vreinterpretq_f64_f32(t2)));
  r[1] = vreinterpretq_f32_f64(vtrn1q_f64(vreinterpretq_f64_f32(t1), vreinterpretq_f64_f32(t3)));
  r[2] = vreinterpretq_f32_f64(vtrn2q_f64(vreinterpretq_f64_f32(t0), vreinterpretq_f64_f32(t2)));
  r[3] = vreinterpretq_f32_f64(vtrn2q_f64(vreinterpretq_f64_f32(t1), vreinterpretq_f64_f32(t3)));
}
#endif

/* The conversion vector the packing loops below are written against: MD_CW elements of a row as fp32 (md_cload),
 * stored (md_cstore), and an MD_CW x MD_CW in-register transpose (md_ctranspose). 8 lanes on AVX2 and AVX-512 (an
 * AVX-512 build packs with the 8-wide loads, whose 16-bit and 8-bit sources fit one xmm), 4 on NEON; MD_CW 1 where
 * there is none, and the loops' scalar tails do everything. */
#if defined(__AVX2__)
#define MD_CW 8
typedef __m256 md_cv;
template <int DT> MD_INLINE md_cv md_cload(const void* p, int64_t i) { return md_load8<DT>(p, i); }
MD_INLINE void md_cstore(float* p, md_cv v) { _mm256_storeu_ps(p, v); }
MD_INLINE void md_ctranspose(md_cv r[MD_CW]) { md_transpose8(r); }
#elif MD_W == 4
#define MD_CW 4
typedef float32x4_t md_cv;
template <int DT> MD_INLINE md_cv md_cload(const void* p, int64_t i) { return md_load4<DT>(p, i); }
MD_INLINE void md_cstore(float* p, md_cv v) { vst1q_f32(p, v); }
MD_INLINE void md_ctranspose(md_cv r[MD_CW]) { md_transpose4(r); }
#else
#define MD_CW 1
#endif

/* dst[0..n) = src[0..n) as fp32. */
template <int DT> MD_INLINE void md_load_row(const void* src, float* dst, int64_t n) {
#if MD_CW > 1
  const int64_t whole = n / MD_CW * MD_CW;
  for (int64_t d = 0; d < whole; d += MD_CW) md_cstore(dst + d, md_cload<DT>(src, d));
#else
  const int64_t whole = 0;
#endif
  for (int64_t d = whole; d < n; ++d) dst[d] = md_load_elem<DT>(src, d);
}

/* ------------------------------------------------------------------------------------------------------------ */
/* Packing. Rows arrive as pointers (the generated kernel resolves batch, head, paging and tails into them); a NULL
 * row reads as zeros. That keeps paged and dense caches, and every dtype, on one code path.
 *
 * Packed B operands use a panel layout: the columns (ncols, a multiple of MD_W) are cut into strips of 2W (the
 * last one W wide when ncols % 2W == W), each strip stored row-major [k][width] after the previous one. A strip is
 * then one contiguous stream for the micro-kernel: no cache-set aliasing from power-of-two row strides, and the
 * hardware prefetcher sees a single sequential walk. */
MD_INLINE int64_t md_panel_index(int64_t row, int64_t col, int64_t k, int64_t ncols) {
  const int64_t c0 = col / (2 * MD_W) * (2 * MD_W);
  const int64_t width = md_min(2 * MD_W, ncols - c0);
  return c0 * k + row * width + (col - c0);
}

/* V-style packing: row j of the panel matrix [n x LD] is row_j[0..DIM) followed by zeros up to LD (LD a multiple
 * of MD_W), so padded columns of the product stay finite. */
template <int DT, int64_t DIM, int64_t LD>
MD_INLINE void md_pack_rows(const void* const* rows, int64_t n, float* dst) {
  static_assert(LD % MD_W == 0 && LD >= DIM, "LD must be DIM rounded up to the SIMD width");
  for (int64_t j = 0; j < n; ++j) {
    const void* src = rows[j];
    int64_t d = 0;
    if (src) {
#if MD_CW > 1
      for (; d + MD_CW <= DIM; d += MD_CW) md_cstore(dst + md_panel_index(j, d, n, LD), md_cload<DT>(src, d));
#endif
      for (; d < DIM; ++d) dst[md_panel_index(j, d, n, LD)] = md_load_elem<DT>(src, d);
    }
    for (; d < LD; ++d) dst[md_panel_index(j, d, n, LD)] = 0.0f;
  }
}

/* K-style packing, transposed: the panel matrix [DIM x ncols] holds row_j[d] at (d, j) for j < n and zeros for
 * n <= j < ncols (ncols = n rounded up to MD_W), the B operand of S = Q K^T. */
template <int DT, int64_t DIM>
MD_INLINE void md_pack_rows_transposed(const void* const* rows, int64_t n, float* dst) {
  const int64_t ncols = md_round_up(n, MD_W);
  int64_t j = 0;
#if MD_CW > 1
  for (; j + MD_CW <= n; j += MD_CW) {
    bool dense = true;
    for (int k = 0; k < MD_CW; ++k) dense = dense && rows[j + k] != nullptr;
    if (!dense) break;
    int64_t d = 0;
    for (; d + MD_CW <= DIM; d += MD_CW) {
      md_cv r[MD_CW];
      for (int k = 0; k < MD_CW; ++k) r[k] = md_cload<DT>(rows[j + k], d);
      md_ctranspose(r);
      for (int k = 0; k < MD_CW; ++k) md_cstore(dst + md_panel_index(d + k, j, DIM, ncols), r[k]);
    }
    /* (a tail only when DIM is not a multiple of MD_CW: left in, g++ -O3 warns that the dead loop would overflow) */
    if constexpr (DIM % MD_CW != 0)
      for (; d < DIM; ++d)
        for (int k = 0; k < MD_CW; ++k) dst[md_panel_index(d, j + k, DIM, ncols)] = md_load_elem<DT>(rows[j + k], d);
  }
#endif
  for (; j < n; ++j) {
    const void* src = rows[j];
    for (int64_t d = 0; d < DIM; ++d) dst[md_panel_index(d, j, DIM, ncols)] = src ? md_load_elem<DT>(src, d) : 0.0f;
  }
  for (; j < ncols; ++j)
    for (int64_t d = 0; d < DIM; ++d) dst[md_panel_index(d, j, DIM, ncols)] = 0.0f;
}

/* ------------------------------------------------------------------------------------------------------------ */
/* Register-blocked micro-GEMM: C[MR x NV*W] = (row_scale ? C * row_scale[r] : 0) + A[MR x k] * B[k x NV*W].
 * A is row-major (lda), broadcast one element at a time; B is one panel strip (row stride NV*W). Used for both
 * S = Q K^T (A = Q, B = K^T, overwrite) and O = O * alpha + P V (A = P, B = V, rescale-accumulate). */
template <int MR, int NV>
MD_INLINE void md_micro_gemm(const float* __restrict a, int64_t lda, const float* __restrict b, float* __restrict c,
                             int64_t ldc, int64_t k, const float* __restrict row_scale) {
  md_vf acc[MR][NV];
  if (row_scale) {
    for (int r = 0; r < MR; ++r) {
      const md_vf s = md_vset1(row_scale[r]);
      for (int v = 0; v < NV; ++v) acc[r][v] = md_vmul(md_vload(c + r * ldc + v * MD_W), s);
    }
  } else {
    for (int r = 0; r < MR; ++r)
      for (int v = 0; v < NV; ++v) acc[r][v] = md_vset1(0.0f);
  }
  for (int64_t p = 0; p < k; ++p) {
    md_vf bv[NV];
    for (int v = 0; v < NV; ++v) bv[v] = md_vload(b + p * (NV * MD_W) + v * MD_W);
    for (int r = 0; r < MR; ++r) {
      const md_vf av = md_vset1(a[r * lda + p]);
      for (int v = 0; v < NV; ++v) acc[r][v] = md_vfma(av, bv[v], acc[r][v]);
    }
  }
  for (int r = 0; r < MR; ++r)
    for (int v = 0; v < NV; ++v) md_vstore(c + r * ldc + v * MD_W, acc[r][v]);
}

/* The k terms of an A row that cover positions [0, n): one per position for fp32 operands. */
MD_INLINE constexpr int64_t md_k_terms(const float*, int64_t n) { return n; }

#if MD_W == 16
/* 16 8-bit K/V codes as fp32 (e4m3fn in the units of md_kv_unit): the one AVX-512 conversion of each 8-bit format,
 * for md_vload_dt and the bf16 pair packing. */
template <int DT> MD_INLINE __m512 md_codes16_ps(__m128i bytes) {
  static_assert(DT == MD_INT8 || DT == MD_FP8_E4M3FN || DT == MD_FP8_E5M2, "8-bit codes only");
  if constexpr (DT == MD_INT8) return _mm512_cvtepi32_ps(_mm512_cvtepi8_epi32(bytes));
  else if constexpr (DT == MD_FP8_E5M2) return _mm512_cvtph_ps(_mm256_slli_epi16(_mm256_cvtepu8_epi16(bytes), 8));
  else return _mm512_cvtph_ps(md_e4m3fn_as_f16(_mm256_slli_epi16(_mm256_cvtepi8_epi16(bytes), 7)));
}
#endif

#if defined(__AVX512BF16__) && !defined(MD_NO_BF16_DOT)
/* ------------------------------------------------------------------------------------------------------------ */
/* bf16 dot products (AVX512-BF16). VDPBF16PS adds to each fp32 lane the products of a pair of bf16 elements,
 * c[i] += a[2i] b[2i] + a[2i+1] b[2i+1]: the work of two FMAs in one instruction. The products are exact in fp32 and
 * the two additions round like two FMAs; unlike FMA it treats bf16 subnormal inputs as zero and flushes subnormal
 * results to zero. Both operands hold their pairs along the summed dimension as one 32-bit word (the lower element
 * in the low half), so the packed operands are uint32_t words and k counts pairs:
 *   - A rows: a bf16 row as it is (word p = elements 2p, 2p + 1), Q rows copied, P rows rounded from fp32;
 *   - B panels (md_panel_index over words): K^T holds word p of key row j at (p, j), a transpose of words with no
 *     conversion; V holds rows 2p and 2p + 1 interleaved at (p, c).
 * An odd count ends with a zero element. 8-bit K/V codes (int8, e4m3fn, e5m2) are bf16 values exactly (at most 8
 * significant bits, exponents well inside bf16's), so their panels are the same words, converted while packing.
 * MD_NO_BF16_DOT leaves this out (the fp32 FMA path then runs, as on CPUs without the instructions). */
#define MD_BF16_DOT 1

MD_INLINE constexpr int64_t md_pairs(int64_t n) { return (n + 1) / 2; }
MD_INLINE constexpr int64_t md_k_terms(const uint32_t*, int64_t n) { return md_pairs(n); }

/* Element i of a bf16 row, or of a row of 8-bit codes, as bf16 bits (exact, see above). */
template <int DT> MD_INLINE uint32_t md_bf16_bits(const void* row, int64_t i) {
  if constexpr (DT == MD_BFLOAT16) return ((const uint16_t*)row)[i];
  else return md_f32_to_bf16(md_load_elem<DT>(row, i));
}

/* Word p of a row of DIM elements: elements 2p and 2p + 1 as bf16 (zero past the row). */
template <int DT, int64_t DIM> MD_INLINE uint32_t md_pair_word(const void* row, int64_t p) {
  return md_bf16_bits<DT>(row, 2 * p) | (2 * p + 1 < DIM ? md_bf16_bits<DT>(row, 2 * p + 1) << 16 : 0u);
}

/* Elements i .. i + 15 of a row as bf16 in 16-bit lanes, the lanes of m read and the others zero: a bf16 row's own
 * bits, or 8-bit codes converted (md_codes16_ps, then to bf16, which rounds nothing). */
template <int DT> MD_INLINE __m256i md_bf16x16(const void* row, int64_t i, __mmask16 m = (__mmask16)0xffff) {
  if constexpr (DT == MD_BFLOAT16) return _mm256_maskz_loadu_epi16(m, (const uint16_t*)row + i);
  else return (__m256i)_mm512_cvtneps_pbh(md_codes16_ps<DT>(_mm_maskz_loadu_epi8(m, (const uint8_t*)row + i)));
}

/* dst[0 .. md_pairs(DIM)) = a bf16 row as pairs (NULL: zeros). */
template <int64_t DIM> MD_INLINE void md_pack_pairs_row(const void* row, uint32_t* dst) {
  if (!row) {
    memset(dst, 0, (size_t)md_pairs(DIM) * sizeof(uint32_t));
    return;
  }
  /* the row's own bytes: element 2p is the low half of word p on a little-endian CPU */
  memcpy(dst, row, (size_t)(DIM / 2) * sizeof(uint32_t));
  if (DIM % 2) dst[DIM / 2] = md_pair_word<MD_BFLOAT16, DIM>(row, DIM / 2);
}

/* K-style packing in pairs: the panel matrix [md_pairs(DIM) x ncols] of words holds word p of row j at (p, j) for
 * j < n and zeros for n <= j < ncols (ncols = n rounded up to MD_W). Eight rows at a time by an 8 x 8 transpose of
 * words; a NULL row reads as zeros. */
template <int DT, int64_t DIM>
MD_INLINE void md_pack_pairs_transposed(const void* const* rows, int64_t n, uint32_t* dst) {
  constexpr int64_t np = md_pairs(DIM), whole = DIM / 16 * 8; /* words in whole 8-word loads */
  const int64_t ncols = md_round_up(n, MD_W);
  int64_t j = 0;
  for (; j + 8 <= n; j += 8) {
    bool dense = true;
    for (int k = 0; k < 8; ++k) dense = dense && rows[j + k] != nullptr;
    if (!dense) break;
    int64_t p = 0;
    for (; p < whole; p += 8) {
      __m256 r[8];
      for (int k = 0; k < 8; ++k) r[k] = _mm256_castsi256_ps(md_bf16x16<DT>(rows[j + k], 2 * p));
      md_transpose8(r);
      for (int k = 0; k < 8; ++k) _mm256_storeu_ps((float*)dst + md_panel_index(p + k, j, np, ncols), r[k]);
    }
    for (; p < np; ++p)
      for (int k = 0; k < 8; ++k) dst[md_panel_index(p, j + k, np, ncols)] = md_pair_word<DT, DIM>(rows[j + k], p);
  }
  for (; j < n; ++j)
    for (int64_t p = 0; p < np; ++p)
      dst[md_panel_index(p, j, np, ncols)] = rows[j] ? md_pair_word<DT, DIM>(rows[j], p) : 0u;
  for (; j < ncols; ++j)
    for (int64_t p = 0; p < np; ++p) dst[md_panel_index(p, j, np, ncols)] = 0u;
}

/* The first `count` of 16 lanes (count may be <= 0 or >= 16). */
MD_INLINE __mmask16 md_lanes16(int64_t count) {
  return count >= 16 ? (__mmask16)0xffff : count <= 0 ? (__mmask16)0 : (__mmask16)((1u << count) - 1u);
}

/* The VPERMT2W index that interleaves two rows' 16 elements into 16 pairs: 16-bit element 2i of the result is element
 * i of the first operand, element 2i + 1 that of the second (index 32 + i selects the second operand). */
MD_INLINE __m512i md_interleave16() {
  alignas(64) static const uint16_t interleave[32] = {0, 32, 1, 33, 2, 34, 3, 35, 4, 36, 5, 37, 6, 38, 7, 39,
                                                      8, 40, 9, 41, 10, 42, 11, 43, 12, 44, 13, 45, 14, 46, 15, 47};
  return _mm512_load_si512(interleave);
}

/* V-style packing in pairs: the panel matrix [md_pairs(n) x LD] of words holds (row 2p, row 2p + 1) at column c, with
 * zeros past DIM, for a missing last row (odd n) and for NULL rows; with k_rows above md_pairs(n) the matrix has
 * k_rows rows, the extra ones zero (AMX tiles take k in whole tiles). Returns false when a packed element is inf or
 * NaN (the caller then takes the fp32 path, which keeps them away from weights of 0). */
template <int DT, int64_t DIM, int64_t LD>
MD_INLINE bool md_pack_pairs_interleaved(const void* const* rows, int64_t n, uint32_t* dst, int64_t k_rows = 0) {
  static_assert(LD % 16 == 0 && LD >= DIM, "LD must be DIM rounded up to 16");
  const int64_t np = md_max(md_pairs(n), k_rows);
  const __m512i idx = md_interleave16();
  const __m512i exponent = _mm512_set1_epi16(0x7f80);
  __mmask32 nonfinite = 0;
  for (int64_t p = 0; p < np; ++p) {
    const void* r0 = 2 * p < n ? rows[2 * p] : nullptr;
    const void* r1 = 2 * p + 1 < n ? rows[2 * p + 1] : nullptr;
    for (int64_t c = 0; c < LD; c += 16) {
      const __mmask16 m = md_lanes16(DIM - c);
      const __m256i e = r0 ? md_bf16x16<DT>(r0, c, m) : _mm256_setzero_si256();
      const __m256i o = r1 ? md_bf16x16<DT>(r1, c, m) : _mm256_setzero_si256();
      const __m512i w = _mm512_permutex2var_epi16(_mm512_castsi256_si512(e), idx, _mm512_castsi256_si512(o));
      nonfinite |= _mm512_cmpeq_epi16_mask(_mm512_and_si512(w, exponent), exponent);
      _mm512_storeu_si512(dst + md_panel_index(p, c, np, LD), w);
    }
  }
  return nonfinite == 0;
}

/* Weights p (times col_scale[j] when given: the fp32 product, as md_scale_columns stores it) rounded to bf16 (nearest
 * even) into out[0..n), with a zero at out[n] for an odd n: bf16 pairs for P V. As an output of md_softmax_row, vec
 * rounds each vector of p as the softmax computes it, without storing it as fp32 and reading it back (bf16 prefill: a
 * tile of scores is 64 KB, more than L1 holds); end rounds s[from..n), which it reads no further than n. */
struct md_p_as_pairs {
  uint16_t* out;
  const float* col_scale;
  void vec(float*, int64_t j, __m512 p) const {
    if (col_scale) p = _mm512_mul_ps(p, _mm512_loadu_ps(col_scale + j));
    _mm256_storeu_si256((__m256i*)(out + j), (__m256i)_mm512_cvtneps_pbh(p));
  }
  void end(const float* s, int64_t from, int64_t n) const {
    for (int64_t j = from; j < n; j += 16) {
      __m512 p = _mm512_maskz_loadu_ps(md_lanes16(n - j), s + j);
      if (col_scale) p = _mm512_mul_ps(p, _mm512_maskz_loadu_ps(md_lanes16(n - j), col_scale + j));
      _mm256_mask_storeu_epi16(out + j, (__mmask16)md_lanes16(n - j), (__m256i)_mm512_cvtneps_pbh(p));
    }
    if (n % 2) out[n] = 0;
  }
};

/* dst[i][0 .. md_pairs(n)) = s[i][0..n) (times col_scale) rounded to bf16 pairs, for i < rows (md_p_as_pairs). */
MD_INLINE void md_round_pairs(const float* s, int64_t lds, int64_t rows, int64_t n, uint32_t* dst, int64_t ldd,
                              const float* col_scale = nullptr) {
  for (int64_t i = 0; i < rows; ++i) md_p_as_pairs{(uint16_t*)(dst + i * ldd), col_scale}.end(s + i * lds, 0, n);
}

/* md_micro_gemm on bf16 pairs: A rows and B strips of words, k pairs, fp32 accumulators. */
template <int MR, int NV>
MD_INLINE void md_micro_gemm(const uint32_t* __restrict a, int64_t lda, const uint32_t* __restrict b,
                             float* __restrict c, int64_t ldc, int64_t k, const float* __restrict row_scale) {
  __m512 acc[MR][NV];
  if (row_scale) {
    for (int r = 0; r < MR; ++r) {
      const __m512 s = _mm512_set1_ps(row_scale[r]);
      for (int v = 0; v < NV; ++v) acc[r][v] = _mm512_mul_ps(_mm512_loadu_ps(c + r * ldc + v * 16), s);
    }
  } else {
    for (int r = 0; r < MR; ++r)
      for (int v = 0; v < NV; ++v) acc[r][v] = _mm512_setzero_ps();
  }
  for (int64_t p = 0; p < k; ++p) {
    __m512bh bv[NV];
    for (int v = 0; v < NV; ++v) bv[v] = (__m512bh)_mm512_loadu_si512(b + p * (NV * 16) + v * 16);
    for (int r = 0; r < MR; ++r) {
      const __m512bh av = (__m512bh)_mm512_set1_epi32((int)a[r * lda + p]);
      for (int v = 0; v < NV; ++v) acc[r][v] = _mm512_dpbf16_ps(acc[r][v], av, bv[v]);
    }
  }
  for (int r = 0; r < MR; ++r)
    for (int v = 0; v < NV; ++v) _mm512_storeu_ps(c + r * ldc + v * 16, acc[r][v]);
}
#endif /* AVX512-BF16 */

#if defined(MD_BF16_DOT) && defined(__AMX_TILE__) && defined(__AMX_BF16__) && defined(__linux__) && !defined(MD_NO_AMX)
/* ------------------------------------------------------------------------------------------------------------ */
/* AMX-BF16 tiles (Intel Sapphire Rapids and later). TDPBF16PS multiplies a 16 x 32 bf16 tile by a 32 x 16 one into
 * 16 x 16 fp32 accumulators, the products of pairs added as VDPBF16PS adds them (subnormal bf16 inputs and results
 * read and written as zero): on a 2-core Sapphire Rapids VM it ran 3 TFLOP/s on one core against 0.11 for VDPBF16PS
 * and 0.21 for fp32 FMA. Its operands are the ones the bf16 dot products above already pack: A rows of pairs (a
 * 16-row tile is 16 pairs, 64 bytes, of each row) and B panels of md_panel_index, whose rows of pairs (p, c .. c+15)
 * are one tile row, 64 bytes, at the panel's width apart. Every tile is 16 x 64 bytes, so one configuration serves
 * all; what a product reads past its operands' real extent is padding the caller provides: A rows up to a multiple of
 * 16 (scratch rows whose products are never read) and k up to a multiple of 16 pairs (zero words in A and B).
 * Linux hands out the tile registers to a process only on request (arch_prctl ARCH_REQ_XCOMP_PERM); where that is
 * refused, md_amx_ready() is false and the callers take the VDPBF16PS path. MD_NO_AMX leaves this out. */
#define MD_AMX 1
#include <sys/syscall.h>
#include <unistd.h>

/* Whether this process may use the tile registers: asked once (ARCH_REQ_XCOMP_PERM = 0x1023 for XFEATURE_XTILEDATA
 * = 18; the permission is the whole process's). */
static inline bool md_amx_ready() {
  static const bool ready = syscall(SYS_arch_prctl, 0x1023, 18) == 0;
  return ready;
}

/* Loads the one tile configuration (palette 1, eight tiles of 16 rows x 64 bytes) into this thread; md_amx_end()
 * releases the tiles (the thread's AMX state returns to its initial state, cheap to save on a context switch). */
MD_INLINE void md_amx_begin() {
  struct alignas(64) {
    uint8_t palette, start_row, reserved[14];
    uint16_t colsb[16];
    uint8_t rows[16];
  } config = {};
  config.palette = 1;
  for (int t = 0; t < 8; ++t) {
    config.colsb[t] = 64;
    config.rows[t] = 16;
  }
  _tile_loadconfig(&config);
}
MD_INLINE void md_amx_end() { _tile_release(); }

/* One block of RB x CB accumulator tiles (tiles 0-3; A in 4-5, B in 6-7): C[16 RB x 16 CB] (= or +=) A B over k
 * pairs, k a multiple of 16; lda, ldb and ldc count words or floats. */
template <int RB, int CB>
MD_INLINE void md_amx_block(const uint32_t* a, int64_t lda, const uint32_t* b, int64_t ldb, float* c, int64_t ldc,
                            int64_t k, bool accumulate) {
  const int64_t sa = lda * 4, sb = ldb * 4, sc = ldc * 4;
  if (accumulate) {
    _tile_loadd(0, c, sc);
    if constexpr (CB > 1) _tile_loadd(1, c + 16, sc);
    if constexpr (RB > 1) _tile_loadd(2, c + 16 * ldc, sc);
    if constexpr (RB > 1 && CB > 1) _tile_loadd(3, c + 16 * ldc + 16, sc);
  } else {
    _tile_zero(0);
    if constexpr (CB > 1) _tile_zero(1);
    if constexpr (RB > 1) _tile_zero(2);
    if constexpr (RB > 1 && CB > 1) _tile_zero(3);
  }
  for (int64_t p = 0; p < k; p += 16) {
    _tile_loadd(4, a + p, sa);
    _tile_loadd(6, b + p * ldb, sb);
    _tile_dpbf16ps(0, 4, 6);
    if constexpr (CB > 1) {
      _tile_loadd(7, b + p * ldb + 16, sb);
      _tile_dpbf16ps(1, 4, 7);
    }
    if constexpr (RB > 1) {
      _tile_loadd(5, a + 16 * lda + p, sa);
      _tile_dpbf16ps(2, 5, 6);
      if constexpr (CB > 1) _tile_dpbf16ps(3, 5, 7);
    }
  }
  _tile_stored(0, c, sc);
  if constexpr (CB > 1) _tile_stored(1, c + 16, sc);
  if constexpr (RB > 1) _tile_stored(2, c + 16 * ldc, sc);
  if constexpr (RB > 1 && CB > 1) _tile_stored(3, c + 16 * ldc + 16, sc);
}

/* md_gemm on AMX tiles, between md_amx_begin() and md_amx_end(): C[m x ncols] = (row_scale ? C * row_scale : 0) +
 * A[m x k] B[k x ncols] for A rows of bf16 pairs and B panels of words (md_panel_index, k rows), ncols a multiple of
 * 16 and k of 16 pairs. Rows m .. m rounded up to 16 of A and C are read and written too. With row_end (a causal
 * diagonal), the rows of block r (rows 32 r ..) need only the columns (SKIP_COLS: S = Q K^T, whose panels from
 * row_end[r] on are not computed and keep whatever they held) or the k terms (P V: P is zero from there) below
 * row_end[r], as md_gemm_limited. Not inlined, as md_gemm. */
template <bool SKIP_COLS>
static __attribute__((noinline)) void md_amx_gemm(const uint32_t* a, int64_t lda, const uint32_t* b, float* c,
                                                  int64_t ldc, int64_t m, int64_t ncols, int64_t k,
                                                  const float* row_scale, const int64_t* row_end = nullptr) {
  if (row_scale)
    for (int64_t i = 0; i < m; ++i) {
      const __m512 s = _mm512_set1_ps(row_scale[i]);
      for (int64_t j = 0; j < ncols; j += 16) _mm512_storeu_ps(c + i * ldc + j, _mm512_mul_ps(_mm512_loadu_ps(c + i * ldc + j), s));
    }
  const int64_t mt = md_round_up(m, 16);
  for (int64_t c0 = 0; c0 < ncols; c0 += 32) {
    const int64_t width = md_min(32, ncols - c0);
    const uint32_t* panel = b + c0 * k;
    for (int64_t r = 0; r < mt; r += 32) {
      const int64_t end = row_end ? row_end[r / 32] : (SKIP_COLS ? ncols : 2 * k);
      if (SKIP_COLS && end <= c0) continue;
      const int64_t kk = SKIP_COLS ? k : md_min(k, md_round_up(md_pairs(end), 16));
      const uint32_t* ar = a + r * lda;
      float* cr = c + r * ldc + c0;
      if (r + 32 <= mt) {
        if (width == 32) md_amx_block<2, 2>(ar, lda, panel, width, cr, ldc, kk, row_scale != nullptr);
        else md_amx_block<2, 1>(ar, lda, panel, width, cr, ldc, kk, row_scale != nullptr);
      } else {
        if (width == 32) md_amx_block<1, 2>(ar, lda, panel, width, cr, ldc, kk, row_scale != nullptr);
        else md_amx_block<1, 1>(ar, lda, panel, width, cr, ldc, kk, row_scale != nullptr);
      }
    }
  }
}
#endif /* AMX */

/* Rows m % MD_MR left over after the full MR blocks, dispatched to a micro-kernel of exactly that height. */
template <int NV, int R = MD_MR - 1, class T>
MD_INLINE void md_micro_gemm_tail(int rows, const T* a, int64_t lda, const T* b, float* c, int64_t ldc,
                                  int64_t k, const float* row_scale) {
  if constexpr (R > 0) {
    if (rows == R) md_micro_gemm<R, NV>(a, lda, b, c, ldc, k, row_scale);
    else md_micro_gemm_tail<NV, R - 1>(rows, a, lda, b, c, ldc, k, row_scale);
  }
}

template <int NV, class T>
MD_INLINE void md_gemm_strip(const T* a, int64_t lda, const T* b, float* c, int64_t ldc, int64_t m, int64_t k,
                             const float* row_scale) {
  int64_t i = 0;
  for (; i + MD_MR <= m; i += MD_MR)
    md_micro_gemm<MD_MR, NV>(a + i * lda, lda, b, c + i * ldc, ldc, k, row_scale ? row_scale + i : nullptr);
  if (i < m)
    md_micro_gemm_tail<NV>((int)(m - i), a + i * lda, lda, b, c + i * ldc, ldc, k, row_scale ? row_scale + i : nullptr);
}

/* md_gemm_strip where the rows of block r (rows r * MD_MR ..) need only the first block_k[r] of the k terms (the
 * rest of their A row is zero), or, with SKIP_COLS, only columns below block_end[r] (the strip starts at c0). */
template <int NV, bool SKIP_COLS, class T>
MD_INLINE void md_gemm_strip_limited(const T* a, int64_t lda, const T* b, float* c, int64_t ldc, int64_t m,
                                     int64_t k, const float* row_scale, const int64_t* block_end, int64_t c0) {
  int64_t i = 0;
  for (; i < m; i += MD_MR) {
    const int64_t end = block_end[i / MD_MR];
    if (SKIP_COLS && end <= c0) continue;
    const int64_t kk = SKIP_COLS ? k : md_min(k, md_k_terms(a, end));
    const float* scale = row_scale ? row_scale + i : nullptr;
    if (i + MD_MR <= m) md_micro_gemm<MD_MR, NV>(a + i * lda, lda, b, c + i * ldc, ldc, kk, scale);
    else md_micro_gemm_tail<NV>((int)(m - i), a + i * lda, lda, b, c + i * ldc, ldc, kk, scale);
  }
}

/* md_gemm for a tile whose rows stop early (a causal diagonal): row block r of MD_MR rows needs columns (SKIP_COLS,
 * S = Q K^T: strips from block_end[r] on are not computed and keep whatever they held) or k terms (P V: its P is zero
 * from block_end[r] on) only below block_end[r]. Not inlined, as md_gemm. */
template <bool SKIP_COLS, class T>
static __attribute__((noinline)) void md_gemm_limited(const T* a, int64_t lda, const T* b, float* c, int64_t ldc,
                                                      int64_t m, int64_t ncols, int64_t k, const float* row_scale,
                                                      const int64_t* block_end) {
  int64_t c0 = 0;
  for (; c0 + 2 * MD_W <= ncols; c0 += 2 * MD_W)
    md_gemm_strip_limited<2, SKIP_COLS>(a, lda, b + c0 * k, c + c0, ldc, m, k, row_scale, block_end, c0);
  if (c0 < ncols) md_gemm_strip_limited<1, SKIP_COLS>(a, lda, b + c0 * k, c + c0, ldc, m, k, row_scale, block_end, c0);
}

/* C[m x ncols] = (row_scale ? C * row_scale : 0) + A[m x k] B[k x ncols], B packed as panels, ncols a multiple of
 * MD_W; A and B fp32, or bf16 pairs (uint32_t words, k counting pairs). Strips outermost: one strip of B (k x 2W)
 * stays in L1 while all row blocks of A stream past it. Not inlined: one copy per element type, called once per tile
 * (inlined at each of prefill's call sites, it made half of an engine's build time for no measurable speed). */
template <class T>
static __attribute__((noinline)) void md_gemm(const T* a, int64_t lda, const T* b, float* c, int64_t ldc, int64_t m,
                                              int64_t ncols, int64_t k, const float* row_scale) {
  int64_t c0 = 0;
  for (; c0 + 2 * MD_W <= ncols; c0 += 2 * MD_W) md_gemm_strip<2>(a, lda, b + c0 * k, c + c0, ldc, m, k, row_scale);
  if (c0 < ncols) md_gemm_strip<1>(a, lda, b + c0 * k, c + c0, ldc, m, k, row_scale);
}

/* ------------------------------------------------------------------------------------------------------------ */
/* Row-pointer micro-kernels. Decoding has a handful of query rows per K/V row, so packing K/V into fp32 panels
 * first would cost as much as the product itself: these read K and V rows in place (any dtype, converted in
 * registers) through an array of row pointers, which also makes paged and dense caches one code path. */

/* MD_W consecutive elements p[i..] as fp32. */
template <int DT> MD_INLINE md_vf md_vload_dt(const void* p, int64_t i) {
#if MD_W == 16
  if constexpr (DT == MD_FLOAT32) return _mm512_loadu_ps((const float*)p + i);
  else if constexpr (DT == MD_INT8 || DT == MD_FP8_E4M3FN || DT == MD_FP8_E5M2)
    return md_codes16_ps<DT>(_mm_loadu_si128((const __m128i*)((const uint8_t*)p + i)));
  else {
    const __m256i h = _mm256_loadu_si256((const __m256i*)((const uint16_t*)p + i));
    if constexpr (DT == MD_BFLOAT16) return _mm512_castsi512_ps(_mm512_slli_epi32(_mm512_cvtepu16_epi32(h), 16));
    else return _mm512_cvtph_ps(h);
  }
#elif MD_W == 8
  return md_load8<DT>(p, i);
#elif MD_W == 4
  return md_load4<DT>(p, i);
#else
  return md_load_elem<DT>(p, i);
#endif
}

#if MD_W == 16 && defined(__AVX512VBMI__) && !defined(MD_NO_FP8_BYTE_LOOKUP)
/* 64 consecutive e4m3fn codes as four vectors of fp32 in the units of md_kv_unit, in order, with byte lookups instead
 * of md_codes16_ps's widening (about 3.5 instructions per 16 codes instead of 6). Each binary16 is made of bytes: the
 * high byte s0eeeemm from a 128-entry table indexed by the code's low 7 bits (0x7f, the NaN code, gives 0x7f: binary16
 * NaN) with the sign put back, the low byte the last mantissa bit. The codes are first put in the order in which the
 * lane-wise byte interleave of the two halves yields codes 0..31 and 32..63 in order. */
#define MD_E4M3FN_BYTE_LOOKUP 1
struct md_byte_table {
  alignas(64) uint8_t v[128];
};
/* The binary16 high byte of e4m3fn code i (its low 7 bits): s0eeeemm without the sign, 0x7f for the NaN code. */
constexpr md_byte_table md_e4m3fn_high_bytes() {
  md_byte_table t{};
  for (int i = 0; i < 128; ++i) t.v[i] = (uint8_t)((i >> 1) | (i == 0x7f ? 0x40 : 0));
  return t;
}
/* Lane k of the reordered codes: codes 8k .. 8k+7, then 32+8k .. 32+8k+7 (the first 64 entries are used). */
constexpr md_byte_table md_e4m3fn_order() {
  md_byte_table t{};
  for (int i = 0; i < 64; ++i) t.v[i] = (uint8_t)(i / 16 * 8 + (i % 16 < 8 ? i % 8 : 32 + i % 8));
  return t;
}
static constexpr md_byte_table md_e4m3fn_high = md_e4m3fn_high_bytes();
static constexpr md_byte_table md_e4m3fn_lane_order = md_e4m3fn_order();

MD_INLINE void md_e4m3fn64_ps(const void* p, __m512 out[4]) {
  const uint8_t* high = md_e4m3fn_high.v;
  const uint8_t* order = md_e4m3fn_lane_order.v;
  const __m512i codes = _mm512_permutexvar_epi8(_mm512_load_si512(order), _mm512_loadu_si512(p));
  const __m512i sign = _mm512_set1_epi8((char)0x80);
  /* high | (codes & 0x80) */
  const __m512i hi = _mm512_ternarylogic_epi32(
      _mm512_permutex2var_epi8(_mm512_load_si512(high), codes, _mm512_load_si512(high + 64)), codes, sign, 0xf8);
  /* the last mantissa bit at bit 7 of each byte (a 16-bit shift, then bit 7 of each byte kept) */
  const __m512i lo = _mm512_and_si512(_mm512_slli_epi16(codes, 7), sign);
  const __m512i first = _mm512_unpacklo_epi8(lo, hi), second = _mm512_unpackhi_epi8(lo, hi);
  out[0] = _mm512_cvtph_ps(_mm512_castsi512_si256(first));
  out[1] = _mm512_cvtph_ps(_mm512_extracti64x4_epi64(first, 1));
  out[2] = _mm512_cvtph_ps(_mm512_castsi512_si256(second));
  out[3] = _mm512_cvtph_ps(_mm512_extracti64x4_epi64(second, 1));
}
#endif

#if defined(MD_BF16_DOT) && defined(__AVX512VBMI__) && !defined(MD_NO_FP8_BYTE_LOOKUP)
/* 8-bit K/V codes as bf16 by byte lookups, for the bf16 dot products of decoding. Every 8-bit value (in the units of
 * md_kv_unit) is a normal bf16 or zero, so a code's bf16 is exact: its low byte from a 128-entry table indexed by the
 * low 7 bits of the code's magnitude, its high byte from another, with the sign bit put back (three instructions per
 * 64 fp8 codes, six for int8, where md_codes16_ps takes 2-3.5 per 16 to reach fp32). fp8 infinities and NaNs map to
 * bf16 infinities and NaNs. */
#define MD_CODES_BF16_LOOKUP 1
struct md_bf16_byte_tables {
  alignas(64) uint8_t lo[128];
  alignas(64) uint8_t hi[128];
};
/* The bf16 bits of m * 2^e (0 <= m < 256), which must be normal or zero. */
constexpr uint16_t md_bf16_bits_of(int m, int e) {
  int h = 7;
  while (h > 0 && !(m >> h)) --h;
  return m == 0 ? (uint16_t)0 : (uint16_t)(((e + h + 127) << 7) | ((m << (7 - h)) & 0x7f));
}
/* Entry i: the bf16 of the code of magnitude i (sign clear) in the units of md_kv_unit. */
template <int DT> constexpr md_bf16_byte_tables md_codes_bf16_tables() {
  md_bf16_byte_tables t{};
  for (int i = 0; i < 128; ++i) {
    uint16_t b = 0;
    if (DT == MD_INT8) {
      b = md_bf16_bits_of(i, 0);
    } else if (DT == MD_FP8_E5M2) {
      const int e = i >> 2, m = i & 3; /* 2^(e - 15) (1 + m / 4); subnormal m 2^-16; e 31: inf (m 0) or NaN */
      b = e == 31 ? (uint16_t)(m ? 0x7fc0 : 0x7f80) : e == 0 ? md_bf16_bits_of(m, -16) : md_bf16_bits_of(4 + m, e - 17);
    } else {
      const int e = i >> 3, m = i & 7; /* 2^(e - 7) (1 + m / 8) in units of 2^-8; subnormal m 2^-17; 0x7f: NaN */
      b = i == 0x7f ? (uint16_t)0x7fc0 : e == 0 ? md_bf16_bits_of(m, -17) : md_bf16_bits_of(8 + m, e - 18);
    }
    t.lo[i] = (uint8_t)(b & 0xff);
    t.hi[i] = (uint8_t)(b >> 8);
  }
  return t;
}
template <int DT> struct md_codes_bf16 {
  static constexpr md_bf16_byte_tables tables = md_codes_bf16_tables<DT>();
};
/* The low and the high bytes of the bf16 of 64 codes, byte for byte. int8 is looked up by its magnitude (VPABSB);
 * -128, whose magnitude 0x80 indexes entry 0, gets its high byte (0xc3: bf16 -128 is 0xc300) by a masked move. */
template <int DT> MD_INLINE void md_codes_bf16_bytes(__m512i codes, __m512i* lo, __m512i* hi) {
  const md_bf16_byte_tables& t = md_codes_bf16<DT>::tables;
  const __m512i index = DT == MD_INT8 ? _mm512_abs_epi8(codes) : codes;
  *lo = _mm512_permutex2var_epi8(_mm512_load_si512(t.lo), index, _mm512_load_si512(t.lo + 64));
  /* high | (codes & 0x80) */
  *hi = _mm512_ternarylogic_epi32(_mm512_permutex2var_epi8(_mm512_load_si512(t.hi), index, _mm512_load_si512(t.hi + 64)),
                                  codes, _mm512_set1_epi8((char)0x80), 0xf8);
  if constexpr (DT == MD_INT8) *hi = _mm512_mask_mov_epi8(*hi, _mm512_movepi8_mask(index), _mm512_set1_epi8((char)0xc3));
}
/* The VPERMT2B indices that put the bytes of 32 columns of two rows (codes: row a in bytes 0..31, row b in 32..63;
 * lo/hi from md_codes_bf16_bytes) together as bf16 pairs of the rows, column c0 + c in word c: half 0 for columns
 * 0..15, half 1 for 16..31 (index 64 + i selects byte i of hi). */
MD_INLINE __m512i md_codes_pair_index(int half) {
  alignas(64) static const uint8_t index[2][64] = {
#define MD_PAIR_BYTES(c) (uint8_t)(c), (uint8_t)(64 + (c)), (uint8_t)(32 + (c)), (uint8_t)(96 + (c))
      {MD_PAIR_BYTES(0), MD_PAIR_BYTES(1), MD_PAIR_BYTES(2), MD_PAIR_BYTES(3), MD_PAIR_BYTES(4), MD_PAIR_BYTES(5),
       MD_PAIR_BYTES(6), MD_PAIR_BYTES(7), MD_PAIR_BYTES(8), MD_PAIR_BYTES(9), MD_PAIR_BYTES(10), MD_PAIR_BYTES(11),
       MD_PAIR_BYTES(12), MD_PAIR_BYTES(13), MD_PAIR_BYTES(14), MD_PAIR_BYTES(15)},
      {MD_PAIR_BYTES(16), MD_PAIR_BYTES(17), MD_PAIR_BYTES(18), MD_PAIR_BYTES(19), MD_PAIR_BYTES(20), MD_PAIR_BYTES(21),
       MD_PAIR_BYTES(22), MD_PAIR_BYTES(23), MD_PAIR_BYTES(24), MD_PAIR_BYTES(25), MD_PAIR_BYTES(26), MD_PAIR_BYTES(27),
       MD_PAIR_BYTES(28), MD_PAIR_BYTES(29), MD_PAIR_BYTES(30), MD_PAIR_BYTES(31)}};
#undef MD_PAIR_BYTES
  return _mm512_load_si512(index[half]);
}
#endif

/* Whether rows of 8-bit codes of DT enter the dot products as bf16 pairs (the byte lookups above). */
template <int DT> MD_INLINE constexpr bool md_codes_pairs() {
#if defined(MD_CODES_BF16_LOOKUP)
  return DT == MD_INT8 || DT == MD_FP8_E4M3FN || DT == MD_FP8_E5M2;
#else
  return false;
#endif
}

#if MD_W == 8 && defined(__F16C__) && !defined(MD_NO_FP8_PAIRS)
/* 16 consecutive fp8 codes as two vectors of fp32 (e4m3fn in the units of md_kv_unit), widened to 16-bit lanes once
 * for both (md_load8's steps on 256-bit lanes): about 12 instructions per 16 codes against 22 for two md_load8. */
#define MD_FP8_PAIRS 1
template <int DT> MD_INLINE void md_fp8x16_ps(const void* p, md_vf out[2]) {
  const __m128i bytes = _mm_loadu_si128((const __m128i*)p);
  __m256i h;
  if constexpr (DT == MD_FP8_E5M2) h = _mm256_slli_epi16(_mm256_cvtepu8_epi16(bytes), 8);
  else h = md_e4m3fn_as_f16(_mm256_slli_epi16(_mm256_cvtepi8_epi16(bytes), 7));
  out[0] = _mm256_cvtph_ps(_mm256_castsi256_si128(h));
  out[1] = _mm256_cvtph_ps(_mm256_extracti128_si256(h, 1));
}
#endif

/* How many MD_W-element vectors md_vload_dt4 converts at once for dtype DT: 4 where that is cheaper than one at a
 * time (e4m3fn with byte lookups), 2 for fp8 on AVX2 (md_fp8x16_ps), else 1. */
template <int DT> MD_INLINE constexpr int md_vload_batch() {
#if defined(MD_E4M3FN_BYTE_LOOKUP)
  return DT == MD_FP8_E4M3FN ? 4 : 1;
#elif defined(MD_FP8_PAIRS)
  return DT == MD_FP8_E4M3FN || DT == MD_FP8_E5M2 ? 2 : 1;
#else
  return 1;
#endif
}

/* out[0 .. md_vload_batch<DT>()) = the vectors of p[i..], MD_W elements each. */
template <int DT> MD_INLINE void md_vload_dt4(const void* p, int64_t i, md_vf* out) {
#if defined(MD_E4M3FN_BYTE_LOOKUP)
  if constexpr (DT == MD_FP8_E4M3FN) {
    md_e4m3fn64_ps((const uint8_t*)p + i, out);
    return;
  }
#elif defined(MD_FP8_PAIRS)
  if constexpr (DT == MD_FP8_E4M3FN || DT == MD_FP8_E5M2) {
    md_fp8x16_ps<DT>((const uint8_t*)p + i, out);
    return;
  }
#endif
  for (int x = 0; x < md_vload_batch<DT>(); ++x) out[x] = md_vload_dt<DT>(p, i + x * MD_W);
}

/* Memory accesses before it stay before it, those after it after it: orders loads the compiler would hoist. */
MD_INLINE void md_compiler_barrier() {
#if defined(__GNUC__)
  __asm__ volatile("" ::: "memory");
#endif
}

/* v, kept in a register: stops the compiler from folding a load that several FMAs share into each of them as a
 * memory operand, which would issue the same load once per FMA and make the loop load-bound. */
MD_INLINE md_vf md_vreg(md_vf v) {
#if (MD_W == 8 || MD_W == 16) && defined(__GNUC__)
  __asm__("" : "+x"(v));
#endif
  return v;
}

/* The first `count` (< MD_W) elements of p[i..] as fp32, zeros in the other lanes: the tail of a row whose length is
 * not a multiple of the SIMD width, without reading past the row. */
template <int DT> MD_INLINE md_vf md_vload_dt_partial(const void* p, int64_t i, int64_t count) {
  float t[MD_W];
  for (int k = 0; k < MD_W; ++k) t[k] = k < count ? md_load_elem<DT>(p, i + k) : 0.0f;
  return md_vload(t);
}

/* out[k] = horizontal sum of v[k] for k < 8: one transpose-reduce instead of eight separate reductions. */
MD_INLINE void md_vhsum8(const md_vf* v, float* out) {
#if MD_W == 16
  /* A tree of 512-bit shuffles, 24 operations: each pair of vectors folded into one (their 256-bit halves added), then
   * each pair of those (128-bit blocks), then the four lanes of each block; a last permute gathers the sums. */
  __m512 t[4], u[2];
  for (int k = 0; k < 4; ++k) /* blocks [a0 + a2, a1 + a3, b0 + b2, b1 + b3] of a = v[2k], b = v[2k + 1] */
    t[k] = _mm512_add_ps(_mm512_shuffle_f32x4(v[2 * k], v[2 * k + 1], 0x44), _mm512_shuffle_f32x4(v[2 * k], v[2 * k + 1], 0xee));
  for (int k = 0; k < 2; ++k) /* block i: the four lanes whose sum is that of v[4k + i] */
    u[k] = _mm512_add_ps(_mm512_shuffle_f32x4(t[2 * k], t[2 * k + 1], 0x88), _mm512_shuffle_f32x4(t[2 * k], t[2 * k + 1], 0xdd));
  /* block i: [u0 lanes 0 + 2, 1 + 3, u1 lanes 0 + 2, 1 + 3], then adjacent lanes added: v[i]'s sum in lane 0, v[4 + i]'s in 2 */
  __m512 z = _mm512_add_ps(_mm512_shuffle_ps(u[0], u[1], 0x44), _mm512_shuffle_ps(u[0], u[1], 0xee));
  z = _mm512_add_ps(z, _mm512_permute_ps(z, 0xb1));
  const __m512i gather = _mm512_setr_epi32(0, 4, 8, 12, 2, 6, 10, 14, 0, 0, 0, 0, 0, 0, 0, 0);
  _mm256_storeu_ps(out, _mm512_castps512_ps256(_mm512_permutexvar_ps(gather, z)));
#elif MD_W == 8
  __m256 w[8];
  for (int k = 0; k < 8; ++k) w[k] = v[k];
  const __m256 h01 = _mm256_hadd_ps(w[0], w[1]), h23 = _mm256_hadd_ps(w[2], w[3]);
  const __m256 h45 = _mm256_hadd_ps(w[4], w[5]), h67 = _mm256_hadd_ps(w[6], w[7]);
  const __m256 h0123 = _mm256_hadd_ps(h01, h23), h4567 = _mm256_hadd_ps(h45, h67);
  _mm256_storeu_ps(out, _mm256_add_ps(_mm256_permute2f128_ps(h0123, h4567, 0x20),
                                      _mm256_permute2f128_ps(h0123, h4567, 0x31)));
#elif MD_W == 4
  /* pairwise adds: [a0+a1, a2+a3, b0+b1, b2+b3], twice, give the four sums of a, b, c, d */
  vst1q_f32(out, vpaddq_f32(vpaddq_f32(v[0], v[1]), vpaddq_f32(v[2], v[3])));
  vst1q_f32(out + 4, vpaddq_f32(vpaddq_f32(v[4], v[5]), vpaddq_f32(v[6], v[7])));
#else
  for (int k = 0; k < 8; ++k) out[k] = md_vhsum(v[k]);
#endif
}

/* bf16 pairs. On AVX2 a bf16 row is read 16 elements per load: the even elements become fp32 by a shift (x << 16)
 * and the odd ones by a mask (x & 0xffff0000), two ALU operations where widening loads take four. The two vectors
 * hold the block's elements in the order 0 2 4 .. 14 1 3 .. 15. A dot product does not care as long as the other
 * operand is permuted alike (md_pair_permute on the query rows); the P V output comes out permuted and is restored
 * by md_pair_unpermute. Only the 16-aligned prefix of a row is paired; its tail keeps the plain order. */
template <int DT> MD_INLINE constexpr bool md_paired() { return DT == MD_BFLOAT16 && MD_W == 8; }
template <int DT, int64_t DIM> MD_INLINE constexpr int64_t md_paired_dim() {
  return md_paired<DT>() ? DIM / 16 * 16 : 0;
}

#if MD_W == 8
MD_INLINE void md_vload_bf16_pair(const void* p, int64_t i, md_vf* even, md_vf* odd) {
  const __m256i x = _mm256_loadu_si256((const __m256i*)((const uint16_t*)p + i));
  *even = _mm256_castsi256_ps(_mm256_slli_epi32(x, 16));
  *odd = _mm256_castsi256_ps(_mm256_and_si256(x, _mm256_set1_epi32((int)0xffff0000u)));
}
#else
MD_INLINE void md_vload_bf16_pair(const void*, int64_t, md_vf*, md_vf*) {}
#endif

/* The paired order of row[0..DIM) in place, and back (no-ops unless md_paired<DT>, which only AVX2 has): four
 * shuffles per 16 elements. g++ 12 left the element loops they replaced scalar, about 1.5 us of a kv 16 decode call
 * on AVX2 (32 output rows, 8 query rows). */
template <int DT, int64_t DIM> MD_INLINE void md_pair_permute(float* row) {
#if MD_W == 8
  for (int64_t d = 0; d < md_paired_dim<DT, DIM>(); d += 16) {
    const __m256 a = _mm256_loadu_ps(row + d), b = _mm256_loadu_ps(row + d + 8);
    /* per 128-bit lane [a0 a2 b0 b2], [a1 a3 b1 b3]; then the 64-bit quarters in the order 0 2 1 3 */
    const __m256d e = _mm256_castps_pd(_mm256_shuffle_ps(a, b, 0x88)), o = _mm256_castps_pd(_mm256_shuffle_ps(a, b, 0xdd));
    _mm256_storeu_ps(row + d, _mm256_castpd_ps(_mm256_permute4x64_pd(e, 0xd8)));
    _mm256_storeu_ps(row + d + 8, _mm256_castpd_ps(_mm256_permute4x64_pd(o, 0xd8)));
  }
#else
  (void)row;
#endif
}
template <int DT, int64_t DIM> MD_INLINE void md_pair_unpermute(float* row) {
#if MD_W == 8
  for (int64_t d = 0; d < md_paired_dim<DT, DIM>(); d += 16) {
    const __m256 e = _mm256_loadu_ps(row + d), o = _mm256_loadu_ps(row + d + 8);
    /* per 128-bit lane [e0 o0 e1 o1], [e2 o2 e3 o3]; then the low lanes together and the high lanes together */
    const __m256 lo = _mm256_unpacklo_ps(e, o), hi = _mm256_unpackhi_ps(e, o);
    _mm256_storeu_ps(row + d, _mm256_permute2f128_ps(lo, hi, 0x20));
    _mm256_storeu_ps(row + d + 8, _mm256_permute2f128_ps(lo, hi, 0x31));
  }
#else
  (void)row;
#endif
}

#if MD_W == 16
/* Block i (lanes 4i .. 4i + 3) = the horizontal sums of v[i], v[4 + i], v[8 + i], v[12 + i]: a tree of 512-bit
 * shuffles, 45 operations for sixteen sums (two md_vhsum8 take 48 and their stores more). Its first two rounds are
 * md_vhsum8's, written out round by round: a helper shared by both, folding four vectors at a time, made g++ schedule
 * this tree worse (fp16 G 4 decode 2-4% slower). */
MD_INLINE __m512 md_vhsum16(const md_vf* v) {
  __m512 t[8], u[4], w[2];
  for (int k = 0; k < 8; ++k) /* blocks [a0 + a2, a1 + a3, b0 + b2, b1 + b3] of a = v[2k], b = v[2k + 1] */
    t[k] = _mm512_add_ps(_mm512_shuffle_f32x4(v[2 * k], v[2 * k + 1], 0x44), _mm512_shuffle_f32x4(v[2 * k], v[2 * k + 1], 0xee));
  for (int k = 0; k < 4; ++k) /* block i: the four lanes whose sum is that of v[4k + i] */
    u[k] = _mm512_add_ps(_mm512_shuffle_f32x4(t[2 * k], t[2 * k + 1], 0x88), _mm512_shuffle_f32x4(t[2 * k], t[2 * k + 1], 0xdd));
  for (int k = 0; k < 2; ++k) /* block i: two partial sums of v[8k + i], then two of v[8k + 4 + i] */
    w[k] = _mm512_add_ps(_mm512_shuffle_ps(u[2 * k], u[2 * k + 1], 0x44), _mm512_shuffle_ps(u[2 * k], u[2 * k + 1], 0xee));
  return _mm512_add_ps(_mm512_shuffle_ps(w[0], w[1], 0x88), _mm512_shuffle_ps(w[0], w[1], 0xdd));
}
#endif

/* s[r * lds + j] = the sum of the lanes of acc[r * JK + j]: one transpose-reduce when there are eight or sixteen. */
template <int RQ, int JK>
MD_INLINE void md_store_dot_sums(const md_vf* acc, float* __restrict s, int64_t lds) {
#if MD_W == 16
  if constexpr (RQ == 4 && JK == 4) {
    /* v[i + 4c] = acc of row i, key c: block i of the sums is row i's four scores */
    md_vf v[16];
    for (int n = 0; n < 16; ++n) v[n] = acc[(n % 4) * 4 + n / 4];
    const __m512 z = md_vhsum16(v);
    _mm_storeu_ps(s, _mm512_castps512_ps128(z));
    _mm_storeu_ps(s + lds, _mm512_extractf32x4_ps(z, 1));
    _mm_storeu_ps(s + 2 * lds, _mm512_extractf32x4_ps(z, 2));
    _mm_storeu_ps(s + 3 * lds, _mm512_extractf32x4_ps(z, 3));
    return;
  }
#endif
  if constexpr (RQ * JK == 8) {
    float sums[8];
    md_vhsum8(acc, sums);
    for (int r = 0; r < RQ; ++r)
      for (int j = 0; j < JK; ++j) s[r * lds + j] = sums[r * JK + j];
  } else {
    for (int r = 0; r < RQ; ++r)
      for (int j = 0; j < JK; ++j) s[r * lds + j] = md_vhsum(acc[r * JK + j]);
  }
}

/* s[r * lds + j] = q_r . k_j for RQ query rows (fp32, row stride ldq, zero-padded to a multiple of MD_W, in the
 * paired order for DT) and JK key rows (DIM elements of dtype DT). RQ x JK accumulators over DIM, then one
 * transpose-reduce when there are eight. */
template <int DT, int64_t DIM, int RQ, int JK>
MD_INLINE void md_dot_block(const float* __restrict q, int64_t ldq, const void* const* __restrict k,
                            float* __restrict s, int64_t lds) {
  constexpr int64_t paired = md_paired_dim<DT, DIM>();
  constexpr int64_t full = DIM / MD_W * MD_W;
  md_vf acc[RQ * JK];
  for (int x = 0; x < RQ * JK; ++x) acc[x] = md_vset1(0.0f);
  constexpr int QV = (int)(full / MD_W);
  constexpr bool rows_in_order = paired == 0 && MD_W >= 4 && RQ * QV + RQ * JK + 2 <= MD_VREGS;
  /* With 16 registers (AVX2) one query row does not fit beside eight accumulators: its vectors are read from L1 as
   * the key rows go by, still one key row after the other, two accumulators per row. Against the key rows
   * interleaved (the loop below), with fp32 K/V no longer prefetched (flash_decoding), on AVX2 (Zen 3, kv 16384, D
   * 128, Hkv 8, G 1, interleaved in one process): fp32 decode 1.28x as fast on 2 threads, 1.39x on one, bf16 1.07x,
   * fp16 even. Not for 8-bit keys: e4m3fn measured 20% slower, and even since md_fp8x16_ps, as were e5m2 and int8. */
  constexpr bool rows_from_l1 =
      !rows_in_order && MD_W == 8 && RQ == 1 && (DT == MD_FLOAT32 || DT == MD_FLOAT16 || DT == MD_BFLOAT16);
  if constexpr (rows_from_l1) {
    for (int j = 0; j < JK; ++j) {
      md_vf a[2] = {md_vset1(0.0f), md_vset1(0.0f)};
      for (int64_t d = 0; d < paired; d += 16) {
        md_vf ke, ko;
        md_vload_bf16_pair(k[j], d, &ke, &ko);
        a[0] = md_vfma(md_vload(q + d), ke, a[0]);
        a[1] = md_vfma(md_vload(q + d + 8), ko, a[1]);
      }
      for (int64_t d = paired; d < full; d += MD_W)
        a[(d / MD_W) % 2] = md_vfma(md_vload(q + d), md_vload_dt<DT>(k[j], d), a[(d / MD_W) % 2]);
      acc[j] = md_vadd(a[0], a[1]);
      md_compiler_barrier();
    }
  }
  /* RQ query vectors, then one key vector at a time: RQ * JK + RQ + 1 registers, no spills at 16 (pairs: + RQ + 1). */
  for (int64_t d = 0; d < (rows_from_l1 ? 0 : paired); d += 16) {
    md_vf qe[RQ], qo[RQ];
    for (int r = 0; r < RQ; ++r) {
      qe[r] = md_vreg(md_vload(q + r * ldq + d));
      /* at 4 rows the odd halves stay memory operands: 16 of them would not fit next to 8 accumulators */
      qo[r] = RQ <= 2 ? md_vreg(md_vload(q + r * ldq + d + 8)) : md_vload(q + r * ldq + d + 8);
    }
    for (int j = 0; j < JK; ++j) {
      md_vf ke, ko;
      md_vload_bf16_pair(k[j], d, &ke, &ko);
      for (int r = 0; r < RQ; ++r) acc[r * JK + j] = md_vfma(qo[r], ko, md_vfma(qe[r], ke, acc[r * JK + j]));
    }
  }
  /* Key rows one after the other when the whole query block fits in registers next to the accumulators: the loads
   * then walk K in address order, which the hardware prefetchers follow at full speed (row by row interleaved, 8
   * rows 2 * DIM bytes apart each step, they fall well short). Each row's chain of DIM / MD_W FMAs overlaps the
   * other rows' in the out-of-order window. */
  if constexpr (rows_in_order) {
    md_vf qv[RQ][QV > 0 ? QV : 1];
    for (int r = 0; r < RQ; ++r)
      for (int x = 0; x < QV; ++x) qv[r][x] = md_vreg(md_vload(q + r * ldq + x * MD_W));
    constexpr int batch = QV % md_vload_batch<DT>() == 0 ? md_vload_batch<DT>() : 1;
    for (int j = 0; j < JK; ++j) {
      for (int x = 0; x < QV; x += batch) {
        md_vf kv[batch];
        md_vload_dt4<DT>(k[j], x * MD_W, kv);
        for (int y = 0; y < batch; ++y) {
          const md_vf kr = md_vreg(kv[y]);
          for (int r = 0; r < RQ; ++r) acc[r * JK + j] = md_vfma(qv[r][x + y], kr, acc[r * JK + j]);
        }
      }
      /* One query row against 8 keys: g++ 12 hoists the loads of all 8 rows above the FMAs when a key vector is
       * one instruction (an fp32 load, an fp16 conversion) and spills most of them; a compiler barrier per row keeps
       * them apart (fp32 and fp16 decode at G 1 16-22% faster with K in cache, 9-17% from memory). Two query rows
       * against 4 keys measured 3-10% slower with it, and 8-bit and bf16 keys (not hoisted) 2%. */
      if constexpr (RQ == 1 && (DT == MD_FLOAT32 || DT == MD_FLOAT16)) md_compiler_barrier();
    }
  }
  /* Several vectors of a key row converted at once (md_vload_batch), the query vectors read from memory. */
  constexpr int batch = md_vload_batch<DT>();
  int64_t d0 = rows_in_order || rows_from_l1 ? full : paired;
  if constexpr (batch > 1 && !rows_in_order && !rows_from_l1) {
    for (; d0 + batch * MD_W <= full; d0 += batch * MD_W)
      for (int j = 0; j < JK; ++j) {
        md_vf kv[batch];
        md_vload_dt4<DT>(k[j], d0, kv);
        for (int y = 0; y < batch; ++y) {
          const md_vf kr = md_vreg(kv[y]);
          for (int r = 0; r < RQ; ++r) acc[r * JK + j] = md_vfma(md_vload(q + r * ldq + d0 + y * MD_W), kr, acc[r * JK + j]);
        }
      }
  }
  for (int64_t d = d0; d < full; d += MD_W) {
    md_vf qv[RQ];
    for (int r = 0; r < RQ; ++r) qv[r] = JK > 1 ? md_vreg(md_vload(q + r * ldq + d)) : md_vload(q + r * ldq + d);
    for (int j = 0; j < JK; ++j) {
      const md_vf kv = md_vreg(md_vload_dt<DT>(k[j], d));
      for (int r = 0; r < RQ; ++r) acc[r * JK + j] = md_vfma(qv[r], kv, acc[r * JK + j]);
    }
  }
  if constexpr (full < DIM) {
    for (int j = 0; j < JK; ++j) {
      const md_vf kv = md_vload_dt_partial<DT>(k[j], full, DIM - full);
      for (int r = 0; r < RQ; ++r) acc[r * JK + j] = md_vfma(md_vload(q + r * ldq + full), kv, acc[r * JK + j]);
    }
  }
  md_store_dot_sums<RQ, JK>(acc, s, lds);
}

#if defined(MD_CODES_BF16_LOOKUP)
/* The order in which md_dot_block_codes reads the words of a query row of bf16 pairs, in place: per 32 words (64
 * elements), the words that VPUNPCKLBW of the codes' bytes yields (0..3, 8..11, 16..19, 24..27), then those of
 * VPUNPCKHBW (4..7, 12..15, ..). ld is a multiple of 32 words. */
MD_INLINE void md_codes_key_order(uint32_t* row, int64_t ld) {
  uint32_t tmp[32];
  for (int64_t w = 0; w < ld; w += 32) {
    for (int i = 0; i < 32; ++i) tmp[i] = row[w + (i % 16) / 4 * 8 + (i >= 16 ? 4 : 0) + i % 4];
    memcpy(row + w, tmp, sizeof(tmp));
  }
}

/* md_dot_block on VDPBF16PS for 8-bit key rows (in the units of md_kv_unit): each 64 codes of a key row become two
 * vectors of bf16 by byte lookups (md_codes_bf16_bytes) and the byte interleaves VPUNPCKLBW/VPUNPCKHBW, whose order the
 * query rows take beforehand (md_codes_key_order; bf16 pairs zero padded to a multiple of 32 words): a load, seven
 * operations (ten for int8) and 2 RQ dot products per 64 elements of a key row, where the fp32 path converts 64
 * fp8 codes in 12-14 operations and issues 4 RQ FMAs. */
template <int DT, int64_t DIM, int RQ, int JK>
MD_INLINE void md_dot_block_codes(const uint32_t* __restrict q, int64_t ldq, const void* const* __restrict k,
                                  float* __restrict s, int64_t lds) {
  constexpr int QC = (int)((DIM + 63) / 64);    /* 64-code chunks of a row, the last one maybe partial */
  constexpr int64_t tail = DIM - (QC - 1) * 64; /* codes in the last chunk */
  const __mmask64 last = tail == 64 ? ~(__mmask64)0 : (((__mmask64)1 << tail) - 1);
  __m512 acc[RQ * JK];
  for (int x = 0; x < RQ * JK; ++x) acc[x] = _mm512_setzero_ps();
  for (int c = 0; c < QC; ++c)
    for (int j = 0; j < JK; ++j) {
      const uint8_t* row = (const uint8_t*)k[j] + c * 64;
      const __m512i codes = c == QC - 1 && tail != 64 ? _mm512_maskz_loadu_epi8(last, row) : _mm512_loadu_si512(row);
      __m512i lo, hi;
      md_codes_bf16_bytes<DT>(codes, &lo, &hi);
      const __m512bh ka = (__m512bh)_mm512_unpacklo_epi8(lo, hi), kb = (__m512bh)_mm512_unpackhi_epi8(lo, hi);
      for (int r = 0; r < RQ; ++r) {
        const uint32_t* qr = q + r * ldq + c * 32;
        acc[r * JK + j] = _mm512_dpbf16_ps(acc[r * JK + j], (__m512bh)_mm512_loadu_si512(qr), ka);
        acc[r * JK + j] = _mm512_dpbf16_ps(acc[r * JK + j], (__m512bh)_mm512_loadu_si512(qr + 16), kb);
      }
    }
  md_store_dot_sums<RQ, JK>(acc, s, lds);
}
#endif

#if defined(MD_BF16_DOT)
/* md_dot_block on VDPBF16PS for bf16 key rows: the query rows are bf16 pairs (uint32_t words, row stride ldq, zero
 * padded to a multiple of 16 words) and one 512-bit load is 32 key elements, used as they are: a load and RQ dot
 * products per 32 elements of a key row, where the fp32 path converts (two operations) and multiplies twice as often.
 * Key rows in address order when the query block fits in registers next to the accumulators, as md_dot_block. */
template <int DT, int64_t DIM, int RQ, int JK>
MD_INLINE void md_dot_block(const uint32_t* __restrict q, int64_t ldq, const void* const* __restrict k,
                            float* __restrict s, int64_t lds) {
#if defined(MD_CODES_BF16_LOOKUP)
  if constexpr (md_codes_pairs<DT>()) {
    md_dot_block_codes<DT, DIM, RQ, JK>(q, ldq, k, s, lds);
    return;
  }
#endif
  static_assert(DT == MD_BFLOAT16 || md_codes_pairs<DT>(), "bf16 pairs against bf16 or 8-bit keys");
  constexpr int QV = (int)((DIM + 31) / 32);     /* 32-element blocks of a row, the last one maybe partial */
  constexpr int64_t tail = DIM - (QV - 1) * 32;  /* elements in the last block */
  const __mmask32 last = tail == 32 ? ~(__mmask32)0 : (__mmask32)((1u << tail) - 1u);
  const auto key = [&](int j, int x) {
    const uint16_t* row = (const uint16_t*)k[j] + x * 32;
    return (__m512bh)(x == QV - 1 ? _mm512_maskz_loadu_epi16(last, row) : _mm512_loadu_si512(row));
  };
  __m512 acc[RQ * JK];
  for (int x = 0; x < RQ * JK; ++x) acc[x] = _mm512_setzero_ps();
  constexpr bool rows_in_order = RQ * QV + RQ * JK + 2 <= MD_VREGS;
  if constexpr (rows_in_order) {
    __m512bh qv[RQ][QV];
    for (int r = 0; r < RQ; ++r)
      for (int x = 0; x < QV; ++x) qv[r][x] = (__m512bh)md_vreg(_mm512_castsi512_ps(_mm512_loadu_si512(q + r * ldq + x * 16)));
    for (int j = 0; j < JK; ++j)
      for (int x = 0; x < QV; ++x) {
        const __m512bh kv = key(j, x);
        for (int r = 0; r < RQ; ++r) acc[r * JK + j] = _mm512_dpbf16_ps(acc[r * JK + j], qv[r][x], kv);
      }
  } else {
    for (int x = 0; x < QV; ++x) {
      __m512bh qv[RQ];
      for (int r = 0; r < RQ; ++r) qv[r] = (__m512bh)_mm512_loadu_si512(q + r * ldq + x * 16);
      for (int j = 0; j < JK; ++j) {
        const __m512bh kv = key(j, x);
        for (int r = 0; r < RQ; ++r) acc[r * JK + j] = _mm512_dpbf16_ps(acc[r * JK + j], qv[r], kv);
      }
    }
  }
  md_store_dot_sums<RQ, JK>(acc, s, lds);
}
#endif /* MD_BF16_DOT */

/* Integer dot products for int8 keys where the vector unit multiplies 16-bit integers in pairs (AVX-512BW, AVX2):
 * the query rows quantized to int16 with one scale per row (md_quantize_row_i16), each key vector sign-extended from
 * 8 to 16 bits and multiplied pairwise into int32 lanes (VPDPWSSD with AVX512-VNNI or AVX-VNNI, else VPMADDWD and an
 * add): two operations per 2 * MD_W elements of a key row, where the fp32 path converts (two operations) and
 * multiplies per MD_W. Exact in int32: |sum| <= DIM * 32767 * 128. */
#if ((MD_W == 16 && defined(__AVX512BW__) && defined(__AVX512VL__)) || (MD_W == 8 && defined(__AVX2__))) && \
    !defined(MD_NO_INT8_DOT)
#define MD_INT8_DOT 1
static constexpr int64_t MD_I16_W = 2 * MD_W; /* int16 lanes of a vector */
#if MD_W == 16
typedef __m512i md_vi;
MD_INLINE md_vi md_vi_zero() { return _mm512_setzero_si512(); }
MD_INLINE md_vi md_vi_load_i16(const int16_t* p) { return _mm512_loadu_si512(p); }
/* n (<= 32) int8 codes from p sign-extended to int16, zeros past n (bytes past n are not read) */
MD_INLINE md_vi md_vi_load_i8(const void* p, int64_t n) {
  return _mm512_cvtepi8_epi16(n >= 32 ? _mm256_loadu_si256((const __m256i*)p) : _mm256_maskz_loadu_epi8((__mmask32)((1ull << n) - 1u), p));
}
MD_INLINE md_vi md_vi_dot(md_vi acc, md_vi a, md_vi b) {
#if defined(__AVX512VNNI__)
  return _mm512_dpwssd_epi32(acc, a, b);
#else
  return _mm512_add_epi32(acc, _mm512_madd_epi16(a, b));
#endif
}
MD_INLINE md_vf md_vi_to_vf(md_vi x) { return _mm512_cvtepi32_ps(x); }
MD_INLINE md_vi md_vi_add(md_vi a, md_vi b) { return _mm512_add_epi32(a, b); }
#else
typedef __m256i md_vi;
MD_INLINE md_vi md_vi_zero() { return _mm256_setzero_si256(); }
MD_INLINE md_vi md_vi_load_i16(const int16_t* p) { return _mm256_loadu_si256((const __m256i*)p); }
MD_INLINE md_vi md_vi_load_i8(const void* p, int64_t n) {
  if (n >= 16) return _mm256_cvtepi8_epi16(_mm_loadu_si128((const __m128i*)p));
  alignas(16) int8_t part[16] = {};
  memcpy(part, p, (size_t)n);
  return _mm256_cvtepi8_epi16(_mm_load_si128((const __m128i*)part));
}
MD_INLINE md_vi md_vi_dot(md_vi acc, md_vi a, md_vi b) {
#if defined(__AVXVNNI__)
  return _mm256_dpwssd_avx_epi32(acc, a, b);
#else
  return _mm256_add_epi32(acc, _mm256_madd_epi16(a, b));
#endif
}
MD_INLINE md_vf md_vi_to_vf(md_vi x) { return _mm256_cvtepi32_ps(x); }
MD_INLINE md_vi md_vi_add(md_vi a, md_vi b) { return _mm256_add_epi32(a, b); }
#endif

/* row[0..dim) as int16 times one power-of-two scale, the smallest power of two with max|row| < 32768 * scale (so
 * scale <= 2^-14 * max|row|): an element is rounded to a multiple of the scale (|error| <= scale / 2, or < scale for
 * one clamped to 32767), and is exact when its last significant bit is not below the scale (a bf16 element at least
 * 2^-7 times the row's largest, an fp16 one at least 2^-4 times it).
 * Zero padded to ld. NaN for a row that holds a NaN, an infinity or a largest |element| below 2^-100 (its scale
 * would leave the normal range), which keeps the fp32 path; 0 for a row of zeros. */
MD_INLINE float md_quantize_row_i16(const float* row, int64_t dim, int16_t* out, int64_t ld) {
  /* a vector at a time: v - v is 0 for a finite element and NaN for an infinity or a NaN, and sums to NaN if any is
   * not finite; max(v, -v) is |v| for a finite one. One element at a time (the scalar loop g++ made of it before),
   * int8 decode, kv 16, D 128, 2 threads: G 4 11.5 us a call -> 8.9, G 8 18.1 -> 13.0, G 4 B 4 33.0 -> 22.4; kv 1024
   * G 8 170 -> 164. Plain comparisons in the tail: without -ffinite-math-only g++ calls libm for fmaxf and fminf. */
  const md_vf zero = md_vset1(0.0f);
  md_vf vmax = zero, vbad = zero;
  int64_t d = 0;
  for (; d + MD_W <= dim; d += MD_W) {
    const md_vf v = md_vload(row + d);
    vbad = md_vadd(vbad, md_vsub(v, v));
    vmax = md_vmax(vmax, md_vmax(v, md_vsub(zero, v)));
  }
  if (!(md_vhsum(vbad) == 0.0f)) return NAN;
  float amax = md_vhmax(vmax);
  for (; d < dim; ++d) {
    const float v = row[d], a = fabsf(v);
    if (!(v - v == 0.0f)) return NAN;
    amax = a > amax ? a : amax;
  }
  if (amax != 0.0f && amax < 0x1p-100f) return NAN;
  /* amax is 0 or normal (2^-100 <= amax < 2^128): 2^(e - 1) <= amax < 2^e for e its biased exponent - 126, and the
   * powers of two 2^(e - 15) and 2^(15 - e) are normal floats, made from their bits rather than by libm's ldexpf */
  const int e = (int)(md_bits_from_f32(amax) >> 23) - 126;
  const float scale = amax > 0.0f ? md_f32_from_bits((uint32_t)(e - 15 + 127) << 23) : 0.0f; /* amax / scale < 2^15 */
  const float inv = amax > 0.0f ? md_f32_from_bits((uint32_t)(15 - e + 127) << 23) : 0.0f;
  for (int64_t d = 0; d < dim; ++d) {
    const float x = rintf(row[d] * inv);
    out[d] = (int16_t)(x < -32767.0f ? -32767.0f : x > 32767.0f ? 32767.0f : x);
  }
  for (int64_t d = dim; d < ld; ++d) out[d] = 0;
  return scale;
}

/* md_dot_block for int8 key rows against int16 query rows (row stride ldq, zero padded to a multiple of MD_I16_W):
 * integer sums per (query row, key row) without the query's scale, which the caller applies with the keys'. */
template <int DT, int64_t DIM, int RQ, int JK>
MD_INLINE void md_dot_block(const int16_t* __restrict q, int64_t ldq, const void* const* __restrict k,
                            float* __restrict s, int64_t lds) {
  static_assert(DT == MD_INT8, "int16 query rows only against int8 keys");
  constexpr int64_t QV = (DIM + MD_I16_W - 1) / MD_I16_W;
  constexpr int64_t tail = DIM - (QV - 1) * MD_I16_W;
  const auto key = [&](int j, int64_t x) { return md_vi_load_i8((const int8_t*)k[j] + x * MD_I16_W, x == QV - 1 ? tail : MD_I16_W); };
  md_vi acc[RQ * JK];
  for (int x = 0; x < RQ * JK; ++x) acc[x] = md_vi_zero();
  /* key rows in address order when the query block fits in registers next to the accumulators, as md_dot_block */
  if constexpr (RQ * QV + RQ * JK + 2 <= MD_VREGS) {
    md_vi qv[RQ][QV];
    for (int r = 0; r < RQ; ++r)
      for (int64_t x = 0; x < QV; ++x) qv[r][x] = md_vi_load_i16(q + r * ldq + x * MD_I16_W);
    for (int j = 0; j < JK; ++j)
      for (int64_t x = 0; x < QV; ++x) {
        const md_vi kv = key(j, x);
        for (int r = 0; r < RQ; ++r) acc[r * JK + j] = md_vi_dot(acc[r * JK + j], qv[r][x], kv);
      }
  } else if constexpr (RQ == 1) {
    /* one query row read from L1 as md_dot_block does on AVX2, key rows in address order (bf16 query, G 1: 1.09x) */
    for (int j = 0; j < JK; ++j) {
      md_vi a[2] = {md_vi_zero(), md_vi_zero()};
      for (int64_t x = 0; x < QV; ++x) a[x % 2] = md_vi_dot(a[x % 2], md_vi_load_i16(q + x * MD_I16_W), key(j, x));
      acc[j] = md_vi_add(a[0], a[1]);
      md_compiler_barrier();
    }
  } else {
    for (int64_t x = 0; x < QV; ++x)
      for (int j = 0; j < JK; ++j) {
        const md_vi kv = key(j, x);
        for (int r = 0; r < RQ; ++r) acc[r * JK + j] = md_vi_dot(acc[r * JK + j], md_vi_load_i16(q + r * ldq + x * MD_I16_W), kv);
      }
  }
  md_vf sums_v[RQ * JK];
  for (int x = 0; x < RQ * JK; ++x) sums_v[x] = md_vi_to_vf(acc[x]);
  md_store_dot_sums<RQ, JK>(sums_v, s, lds);
}
#endif /* MD_INT8_DOT */

/* Whether query rows or weights of type T are bf16 pairs (uint32_t words) rather than fp32. */
template <class T> struct md_is_pair_words { static constexpr bool value = false; };
template <> struct md_is_pair_words<uint32_t> { static constexpr bool value = true; };

/* S[m x n8] = Q K^T for m query rows (fp32, bf16 pairs against bf16 keys with MD_BF16_DOT, int16 against int8 keys
 * with MD_INT8_DOT) and n8 (a multiple of 8) key rows by pointer. Key rows outermost, so each group of K rows is read
 * from memory once and reused by every query row while it sits in L1; query rows in groups of 4 (then 2, then 1)
 * keep eight accumulators busy. */
template <int DT, int64_t DIM, class T>
MD_INLINE void md_dot_rows(const T* q, int64_t ldq, int64_t m, const void* const* k, int64_t n8, float* s,
                           int64_t lds) {
  /* Key rows per block of four query rows: with 32 vector registers four (sixteen accumulators, one md_vhsum16),
   * except for bf16 keys on the dot products, whose 4 x 2 block keeps the query rows in registers and reads the key
   * rows in address order (4 x 4 measured 0-8% slower there from memory; 8-bit keys 6-11% and fp16 4% faster). With
   * eight rows or more (G 8, or G 4 with two query rows) the second block of four rows reads the same keys from L1
   * anyway, and 4 x 4 wins for bf16 too: G 8 decode, interleaved (D 128, Hkv 8, 2 threads, AVX-512 + BF16), kv 16384
   * B 1 1.05-1.06x faster, B 4 1.02-1.06x, kv 256 1.07-1.08x; G 4 keeps 4 x 2 (kv 16384 1.6% slower at 4 x 4). */
  constexpr int jk4 = MD_W == 16 && !(DT == MD_BFLOAT16 && md_is_pair_words<T>::value) ? 4 : 2;
  for (int64_t j = 0; j < n8; j += 8) {
    int64_t r = 0;
    if constexpr (jk4 == 2 && MD_W == 16)
      if (m >= 8)
        for (; r + 4 <= m; r += 4)
          for (int64_t jj = j; jj < j + 8; jj += 4)
            md_dot_block<DT, DIM, 4, 4>(q + r * ldq, ldq, k + jj, s + r * lds + jj, lds);
    for (; r + 4 <= m; r += 4)
      for (int64_t jj = j; jj < j + 8; jj += jk4)
        md_dot_block<DT, DIM, 4, jk4>(q + r * ldq, ldq, k + jj, s + r * lds + jj, lds);
    for (; r + 2 <= m; r += 2)
      for (int64_t jj = j; jj < j + 8; jj += 4)
        md_dot_block<DT, DIM, 2, 4>(q + r * ldq, ldq, k + jj, s + r * lds + jj, lds);
    for (; r < m; ++r) md_dot_block<DT, DIM, 1, 8>(q + r * ldq, ldq, k + j, s + r * lds + j, lds);
  }
}

/* C[MR rows][NV vectors from column c0] = C * row_scale + sum_{j<n} P[r][j] V_j[c0..]: V rows by pointer (dtype DT,
 * DIM elements), converted in registers. The first PAIRS vectors (an even count) are read as bf16 pairs and land
 * in the paired order; with TAIL the last vector runs past DIM and loads zeros there. */
template <int DT, int64_t DIM, int MR, int NV, int PAIRS, bool TAIL>
MD_INLINE void md_axpy_block(const float* __restrict p, int64_t ldp, const void* const* __restrict v, int64_t n,
                             int64_t c0, float* __restrict c, int64_t ldc, const float* __restrict row_scale) {
  static_assert(PAIRS % 2 == 0 && PAIRS <= NV, "pairs cover whole 16-element blocks");
  md_vf acc[MR][NV];
  for (int r = 0; r < MR; ++r) {
    const md_vf sc = md_vset1(row_scale[r]);
    for (int x = 0; x < NV; ++x) acc[r][x] = md_vmul(md_vload(c + r * ldc + c0 + x * MD_W), sc);
  }
  /* MR broadcasts, then one V vector (or pair) at a time: MR * NV + MR + 2 registers. */
  for (int64_t j = 0; j < n; ++j) {
    md_vf pv[MR];
    for (int r = 0; r < MR; ++r) pv[r] = md_vset1(p[r * ldp + j]);
    for (int x = 0; x < PAIRS; x += 2) {
      md_vf ve, vo;
      md_vload_bf16_pair(v[j], c0 + x * MD_W, &ve, &vo);
      for (int r = 0; r < MR; ++r) {
        acc[r][x] = md_vfma(pv[r], ve, acc[r][x]);
        acc[r][x + 1] = md_vfma(pv[r], vo, acc[r][x + 1]);
      }
    }
    /* whole batches of vectors converted at once (md_vload_batch), then one at a time */
    constexpr int batch = md_vload_batch<DT>();
    constexpr int batched = batch > 1 ? PAIRS + (NV - PAIRS - (TAIL ? 1 : 0)) / batch * batch : PAIRS;
    for (int x = PAIRS; x < batched; x += batch) {
      md_vf vv[batch];
      md_vload_dt4<DT>(v[j], c0 + x * MD_W, vv);
      for (int y = 0; y < batch; ++y) {
        const md_vf vr = md_vreg(vv[y]);
        for (int r = 0; r < MR; ++r) acc[r][x + y] = md_vfma(pv[r], vr, acc[r][x + y]);
      }
    }
    for (int x = batched; x < NV; ++x) {
      const md_vf vv = TAIL && x == NV - 1 ? md_vload_dt_partial<DT>(v[j], c0 + x * MD_W, DIM - c0 - x * MD_W)
                                           : md_vload_dt<DT>(v[j], c0 + x * MD_W);
      const md_vf vr = md_vreg(vv);
      for (int r = 0; r < MR; ++r) acc[r][x] = md_vfma(pv[r], vr, acc[r][x]);
    }
  }
  for (int r = 0; r < MR; ++r)
    for (int x = 0; x < NV; ++x) md_vstore(c + r * ldc + c0 + x * MD_W, acc[r][x]);
}

/* Rows per P V register block and accumulator vectors per row: as many accumulators as the register file holds
 * next to the V vectors and the broadcasts, and never fewer than eight chains (one row alone needs eight to hide the
 * FMA latency). Even counts, so that chunks are whole bf16 pairs. */
#if MD_W == 16
#define MD_AXPY_MR 8
MD_INLINE constexpr int md_axpy_vectors(int mr) { return mr == 1 ? 8 : mr == 2 ? 6 : mr <= 4 ? 4 : 2; }
#elif MD_W == 8
#define MD_AXPY_MR 4
MD_INLINE constexpr int md_axpy_vectors(int mr) { return mr == 1 ? 8 : mr == 2 ? 4 : 2; }
#elif MD_W == 4
/* NEON has AVX-512's 32 registers: the same counts (8 rows: 8 x 2 + 8 + 2 = 26 of 32) */
#define MD_AXPY_MR 8
MD_INLINE constexpr int md_axpy_vectors(int mr) { return mr == 1 ? 8 : mr == 2 ? 6 : mr <= 4 ? 4 : 2; }
#else
#define MD_AXPY_MR 4
MD_INLINE constexpr int md_axpy_vectors(int mr) { return mr == 1 ? 8 : 4; }
#endif

/* Key rows per P V step: all columns of MR rows against this many V rows before moving on, so V is read in
 * address order (a stream the hardware prefetcher follows) and each V line is used while it is in L1. */
#define MD_AXPY_KB 8

/* All columns [0, DIM) of MR rows, MD_AXPY_KB V rows at a time: full chunks of md_axpy_vectors(MR) vectors, then
 * the remaining vectors. The accumulator is rescaled by row_scale once, with the first V rows. */
template <int DT, int64_t DIM, int MR>
MD_INLINE void md_axpy_row_block(const float* p, int64_t ldp, const void* const* v, int64_t n, float* c, int64_t ldc,
                                 const float* row_scale) {
  constexpr int NV = md_axpy_vectors(MR);
  constexpr int64_t chunk = NV * MD_W;
  constexpr int64_t full = DIM / chunk * chunk;
  constexpr int rest = (int)((DIM - full + MD_W - 1) / MD_W);
  constexpr int paired = (int)md_paired_dim<DT, DIM>();
  constexpr int full_pairs = paired >= chunk && NV % 2 == 0 ? NV : 0;
  constexpr int rest_pairs = paired > full ? (int)((paired - full) / MD_W) : 0;
  float ones[MR];
  for (int r = 0; r < MR; ++r) ones[r] = 1.0f;
  for (int64_t j0 = 0; j0 < n || j0 == 0; j0 += MD_AXPY_KB) {
    const int64_t nj = md_min(MD_AXPY_KB, n - j0);
    const float* scale = j0 == 0 ? row_scale : ones;
    for (int64_t c0 = 0; c0 < full; c0 += chunk)
      md_axpy_block<DT, DIM, MR, NV, full_pairs, false>(p + j0, ldp, v + j0, nj, c0, c, ldc, scale);
    if constexpr (rest > 0)
      md_axpy_block<DT, DIM, MR, rest, rest_pairs, DIM % MD_W != 0>(p + j0, ldp, v + j0, nj, full, c, ldc, scale);
  }
}

#if defined(MD_BF16_DOT)
/* md_axpy_block on VDPBF16PS for bf16 V rows, the P V step of decoding: C[MR rows][NV vectors from column c0] =
 * C * row_scale + sum_{i<np} P[r][2i] V_2i + P[r][2i + 1] V_2i+1, with P as bf16 pairs (words pw[r * ldpw + i], see
 * md_round_pairs) and V rows by pointer, two rows at a time interleaved by VPERMT2W (md_interleave16) as they are
 * read: per 16 columns and pair of rows two loads, one permute and MR dot products, where the fp32 path converts
 * twice and multiplies 2 MR times. C keeps the natural column order; with TAIL the last vector runs past DIM and
 * reads zeros there. */
template <int DT, int64_t DIM, int MR, int NV, bool TAIL>
MD_INLINE void md_axpy_pairs_block(const uint32_t* __restrict pw, int64_t ldpw, const void* const* __restrict v,
                                   int64_t np, int64_t c0, float* __restrict c, int64_t ldc,
                                   const float* __restrict row_scale) {
  __m512 acc[MR][NV];
  for (int r = 0; r < MR; ++r) {
    const __m512 sc = _mm512_set1_ps(row_scale[r]);
    for (int x = 0; x < NV; ++x) acc[r][x] = _mm512_mul_ps(_mm512_loadu_ps(c + r * ldc + c0 + x * 16), sc);
  }
#if defined(MD_CODES_BF16_LOOKUP)
  if constexpr (md_codes_pairs<DT>()) {
    /* 8-bit V: 32 columns of the pair of rows at a time, the codes of both rows in one vector, converted to bf16 bytes
     * (md_codes_bf16_bytes) and put together as pairs by two VPERMT2B: per 16 columns and pair of rows about four
     * operations and MR dot products, where the fp32 path converts six times and multiplies 2 MR times. */
    const __m512i idx0 = md_codes_pair_index(0), idx1 = md_codes_pair_index(1);
#pragma GCC unroll 1
    for (int64_t i = 0; i < np; ++i) {
      __m512bh pv[MR];
      for (int r = 0; r < MR; ++r) pv[r] = (__m512bh)_mm512_set1_epi32((int)pw[r * ldpw + i]);
      for (int x = 0; x < NV; x += 2) {
        const int64_t col = c0 + x * 16;
        const uint8_t* ra = (const uint8_t*)v[2 * i] + col;
        const uint8_t* rb = (const uint8_t*)v[2 * i + 1] + col;
        __m512i codes;
        if (!TAIL && x + 1 < NV) {
          codes = _mm512_inserti64x4(_mm512_castsi256_si512(_mm256_loadu_si256((const __m256i*)ra)),
                                     _mm256_loadu_si256((const __m256i*)rb), 1);
        } else { /* the block's last vector alone, or past DIM: zeros there */
          const int64_t n = md_min(DIM - col, (int64_t)(NV - x) * 16);
          const __mmask32 m = n >= 32 ? ~(__mmask32)0 : (__mmask32)((1u << n) - 1u);
          codes = _mm512_inserti64x4(_mm512_castsi256_si512(_mm256_maskz_loadu_epi8(m, ra)), _mm256_maskz_loadu_epi8(m, rb), 1);
        }
        __m512i lo, hi;
        md_codes_bf16_bytes<DT>(codes, &lo, &hi);
        const __m512bh w0 = (__m512bh)_mm512_permutex2var_epi8(lo, idx0, hi);
        for (int r = 0; r < MR; ++r) acc[r][x] = _mm512_dpbf16_ps(acc[r][x], w0, pv[r]);
        if (x + 1 < NV) {
          const __m512bh w1 = (__m512bh)_mm512_permutex2var_epi8(lo, idx1, hi);
          for (int r = 0; r < MR; ++r) acc[r][x + 1] = _mm512_dpbf16_ps(acc[r][x + 1], w1, pv[r]);
        }
      }
    }
  } else
#endif
  {
    const __m512i idx = md_interleave16();
    const __mmask16 last = md_lanes16(DIM - c0 - (NV - 1) * 16);
    /* 16 elements of a row from column c0 + 16 x (zeros past DIM in the last vector with TAIL) */
    const auto load16 = [&](const void* row, int x) {
      const uint16_t* p = (const uint16_t*)row + c0 + x * 16;
      return TAIL && x == NV - 1 ? _mm256_maskz_loadu_epi16(last, p) : _mm256_loadu_si256((const __m256i*)p);
    };
    /* not unrolled: g++ 12 then spills accumulators of the 4-row block */
#pragma GCC unroll 1
    for (int64_t i = 0; i < np; ++i) {
      for (int x = 0; x < NV; ++x) {
        const __m512i e = _mm512_castsi256_si512(load16(v[2 * i], x));
        const __m512i o = _mm512_castsi256_si512(load16(v[2 * i + 1], x));
        const __m512bh vv = (__m512bh)_mm512_permutex2var_epi16(e, idx, o);
        for (int r = 0; r < MR; ++r)
          acc[r][x] = _mm512_dpbf16_ps(acc[r][x], vv, (__m512bh)_mm512_set1_epi32((int)pw[r * ldpw + i]));
      }
    }
  }
  for (int r = 0; r < MR; ++r)
    for (int x = 0; x < NV; ++x) _mm512_storeu_ps(c + r * ldc + c0 + x * 16, acc[r][x]);
}

/* md_axpy_row_block with P as bf16 pairs (md_round_pairs: an odd n ends with a zero weight; v[n] is then readable,
 * the zero row): all columns of MR rows, MD_AXPY_KB V rows (half as many pairs) at a time. */
template <int DT, int64_t DIM, int MR>
MD_INLINE void md_axpy_row_block(const uint32_t* pw, int64_t ldpw, const void* const* v, int64_t n, float* c,
                                 int64_t ldc, const float* row_scale) {
  static_assert(DT == MD_BFLOAT16 || md_codes_pairs<DT>(), "bf16 pairs against bf16 or 8-bit values");
  constexpr int NV = md_axpy_vectors(MR);
  constexpr int64_t chunk = NV * 16, full = DIM / chunk * chunk;
  constexpr int rest = (int)((DIM - full + 15) / 16);
  const int64_t np = md_pairs(n);
  float ones[MR];
  for (int r = 0; r < MR; ++r) ones[r] = 1.0f;
  for (int64_t i0 = 0; i0 < np || i0 == 0; i0 += MD_AXPY_KB / 2) {
    const int64_t ni = md_min(MD_AXPY_KB / 2, np - i0);
    const float* scale = i0 == 0 ? row_scale : ones;
    for (int64_t c0 = 0; c0 < full; c0 += chunk)
      md_axpy_pairs_block<DT, DIM, MR, NV, false>(pw + i0, ldpw, v + 2 * i0, ni, c0, c, ldc, scale);
    if constexpr (rest > 0)
      md_axpy_pairs_block<DT, DIM, MR, rest, DIM % 16 != 0>(pw + i0, ldpw, v + 2 * i0, ni, full, c, ldc, scale);
  }
}
#endif /* MD_BF16_DOT */

template <int DT, int64_t DIM, int R = MD_AXPY_MR - 1, class T>
MD_INLINE void md_axpy_row_tail(int rows, const T* p, int64_t ldp, const void* const* v, int64_t n, float* c,
                                int64_t ldc, const float* row_scale) {
  if constexpr (R > 0) {
    if (rows == R) md_axpy_row_block<DT, DIM, R>(p, ldp, v, n, c, ldc, row_scale);
    else md_axpy_row_tail<DT, DIM, R - 1>(rows, p, ldp, v, n, c, ldc, row_scale);
  }
}

/* O[m x DIM] = O * row_scale + P[m x n] V[n x DIM], V rows by pointer: the P V step of decoding. O has row stride
 * ldc >= DIM rounded up to MD_W (the padding lanes receive zeros) and comes out in the paired order for DT. P is fp32,
 * or with MD_BF16_DOT bf16 pairs against bf16 V (uint32_t words, md_round_pairs), whose O keeps the natural order, as
 * the fp32 path leaves it on AVX-512, so both may add to the same rows. */
template <int DT, int64_t DIM, class T>
MD_INLINE void md_axpy_rows(const T* p, int64_t ldp, int64_t m, const void* const* v, int64_t n, float* c,
                            int64_t ldc, const float* row_scale) {
  /* int8 V as bf16 pairs keeps eight vectors of constants (md_codes_bf16_bytes, the pair indices) beside the
   * accumulators and the weights: more than four rows at a time would spill */
  constexpr int mr = md_is_pair_words<T>::value && DT == MD_INT8 ? 4 : MD_AXPY_MR;
  int64_t i = 0;
  for (; i + mr <= m; i += mr) md_axpy_row_block<DT, DIM, mr>(p + i * ldp, ldp, v, n, c + i * ldc, ldc, row_scale + i);
  if (i < m) md_axpy_row_tail<DT, DIM, mr - 1>((int)(m - i), p + i * ldp, ldp, v, n, c + i * ldc, ldc, row_scale + i);
}

/* ------------------------------------------------------------------------------------------------------------ */
/* Non-finite V. A position whose weight is exactly 0 (masked, or in a block a row does not see) must add nothing to a
 * row, but 0 * inf and 0 * NaN are NaN. The P V products are fast only without a test per product, so the templates
 * look for the rare case per tile: a zero weight (md_any_zero) AND an inf or NaN in that tile's V; then those V
 * values are kept out of the product and added only to the rows that weigh them. */

MD_INLINE bool md_finite(float x) { return x - x == 0.0f; }

/* Some p[i][j] < limit for i < rows, j < n (a compare per vector: this runs on every tile). Weights are never
 * negative, so md_any_zero's limit finds the zeros; FLT_MIN also finds the subnormal weights that rounding to bf16
 * flushes to 0 (md_round_pairs). */
MD_INLINE bool md_any_below(const float* p, int64_t ld, int64_t rows, int64_t n, float limit) {
  bool below = false;
  for (int64_t i = 0; i < rows; ++i) {
    const float* row = p + i * ld;
    int64_t j = 0;
#if MD_W == 16
    __mmask16 hit = 0;
    for (; j + 16 <= n; j += 16) hit |= _mm512_cmp_ps_mask(_mm512_loadu_ps(row + j), _mm512_set1_ps(limit), _CMP_LT_OQ);
    below |= hit != 0;
#elif MD_W == 8
    __m256 hit = _mm256_setzero_ps();
    for (; j + 8 <= n; j += 8) hit = _mm256_or_ps(hit, _mm256_cmp_ps(_mm256_loadu_ps(row + j), _mm256_set1_ps(limit), _CMP_LT_OQ));
    below |= _mm256_movemask_ps(hit) != 0;
#elif MD_W == 4
    uint32x4_t hit = vdupq_n_u32(0);
    for (; j + 4 <= n; j += 4) hit = vorrq_u32(hit, vcltq_f32(vld1q_f32(row + j), vdupq_n_f32(limit)));
    below |= vmaxvq_u32(hit) != 0;
#endif
    for (; j < n; ++j) below |= row[j] < limit;
  }
  return below;
}

MD_INLINE bool md_any_zero(const float* p, int64_t ld, int64_t rows, int64_t n) {
  return md_any_below(p, ld, rows, n, FLT_TRUE_MIN);
}

/* x[0..count) holds no inf or NaN (0 * x is 0 exactly when x is finite); four chains hide the FMA latency. */
MD_INLINE bool md_all_finite(const float* x, int64_t count) {
  const md_vf zero = md_vset1(0.0f);
  md_vf acc[4] = {zero, zero, zero, zero};
  int64_t i = 0;
  for (; i + 4 * MD_W <= count; i += 4 * MD_W)
    for (int k = 0; k < 4; ++k) acc[k] = md_vfma(md_vload(x + i + k * MD_W), zero, acc[k]);
  float rest = 0.0f;
  for (; i < count; ++i) rest += x[i] * 0.0f;
  return md_vhsum(md_vadd(md_vadd(acc[0], acc[1]), md_vadd(acc[2], acc[3]))) + rest == 0.0f;
}

/* A stored row of DIM elements of dtype DT holds no inf or NaN (exponent bits all ones). */
template <int DT>
MD_INLINE bool md_row_finite(const void* row, int64_t dim) {
  bool finite = true;
  if constexpr (DT == MD_INT8) return true;
  if constexpr (DT == MD_FP8_E4M3FN || DT == MD_FP8_E5M2) {
    const uint8_t mask = DT == MD_FP8_E4M3FN ? 0x7fu : 0x7cu;
    const uint8_t* u = (const uint8_t*)row;
    for (int64_t d = 0; d < dim; ++d) finite &= (uint8_t)(u[d] & mask) != mask;
    return finite;
  }
  if (DT == MD_FLOAT32) {
    const uint32_t* u = (const uint32_t*)row;
    for (int64_t d = 0; d < dim; ++d) finite &= (u[d] & 0x7f800000u) != 0x7f800000u;
  } else {
    const uint16_t mask = DT == MD_BFLOAT16 ? 0x7f80u : 0x7c00u;
    const uint16_t* u = (const uint16_t*)row;
    for (int64_t d = 0; d < dim; ++d) finite &= (uint16_t)(u[d] & mask) != mask;
  }
  return finite;
}

/* ------------------------------------------------------------------------------------------------------------ */
/* Row helpers of the online softmax. */

MD_INLINE void md_scale_row(float* s, int64_t n, float scale) {
  const md_vf sv = md_vset1(scale);
  int64_t j = 0;
  for (; j + MD_W <= n; j += MD_W) md_vstore(s + j, md_vmul(md_vload(s + j), sv));
  for (; j < n; ++j) s[j] *= scale;
}

/* Where md_softmax_row puts the weights p: back into the scores (md_p_in_place), or, for the bf16 products, rounded
 * into bf16 pairs (md_p_as_pairs). vec stores the vector of p at j; the row's last n % MD_W weights are always
 * written to s, and `end` takes them from there. (Member functions: implicitly inline, and a few instructions.) */
struct md_p_in_place {
  void vec(float* s, int64_t j, md_vf p) const { md_vstore(s + j, p); }
  void end(const float*, int64_t, int64_t) const {}
};

/* Online softmax update of one row against n new scores s[0..n) (masked = -inf). When SCALE_FIRST the values are
 * raw q.k and are multiplied by scale here (the caller had nothing to apply between scaling and softmax); with a
 * positive scale max(s * scale) == max(s) * scale exactly (rounding is monotonic), so the multiplication moves into
 * the exp pass and the max pass only reads. On return the weights p = exp(s - m_new) are where `out` puts them (by
 * default s[0..n)), *m and *l are updated and the result is the factor exp(m_old - m_new) that the row's output
 * accumulator must be multiplied by. A row that is still fully masked keeps m = -inf, l = 0, p = 0. */
template <bool SCALE_FIRST, class Out = md_p_in_place>
MD_INLINE float md_softmax_row(float* s, int64_t n, float scale, float* m, float* l, const Out& out = Out{}) {
  if (SCALE_FIRST && !(scale > 0.0f)) {
    md_scale_row(s, n, scale);
    return md_softmax_row<false>(s, n, 1.0f, m, l, out);
  }
  const int64_t nv = n / MD_W * MD_W;
  md_vf vmax = md_vset1(-INFINITY);
  for (int64_t j = 0; j < nv; j += MD_W) vmax = md_vmax(vmax, md_vload(s + j));
  float row_max = md_vhmax(vmax);
  for (int64_t j = nv; j < n; ++j) row_max = s[j] > row_max ? s[j] : row_max;
  if (SCALE_FIRST) row_max *= scale;

  const float m_old = *m;
  const float m_new = row_max > m_old ? row_max : m_old;
  if (m_new == -INFINITY) {
    // Nothing attended yet, unless the scores are NaN (a NaN query row): then, as in torch.softmax, the row is NaN.
    bool nan = false;
    for (int64_t j = 0; j < n; ++j) {
      nan |= s[j] != s[j];
      s[j] = 0.0f;
    }
    out.end(s, 0, n);
    if (nan) *l = NAN;
    return 1.0f;
  }
  const md_vf mv = md_vset1(m_new), sv = md_vset1(scale);
  md_vf vsum = md_vset1(0.0f);
  for (int64_t j = 0; j < nv; j += MD_W) {
    md_vf x = md_vload(s + j);
    if (SCALE_FIRST) x = md_vmul(x, sv);
    const md_vf p = md_vexp(md_vsub(x, mv));
    out.vec(s, j, p);
    vsum = md_vadd(vsum, p);
  }
  float sum = md_vhsum(vsum);
  for (int64_t j = nv; j < n; ++j) {
    const float p = md_exp_scalar((SCALE_FIRST ? s[j] * scale : s[j]) - m_new);
    s[j] = p;
    sum += p;
  }
  out.end(s, nv, n);
  const float alpha = m_old == -INFINITY ? 0.0f : md_exp_scalar(m_old - m_new);
  *l = *l * alpha + sum;
  *m = m_new;
  return alpha;
}

/* ------------------------------------------------------------------------------------------------------------ */
/* How a row of queries sees one kv block: never read, mask_mod evaluated, or mask_mod skipped. */
enum md_row_kind : uint8_t { MD_ROW_ABSENT = 0, MD_ROW_PARTIAL = 1, MD_ROW_FULL = 2 };

/* Block iteration: the kv blocks of one (b, h, q block) in ascending order, merging the partial and full lists of
 * the block mask. A NULL partial list with n_partial = N stands for blocks 0..N-1, all partial (no block mask). */
struct md_block_cursor {
  const int32_t* partial;
  int64_t n_partial;
  const int32_t* full;
  int64_t n_full;
  int64_t i_partial, i_full;
};

MD_INLINE md_block_cursor md_block_cursor_make(const int32_t* partial, int64_t n_partial, const int32_t* full,
                                               int64_t n_full) {
  md_block_cursor c = {partial, n_partial, full, n_full, 0, 0};
  return c;
}

/* Next block (ascending); returns false when both lists are exhausted. With no list, blocks are 0..n_partial-1. */
MD_INLINE bool md_block_next(md_block_cursor* c, int64_t* block, bool* is_full) {
  const bool has_p = c->i_partial < c->n_partial, has_f = c->i_full < c->n_full;
  if (!has_p && !has_f) return false;
  const int64_t p = has_p ? (c->partial ? c->partial[c->i_partial] : c->i_partial) : INT64_MAX;
  const int64_t f = has_f ? c->full[c->i_full] : INT64_MAX;
  if (p <= f) { *block = p; *is_full = false; ++c->i_partial; }
  else { *block = f; *is_full = true; ++c->i_full; }
  return true;
}

/* ------------------------------------------------------------------------------------------------------------ */
/* Output finalisation of one row: out = acc / l in the output dtype, lse = m + log(l); a row that never saw an
 * unmasked position writes zeros and lse = -inf. A NaN sum (a NaN or +inf score was attended) gives a NaN row. */
template <int DT>
MD_INLINE void md_finalize_row(const float* acc, int64_t dim, float m, float l, void* out, float* lse) {
  if (l > 0.0f || l != l) {
    md_store_scaled<DT>(out, acc, dim, 1.0f / l);
    if (lse) *lse = m + logf(l);
  } else {
    for (int64_t d = 0; d < dim; ++d) md_store_elem<DT>(out, d, 0.0f);
    if (lse) *lse = -INFINITY;
  }
}

#endif /* MINDUCTOR_H */
