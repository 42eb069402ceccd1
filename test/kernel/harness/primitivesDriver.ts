/**
 * minductor.h's numeric primitives, checked by a small C++ driver: built for each target by its test (this machine,
 * the scalar fallback, aarch64 NEON under emulation) and held to the same bounds by expectPrimitives.
 */
import { expect, it } from "vitest";

/**
 * A driver over minductor.h's numeric primitives, printing one `name value` line per check: the vector and scalar
 * exp against libm's double exp, the exact fp16 conversions against the hardware's (F16C, NEON) over every fp16 value
 * and a stride of all float32 values, the vector loads (md_vload_dt) of every 8- and 16-bit code against the scalar
 * loads, every 8-bit code made bf16 by byte lookups, int8 decode's int16 query rows against libm's frexpf and ldexpf,
 * and bf16 rounding on hand-picked ties.
 */
export const PRIMITIVES_DRIVER = String.raw`
#include "minductor.h"
#include <stdio.h>
#include <math.h>

static int64_t ulp_distance(float a, float b) {
  int32_t ia, ib; memcpy(&ia, &a, 4); memcpy(&ib, &b, 4);
  if (ia < 0) ia = INT32_MIN - ia;
  if (ib < 0) ib = INT32_MIN - ib;
  return ia > ib ? (int64_t)ia - ib : (int64_t)ib - ia;
}
static float vexp1(float x) {
  float in[MD_W], out[MD_W];
  for (int i = 0; i < MD_W; ++i) in[i] = x;
  md_vstore(out, md_vexp(md_vload(in)));
  return out[MD_W - 1];
}
static bool is_nan16(uint16_t h) { return (h & 0x7c00) == 0x7c00 && (h & 0x3ff); }
#if MD_W == 4
static float neon_f16_to_f32(uint16_t h) { return vgetq_lane_f32(vcvt_f32_f16(vreinterpret_f16_u16(vdup_n_u16(h))), 0); }
static uint16_t neon_f32_to_f16(float x) { return vget_lane_u16(vreinterpret_u16_f16(vcvt_f16_f32(vdupq_n_f32(x))), 0); }
#endif

/* Every code of DT (stored as T, count of them) through the vector loads, against md_load_elem: the same float, or NaN
 * for NaN. Adds the codes checked to *checked. BATCHED: through md_vload_dt4 (md_vload_batch<DT>() vectors at once,
 * e4m3fn's byte lookups where the CPU has them), the codes in a scrambled order (code (37 i + 11) mod count at element
 * i) so that each lane meets many codes; else md_vload_dt, MD_W at a time, code i at element i. */
template <int DT, typename T, bool BATCHED = false>
static int64_t vload_mismatches(int64_t count, int64_t* checked) {
  static T codes[65536];
  for (int64_t i = 0; i < count; ++i) codes[i] = (T)(BATCHED ? (i * 37 + 11) % count : i);
  constexpr int batch = BATCHED ? md_vload_batch<DT>() : 1;
  int64_t bad = 0;
  for (int64_t i = 0; i + batch * MD_W <= count; i += batch * MD_W) {
    md_vf v[batch];
    if constexpr (BATCHED) md_vload_dt4<DT>(codes, i, v);
    else v[0] = md_vload_dt<DT>(codes, i);
    for (int x = 0; x < batch; ++x) {
      float lanes[MD_W];
      md_vstore(lanes, v[x]);
      for (int k = 0; k < MD_W; ++k) {
        const float want = md_load_elem<DT>(codes, i + x * MD_W + k);
        if (isnan(want) ? !isnan(lanes[k]) : md_bits_from_f32(want) != md_bits_from_f32(lanes[k])) ++bad;
        ++*checked;
      }
    }
  }
  return bad;
}

/* Every code of an 8-bit DT made bf16 by md_codes_bf16_bytes (64 at a time, scrambled as above), against md_load_elem:
 * the same float, or NaN for NaN. Where the byte lookups are not built, checks nothing. */
template <int DT> static int64_t codes_bf16_mismatches(int64_t* checked) {
  int64_t bad = 0;
#if defined(MD_CODES_BF16_LOOKUP)
  alignas(64) uint8_t codes[256], lo[64], hi[64];
  for (int i = 0; i < 256; ++i) codes[i] = (uint8_t)((i * 37 + 11) % 256);
  for (int i = 0; i < 256; i += 64) {
    __m512i l, h;
    md_codes_bf16_bytes<DT>(_mm512_load_si512(codes + i), &l, &h);
    _mm512_store_si512(lo, l);
    _mm512_store_si512(hi, h);
    for (int k = 0; k < 64; ++k) {
      const float want = md_load_elem<DT>(codes, i + k), got = md_bf16_to_f32((uint16_t)(lo[k] | hi[k] << 8));
      if (isnan(want) ? !isnan(got) : md_bits_from_f32(want) != md_bits_from_f32(got)) ++bad;
      ++*checked;
    }
  }
#else
  (void)checked;
#endif
  return bad;
}

int main() {
  int64_t max_ulp_vec = 0, max_ulp_scalar = 0;
  for (float x = -87.0f; x <= 88.0f; x += 0.000731f) {
    const float want = (float)exp((double)x);
    max_ulp_vec = md_max(max_ulp_vec, ulp_distance(vexp1(x), want));
    max_ulp_scalar = md_max(max_ulp_scalar, ulp_distance(md_exp_scalar(x), want));
  }
  printf("exp_max_ulp_vector %lld\nexp_max_ulp_scalar %lld\n", (long long)max_ulp_vec, (long long)max_ulp_scalar);
  int64_t subnormal_err = 0;
  for (float x = -103.0f; x < -87.4f; x += 0.01f) subnormal_err = md_max(subnormal_err, ulp_distance(vexp1(x), (float)exp((double)x)));
  printf("exp_subnormal_max_ulp %lld\n", (long long)subnormal_err);
  printf("exp_neg_inf_is_zero %d\n", vexp1(-INFINITY) == 0.0f && md_exp_scalar(-INFINITY) == 0.0f);
  printf("exp_very_negative_is_zero %d\n", vexp1(-1e30f) == 0.0f && vexp1(-200.0f) == 0.0f && md_exp_scalar(-1e30f) == 0.0f);
  printf("exp_zero_is_one %d\n", vexp1(0.0f) == 1.0f && md_exp_scalar(0.0f) == 1.0f);
  printf("exp_overflow_is_inf %d\n", vexp1(89.0f) == INFINITY && vexp1(1e30f) == INFINITY && isfinite(vexp1(88.7f)));
  printf("exp_nan_is_nan %d\n", isnan(vexp1(NAN)) && isnan(md_exp_scalar(NAN)));

  int64_t f16_to_f32_mismatch = 0;
  for (uint32_t h = 0; h < 65536; ++h) {
    const float a = md_f16_to_f32_exact((uint16_t)h);
#if defined(__F16C__)
    const float b = _cvtsh_ss((uint16_t)h);
#elif MD_W == 4
    const float b = neon_f16_to_f32((uint16_t)h);
#else
    const float b = a;
#endif
    if (is_nan16((uint16_t)h) ? !(isnan(a) && isnan(b)) : md_bits_from_f32(a) != md_bits_from_f32(b)) ++f16_to_f32_mismatch;
  }
  printf("f16_to_f32_mismatch %lld\n", (long long)f16_to_f32_mismatch);

  int64_t f32_to_f16_mismatch = 0, f32_to_f16_checked = 0;
  for (uint64_t u = 0; u <= 0xffffffffull; u += 4093) {
    const float x = md_f32_from_bits((uint32_t)u);
    const uint16_t a = md_f32_to_f16_exact(x);
#if defined(__F16C__)
    const uint16_t b = (uint16_t)_cvtss_sh(x, _MM_FROUND_TO_NEAREST_INT);
#elif MD_W == 4
    const uint16_t b = neon_f32_to_f16(x);
#else
    const uint16_t b = a;
#endif
    ++f32_to_f16_checked;
    if (isnan(x) ? !(is_nan16(a) && is_nan16(b)) : a != b) ++f32_to_f16_mismatch;
  }
  /* exact ties and boundaries: halfway between fp16 neighbours, the overflow edge, the subnormal edges */
  const float edges[] = {1.0f + 1.0f / 2048, 1.0f + 3.0f / 2048, 65504.0f, 65519.99f, 65520.0f, 6.1035156e-5f,
                         5.9604645e-8f, 2.9802322e-8f, 2.9802326e-8f, 8.940697e-8f, -0.0f, INFINITY, -INFINITY};
  for (float x : edges) {
    ++f32_to_f16_checked;
#if defined(__F16C__)
    if (md_f32_to_f16_exact(x) != (uint16_t)_cvtss_sh(x, _MM_FROUND_TO_NEAREST_INT)) ++f32_to_f16_mismatch;
#elif MD_W == 4
    if (md_f32_to_f16_exact(x) != neon_f32_to_f16(x)) ++f32_to_f16_mismatch;
#endif
  }
  printf("f32_to_f16_mismatch %lld\nf32_to_f16_checked %lld\n", (long long)f32_to_f16_mismatch, (long long)f32_to_f16_checked);

  int64_t vload_checked = 0;
  const int64_t vload_bad = vload_mismatches<MD_FLOAT16, uint16_t>(65536, &vload_checked) +
                            vload_mismatches<MD_BFLOAT16, uint16_t>(65536, &vload_checked) +
                            vload_mismatches<MD_INT8, int8_t>(256, &vload_checked) +
                            vload_mismatches<MD_FP8_E4M3FN, uint8_t>(256, &vload_checked) +
                            vload_mismatches<MD_FP8_E5M2, uint8_t>(256, &vload_checked);
  printf("vload_mismatch %lld\nvload_checked %lld\n", (long long)vload_bad, (long long)vload_checked);
  int64_t vload4_checked = 0;
  const int64_t vload4_bad = vload_mismatches<MD_FLOAT16, uint16_t, true>(65536, &vload4_checked) +
                             vload_mismatches<MD_BFLOAT16, uint16_t, true>(65536, &vload4_checked) +
                             vload_mismatches<MD_INT8, int8_t, true>(256, &vload4_checked) +
                             vload_mismatches<MD_FP8_E4M3FN, uint8_t, true>(256, &vload4_checked) +
                             vload_mismatches<MD_FP8_E5M2, uint8_t, true>(256, &vload4_checked);
  printf("vload4_mismatch %lld\nvload4_checked %lld\nvload_batch_e4m3fn %d\n", (long long)vload4_bad,
         (long long)vload4_checked, md_vload_batch<MD_FP8_E4M3FN>());

  int64_t codes_bf16_checked = 0;
  const int64_t codes_bf16_bad = codes_bf16_mismatches<MD_INT8>(&codes_bf16_checked) +
                                 codes_bf16_mismatches<MD_FP8_E4M3FN>(&codes_bf16_checked) +
                                 codes_bf16_mismatches<MD_FP8_E5M2>(&codes_bf16_checked);
  printf("codes_bf16_mismatch %lld\ncodes_bf16_checked %lld\n", (long long)codes_bf16_bad, (long long)codes_bf16_checked);

#if defined(MD_INT8_DOT)
  /* md_quantize_row_i16 (int8 decode's query rows) against libm: the scale is the smallest power of two s with
   * max|row| < 32768 s (frexpf, ldexpf), each element rint(x / s) (exact: s is a power of two), zeros to ld; rows of
   * 72 elements (whole vectors and a tail) with their largest element at each position in turn, over 2^-99..2^120;
   * a row of zeros gives 0, a row with an infinity or a NaN, or whose largest element is below 2^-100, NaN. */
  int64_t quantize_bad = 0, quantize_checked = 0;
  {
    float row[72];
    int16_t q[96];
    for (int t = 0; t < 4000; ++t) {
      const float top = ldexpf(1.0f + (float)(t % 97) / 97.0f, t % 220 - 99);
      for (int d = 0; d < 72; ++d) row[d] = top * (float)((d * 37 + t) % 201 - 100) / 128.0f;
      row[t % 72] = (t % 2 ? -top : top);
      int e = 0;
      frexpf(top, &e);
      const float want = ldexpf(1.0f, e - 15);
      const float got = md_quantize_row_i16(row, 72, q, 96);
      quantize_bad += got != want;
      for (int d = 0; d < 96; ++d) quantize_bad += q[d] != (d < 72 ? (int16_t)fminf(fmaxf(rintf(row[d] / want), -32767.0f), 32767.0f) : 0);
      ++quantize_checked;
    }
    for (int d = 0; d < 72; ++d) row[d] = 0.0f;
    quantize_bad += md_quantize_row_i16(row, 72, q, 96) != 0.0f;
    for (int d = 0; d < 96; ++d) quantize_bad += q[d] != 0;
    /* each bad element where the check meets it in the vector part for some, in the tail for others */
    const struct { float value; int at; } odds[] = {{INFINITY, 70}, {-INFINITY, 33}, {NAN, 5}, {0x1p-101f, 64}};
    for (const auto& odd : odds) {
      for (int d = 0; d < 72; ++d) row[d] = 0x1p-110f;
      row[odd.at] = odd.value;
      quantize_bad += !isnan(md_quantize_row_i16(row, 72, q, 96));
    }
    quantize_checked += 5;
  }
  printf("quantize_i16_mismatch %lld\nquantize_i16_checked %lld\n", (long long)quantize_bad, (long long)quantize_checked);
#else
  printf("quantize_i16_mismatch 0\nquantize_i16_checked 0\n");
#endif

  printf("bf16_tie_to_even %d\n", md_f32_to_bf16(md_f32_from_bits(0x3f808000u)) == 0x3f80 &&
                                   md_f32_to_bf16(md_f32_from_bits(0x3f818000u)) == 0x3f82);
  printf("bf16_round_up %d\n", md_f32_to_bf16(md_f32_from_bits(0x3f808001u)) == 0x3f81);
  printf("bf16_overflow_to_inf %d\n", md_f32_to_bf16(md_f32_from_bits(0x7f7fffffu)) == 0x7f80);
  printf("bf16_nan_stays_nan %d\n", (md_f32_to_bf16(md_f32_from_bits(0x7f800001u)) & 0x7fff) > 0x7f80);
  printf("bf16_roundtrip %d\n", md_bf16_to_f32(md_f32_to_bf16(-3.140625f)) == -3.140625f);
  return 0;
}
`;

