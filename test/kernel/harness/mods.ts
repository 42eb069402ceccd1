/**
 * Hand-written mods: the C++ the lead's codegen will produce (the `modsCode` interface of the kernel templates)
 * next to the same mods in TS for the double-precision reference.
 */

export type Buffers = ReadonlyArray<Float32Array | BigInt64Array>;

export interface Mods {
  cpp: string;
  score(score: number, b: number, h: number, q: number, kv: number, buffers: Buffers): number;
  mask(b: number, h: number, q: number, kv: number, buffers: Buffers): boolean;
}

const PRELUDE = (identity: boolean, maskTrue: boolean, maskRowEnds: boolean) =>
  `#define MD_SCORE_MOD_IDENTITY ${identity ? 1 : 0}\n#define MD_MASK_MOD_TRUE ${maskTrue ? 1 : 0}\n#define MD_MASK_ROW_ENDS ${maskRowEnds ? 1 : 0}\n`;

/** Build the C++ from a mask expression and a score expression over score, b, h, q_idx, kv_idx (and locals). */
function cppMods(o: { identity: boolean; maskTrue: boolean; locals?: string; mask: string; score: string }): string {
  // Partial prefill tiles use md_mask_row to skip what the mask drops when the mask is index-only (no locals).
  return `${PRELUDE(o.identity, o.maskTrue, !o.maskTrue && !o.locals)}
static inline bool md_mask_mod(int64_t b, int64_t h, int64_t q_idx, int64_t kv_idx, md_args* a) {
  (void)b; (void)h; (void)q_idx; (void)kv_idx; (void)a;
  ${o.locals ?? ""}
  return ${o.mask};
}
template <bool MASK>
static inline void md_mods_row(float* s, int64_t n, int64_t b, int64_t h, int64_t q_idx, int64_t kv0, md_args* a) {
  (void)b; (void)h; (void)q_idx; (void)a;
  ${o.locals ?? ""}
  for (int64_t j = 0; j < n; ++j) {
    const int64_t kv_idx = kv0 + j;
    const float score = s[j];
    float v = ${o.score};
    if (MASK && !(${o.mask})) v = -INFINITY;
    s[j] = v;
  }
}
template <bool VECTOR = true>
static inline void md_mask_row(float* s, int64_t n, int64_t b, int64_t h, int64_t q_idx, int64_t kv0, md_args* a) {
  (void)b; (void)h; (void)q_idx; (void)a;
  ${o.locals ?? ""}
  for (int64_t j = 0; j < n; ++j) {
    const int64_t kv_idx = kv0 + j;
    if (!(${o.mask})) s[j] = -INFINITY;
  }
}
`;
}

export const identityMods: Mods = {
  cpp: cppMods({ identity: true, maskTrue: true, mask: "true", score: "score" }),
  score: (s) => s,
  mask: () => true,
};

export const causalMods: Mods = {
  cpp: cppMods({ identity: true, maskTrue: false, mask: "q_idx >= kv_idx", score: "score" }),
  score: (s) => s,
  mask: (_b, _h, q, kv) => q >= kv,
};

/** buffer 0: float slopes[HQ]; a bounds-checked load that reports status 1 like generated code does. */
const SLOPE = `const float* slopes = (const float*)a->buffers[0];
  float slope = 0.0f;
  if ((uint64_t)h < (uint64_t)a->buffer_dims[0]) slope = slopes[h]; else __atomic_store_n(&a->status, 1, __ATOMIC_RELAXED);`;

export const alibiCausalMods: Mods = {
  cpp: cppMods({
    identity: false,
    maskTrue: false,
    locals: SLOPE,
    mask: "q_idx >= kv_idx",
    score: "score + slope * (float)(kv_idx - q_idx)",
  }),
  score: (s, _b, h, q, kv, buf) => s + Math.fround((buf[0] as Float32Array)[h] * (kv - q)),
  mask: (_b, _h, q, kv) => q >= kv,
};

/**
 * Soft-capped scores and a mask whose first rows are empty (q + h + b < 3 sees nothing): exercises score_mod on
 * full blocks and fully masked rows that depend on b and h.
 */
export const softcapShiftedMods: Mods = {
  cpp: cppMods({
    identity: false,
    maskTrue: false,
    mask: "q_idx + h + b >= kv_idx + 3",
    score: "20.0f * tanhf(score * 0.05f)",
  }),
  score: (s) => 20 * Math.tanh(s * Math.fround(0.05)),
  mask: (b, h, q, kv) => q + h + b >= kv + 3,
};

/**
 * Decode-style mask with absolute query positions: buffer 0 float slopes[HQ] (alibi), buffer 1 int64 offset[B];
 * row q of sequence b sits at position q + offset[b].
 */
export const alibiOffsetCausalMods: Mods = {
  cpp: cppMods({
    identity: false,
    maskTrue: false,
    locals: `${SLOPE}
  const int64_t* offsets = (const int64_t*)a->buffers[1];
  int64_t offset = 0;
  if ((uint64_t)b < (uint64_t)a->buffer_dims[2]) offset = offsets[b]; else __atomic_store_n(&a->status, 1, __ATOMIC_RELAXED);`,
    mask: "q_idx + offset >= kv_idx",
    score: "score + slope * (float)(kv_idx - q_idx)",
  }),
  score: (s, _b, h, q, kv, buf) => s + Math.fround((buf[0] as Float32Array)[h] * (kv - q)),
  mask: (b, _h, q, kv, buf) => q + Number((buf[1] as BigInt64Array)[b]) >= kv,
};
