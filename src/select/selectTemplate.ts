import type { TemplateName } from "../ir/graph.js";
import type { CallFeatures, Choice, Clause } from "./features.js";
import { type TunedChoice, tunedPolicy } from "./tunedChoice.js";

/** PyTorch's default PARTITION_SIZE. */
export const PYTORCH_PARTITION_SIZE = 128;

/**
 * Longest query the flash-decoding template takes: its row group is the G query heads of a kv head times
 * q_len, kept in registers and L1; 8 covers speculative decoding (4-8 draft tokens) and single-token decode.
 */
export const DECODE_MAX_Q_LEN = 8;

/**
 * Constants of the `auto` policy, measured on this project's reference machine (2 cores, AVX2; see
 * docs/benchmarks.md, "template choice"): the template sweep (bf16, D 128, G 1/4, B 1/8) finds flash decoding
 * faster for every q_len <= 8 from the shortest kv length it measures, 64 (1.1x to 2.8x), and no faster at
 * q_len 16. Below 64, measured on a 2-core AVX-512 machine (docs/benchmarks.md, "Fixed cost of a call"): a single
 * query row decodes faster at every kv length (kv 16: 11 against 17 us at B 1, 38 against 92 at B 8), while 8 rows
 * over 16 to 48 positions run faster on flash attention. Partitions are at least MIN_PARTITION positions so pass 2
 * stays small, and TASKS_PER_THREAD partitions per thread balance uneven partitions.
 */
export const AUTO = { MIN_KV_LEN: 64, MIN_PARTITION: 256, MAX_PARTITION: 8192, TASKS_PER_THREAD: 4 } as const;

const roundUp = (n: number, m: number): number => Math.ceil(n / m) * m;

/**
 * Chooses the template for one call: a pure function of the call's features. `kernelOptions.template` forces a
 * template and `kernelOptions.PARTITION_SIZE` a partition size; otherwise a `tuned` choice (measured by
 * `minductor tune` for the call's shape bucket) wins under the `auto` policy, and the policy decides when there
 * is none (`auto` unless `kernelOptions.policy` says `pytorch`).
 */
export function selectTemplate(f: CallFeatures, policy = f.kernelOptions.policy ?? "auto", tuned?: TunedChoice): Choice {
  const forced = f.kernelOptions.template;
  if (forced) {
    const partitionSize = f.kernelOptions.PARTITION_SIZE ?? autoPartitionSize(f);
    return {
      template: forced, policy: "forced", qBlock: f.qBlock, kvBlock: f.kvBlock, partitionSize,
      clauses: [{ name: "kernelOptions.template", value: forced, holds: true }],
      reasons: [`the spec forces ${forced}`],
    };
  }
  if (policy === "pytorch") return pytorchPolicy(f);
  return tuned ? tunedPolicy(f, tuned) : autoPolicy(f);
}

/**
 * PyTorch's CPU rule (CppFlexAttentionTemplate, the flash-decoding change): flash decoding iff
 * PARTITION_SIZE % kv_block == 0, q_len == 1, num_threads > B * Hq and k_seq_len / B >= max(2 * PARTITION_SIZE, 512),
 * with PARTITION_SIZE = 128 unless the spec sets it.
 */
export function pytorchPolicy(f: CallFeatures): Choice {
  const p = f.kernelOptions.PARTITION_SIZE ?? PYTORCH_PARTITION_SIZE;
  const need = Math.max(2 * p, 512);
  const clauses: Clause[] = [
    { name: "PARTITION_SIZE % kv_block == 0", value: `${p} % ${f.kvBlock} = ${p % f.kvBlock}`, holds: p % f.kvBlock === 0 },
    { name: "q_len == 1", value: `q_len = ${f.qLen}`, holds: f.qLen === 1 },
    { name: "num_threads > B * Hq", value: `${f.threads} > ${f.batch} * ${f.hq} = ${f.batch * f.hq}`, holds: f.threads > f.batch * f.hq },
    { name: "k_seq_len / B >= max(2 * PARTITION_SIZE, 512)", value: `${f.kvTokens} / ${f.batch} = ${fmt(f.kvTokens / f.batch)} >= ${need}`, holds: f.kvTokens / f.batch >= need },
  ];
  const decode = clauses.every((c) => c.holds);
  return {
    template: decode ? "flash_decoding" : "flash_attention", policy: "pytorch", qBlock: f.qBlock, kvBlock: f.kvBlock,
    partitionSize: p % f.kvBlock === 0 ? p : roundUp(p, f.kvBlock),
    clauses,
    reasons: decode ? ["all four clauses of PyTorch's rule hold"] : clauses.filter((c) => !c.holds).map((c) => `${c.name} fails (${c.value})`),
  };
}

/**
 * minductor's rule: flash decoding for a single query row, and for every short query (q_len <= 8) over a kv length
 * worth splitting. It packs the G query heads of a kv head so K/V stream once per kv head, and splits the kv length
 * so every thread has work however small B * Hkv is. Flash attention keeps long queries, where its q tiles reuse
 * each K/V tile.
 */
export function autoPolicy(f: CallFeatures): Choice {
  const group = f.hq / f.hkv;
  const clauses: Clause[] = [
    { name: `q_len <= ${DECODE_MAX_Q_LEN}`, value: `q_len = ${f.qLen}`, holds: f.qLen <= DECODE_MAX_Q_LEN },
    { name: `kv_len >= ${AUTO.MIN_KV_LEN} or q_len == 1`, value: `kv_len = ${f.kvLen}, q_len = ${f.qLen}`, holds: f.kvLen >= AUTO.MIN_KV_LEN || f.qLen === 1 },
  ];
  const decode = clauses.every((c) => c.holds);
  const partitionSize = f.kernelOptions.PARTITION_SIZE ?? autoPartitionSize(f);
  const reasons = decode
    ? [
      `decode-shaped: ${f.qLen} query row${f.qLen > 1 ? "s" : ""} x ${group} head${group > 1 ? "s" : ""} per kv head share each K/V row`,
      `${Math.ceil(f.kvLen / partitionSize)} partition(s) of ${partitionSize} per (b, kv head): ${f.batch * f.hkv * Math.ceil(f.kvLen / partitionSize)} tasks for ${f.threads} thread(s)`,
    ]
    : clauses.filter((c) => !c.holds).map((c) => `${c.name} fails (${c.value})`);
  return { template: decode ? "flash_decoding" : "flash_attention", policy: "auto", qBlock: f.qBlock, kvBlock: f.kvBlock, partitionSize, clauses, reasons };
}

/**
 * Enough partitions for TASKS_PER_THREAD tasks per thread over the B * Hkv (b, kv head) pairs, each a multiple of
 * the kv block, at least MIN_PARTITION positions (pass 2 reads one partial output per partition) and at most
 * MAX_PARTITION.
 */
export function autoPartitionSize(f: CallFeatures): number {
  const pairs = f.batch * f.hkv;
  const wanted = Math.ceil((f.threads * AUTO.TASKS_PER_THREAD) / pairs);
  const size = Math.ceil(f.kvLen / Math.max(1, wanted));
  const lo = roundUp(AUTO.MIN_PARTITION, f.kvBlock);
  const hi = roundUp(AUTO.MAX_PARTITION, f.kvBlock);
  return Math.min(hi, Math.max(lo, roundUp(size, f.kvBlock)));
}

const fmt = (x: number): string => (Number.isInteger(x) ? String(x) : x.toFixed(2));

export type { TemplateName };
