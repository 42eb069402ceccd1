import { describe, expect, it } from "vitest";
import type { CallFeatures } from "../../src/select/features.js";
import { AUTO, autoPartitionSize, DECODE_MAX_Q_LEN, selectTemplate } from "../../src/select/selectTemplate.js";

const features = (over: Partial<CallFeatures>): CallFeatures => ({
  batch: 1, hq: 8, hkv: 8, qLen: 1, kvLen: 4096, kvTokens: 4096, headDim: 128, valueDim: 128, dtype: "float32",
  kvDtype: "float32", queryRows: 1, qBlock: 128, kvBlock: 128, threads: 16, paged: false, kernelOptions: {}, ...over,
});

describe("the pytorch policy mirrors CppFlexAttentionTemplate's rule", () => {
  // [description, features, expected template, failing clause (if any)]
  const cases: Array<[string, Partial<CallFeatures>, string, string | null]> = [
    ["all clauses hold", { threads: 16, batch: 1, hq: 8, kvTokens: 4096 }, "flash_decoding", null],
    ["q_len 2", { qLen: 2 }, "flash_attention", "q_len == 1"],
    ["threads == B * Hq", { threads: 8 }, "flash_attention", "num_threads > B * Hq"],
    ["threads < B * Hq (2 cores, 32 heads)", { threads: 2, hq: 32 }, "flash_attention", "num_threads > B * Hq"],
    ["kv/B just below 512", { kvTokens: 511 }, "flash_attention", "k_seq_len / B >= max(2 * PARTITION_SIZE, 512)"],
    ["kv/B exactly 512", { kvTokens: 512 }, "flash_decoding", null],
    ["kv/B counts the batch", { kvTokens: 1024, batch: 2, threads: 32 }, "flash_decoding", null],
    ["kv/B below with the batch", { kvTokens: 1000, batch: 2, threads: 32 }, "flash_attention", "k_seq_len / B >= max(2 * PARTITION_SIZE, 512)"],
    ["PARTITION_SIZE 512 needs kv/B >= 1024", { kvTokens: 1023, kernelOptions: { PARTITION_SIZE: 512 } }, "flash_attention", "k_seq_len / B >= max(2 * PARTITION_SIZE, 512)"],
    ["PARTITION_SIZE 512, kv/B 1024", { kvTokens: 1024, kernelOptions: { PARTITION_SIZE: 512 } }, "flash_decoding", null],
    ["PARTITION_SIZE not a multiple of kv_block", { kvBlock: 256 }, "flash_attention", "PARTITION_SIZE % kv_block == 0"],
  ];
  it.each(cases)("%s", (_name, over, template, failing) => {
    const c = selectTemplate(features(over), "pytorch");
    expect(c.template).toBe(template);
    expect(c.policy).toBe("pytorch");
    expect(c.clauses).toHaveLength(4);
    const failed = c.clauses.filter((x) => !x.holds).map((x) => x.name);
    expect(failed).toEqual(failing ? [failing] : []);
  });

  it("uses PARTITION_SIZE 128 unless the spec sets one", () => {
    expect(selectTemplate(features({}), "pytorch").partitionSize).toBe(128);
    expect(selectTemplate(features({ kernelOptions: { PARTITION_SIZE: 256 } }), "pytorch").partitionSize).toBe(256);
  });
});

describe("the auto policy", () => {
  it("decodes short queries over long kv, whatever B * Hq is", () => {
    for (const qLen of [1, 4, DECODE_MAX_Q_LEN]) {
      const c = selectTemplate(features({ qLen, threads: 2, hq: 32 }));
      expect(c.template).toBe("flash_decoding");
    }
  });
  it("keeps prefill-shaped calls on flash attention", () => {
    expect(selectTemplate(features({ qLen: DECODE_MAX_Q_LEN + 1 })).template).toBe("flash_attention");
    expect(selectTemplate(features({ qLen: 2048, kvLen: 2048 })).template).toBe("flash_attention");
  });
  it("keeps several query rows over a short kv length on flash attention", () => {
    const c = selectTemplate(features({ qLen: 2, kvLen: AUTO.MIN_KV_LEN - 1 }));
    expect(c.template).toBe("flash_attention");
    expect(c.reasons.join()).toContain(`kv_len >= ${AUTO.MIN_KV_LEN} or q_len == 1 fails (kv_len = ${AUTO.MIN_KV_LEN - 1}, q_len = 2)`);
  });
  it("decodes a single query row over any kv length", () => {
    for (const kvLen of [1, 16, AUTO.MIN_KV_LEN - 1]) expect(selectTemplate(features({ qLen: 1, kvLen })).template).toBe("flash_decoding");
  });
  it("a forced template wins over both policies", () => {
    const c = selectTemplate(features({ qLen: 1, kernelOptions: { template: "flash_attention" } }));
    expect(c.template).toBe("flash_attention");
    expect(c.policy).toBe("forced");
  });

  it.each([
    // [B, Hkv, kvLen, threads, kvBlock, expected]
    [1, 8, 16384, 2, 128, 8192], // 8 pairs already give 8 tasks; the kv length is capped at MAX_PARTITION
    [1, 1, 16384, 2, 128, 2048], // 1 pair: 8 partitions of 2048
    [4, 8, 4096, 2, 128, 4096], // 32 pairs already keep 2 threads busy: one partition per pair
    [1, 2, 1000, 16, 64, 256], // many threads, short kv: the MIN_PARTITION floor
    [1, 1, 1 << 20, 2, 128, 8192], // capped at MAX_PARTITION
  ])("partition size for B=%i Hkv=%i kv=%i threads=%i kv_block=%i is %i", (batch, hkv, kvLen, threads, kvBlock, expected) => {
    const p = autoPartitionSize(features({ batch, hkv, hq: hkv, kvLen, threads, kvBlock }));
    expect(p % kvBlock).toBe(0);
    expect(p).toBe(expected);
  });
});