/** `name value` lines of the driver's stdout. */
export function parsePrimitives(stdout: string): Record<string, number> {
  return Object.fromEntries(stdout.trim().split("\n").map((l) => [l.split(" ")[0], Number(l.split(" ")[1])]));
}

/** The checks every target's driver must pass; `results` gives the parsed output once the driver has run. */
export function primitivesTests(results: () => Record<string, number>): void {
  it("exp is within 2 ulp on the normal range, flushes only near the bottom, and is exact at the edges", () => {
    const r = results();
    expect(r.exp_max_ulp_vector).toBeLessThanOrEqual(2);
    expect(r.exp_max_ulp_scalar).toBeLessThanOrEqual(2);
    expect(r.exp_subnormal_max_ulp).toBeLessThanOrEqual(2);
    for (const flag of ["exp_neg_inf_is_zero", "exp_very_negative_is_zero", "exp_zero_is_one", "exp_overflow_is_inf", "exp_nan_is_nan"])
      expect(r[flag], flag).toBe(1);
  });

  it("the exact fp16 conversions agree with the hardware's (F16C, NEON) bit for bit", () => {
    const r = results();
    expect(r.f16_to_f32_mismatch).toBe(0);
    expect(r.f32_to_f16_checked).toBeGreaterThan(1_000_000);
    expect(r.f32_to_f16_mismatch).toBe(0);
  });

  it("the vector loads give the scalar loads' value for every 8- and 16-bit code", () => {
    const r = results();
    expect(r.vload_checked).toBe(2 * 65536 + 3 * 256);
    expect(r.vload_mismatch).toBe(0);
  });

  it("the batched vector loads (e4m3fn's byte lookups where the CPU has AVX512-VBMI) agree with the scalar loads", () => {
    const r = results();
    expect(r.vload4_checked).toBe(2 * 65536 + 3 * 256);
    expect(r.vload4_mismatch).toBe(0);
  });

  it("8-bit codes made bf16 by byte lookups (where built: AVX512-BF16 and AVX512-VBMI) are the scalar loads' values", () => {
    const r = results();
    expect([0, 3 * 256]).toContain(r.codes_bf16_checked);
    expect(r.codes_bf16_mismatch).toBe(0);
  });

  it("int8 decode's query rows round to int16 at the smallest power-of-two scale that fits (where built: AVX2, AVX-512BW)", () => {
    const r = results();
    expect([0, 4005]).toContain(r.quantize_i16_checked);
    expect(r.quantize_i16_mismatch).toBe(0);
  });

  it("bf16 rounds to nearest even and keeps NaN", () => {
    const r = results();
    for (const flag of ["bf16_tie_to_even", "bf16_round_up", "bf16_overflow_to_inf", "bf16_nan_stays_nan", "bf16_roundtrip"])
      expect(r[flag], flag).toBe(1);
  });
}
