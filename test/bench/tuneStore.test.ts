import { mkdtemp, readdir, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { readTunedChoices, storeTunedChoice, tuningKey, tuningStorePath } from "../../src/tune/tuningStore.js";
import { parseSpec } from "../../src/ir/spec.js";
import { describeChoice } from "../../src/select/describeChoice.js";
import { callFeatures } from "../../src/select/features.js";
import { selectTemplate } from "../../src/select/selectTemplate.js";
import { type TunedChoice, shapeBucket } from "../../src/select/tunedChoice.js";
import { withBlockSize } from "../../src/tune/tunedVariants.js";

const spec = {
  name: "tune_store",
  query: { shape: [1, 8, 1, 64], dtype: "bfloat16" },
  key: { shape: [1, 2, 1024, 64], dtype: "bfloat16" },
  value: { shape: [1, 2, 1024, 64], dtype: "bfloat16" },
  blockSize: [64, 64],
};
const graph = parseSpec(spec);

const tuned: TunedChoice = {
  template: "flash_decoding",
  qBlock: 64,
  kvBlock: 128,
  partitionSize: 512,
  numThreads: 1,
  tunedMs: 0.5,
  heuristicMs: 0.75,
  measuredAt: "2026-01-01T00:00:00.000Z",
  shape: { batch: 1, qLen: 1, kvLen: 1000 },
};

describe("shapeBucket", () => {
  it("rounds B, q_len and kv_len up to powers of two and keeps the thread count", () => {
    const bucket = (batch: number, qLen: number, kvLen: number, threads: number) => shapeBucket({ batch, qLen, kvLen, threads });
    expect(bucket(1, 1, 1000, 2)).toBe("B1.q1.kv1024.t2");
    expect(bucket(1, 1, 1024, 2)).toBe(bucket(1, 1, 513, 2));
    expect(bucket(1, 1, 1025, 2)).toBe("B1.q1.kv2048.t2");
    expect(bucket(3, 5, 1, 1)).toBe("B4.q8.kv1.t1");
    expect(bucket(1, 1, 1000, 3)).not.toBe(bucket(1, 1, 1000, 2));
  });
});

describe("tuningKey", () => {
  it("ignores the name, the block sizes and the partition size, and follows what the kernel computes", () => {
    const key = tuningKey(graph);
    expect(tuningKey(parseSpec({ ...spec, name: "renamed" }))).toBe(key);
    expect(tuningKey(withBlockSize(graph, 32, 128))).toBe(key);
    expect(tuningKey(parseSpec({ ...spec, kernelOptions: { PARTITION_SIZE: 256 } }))).toBe(key);
    expect(tuningKey(parseSpec({ ...spec, maskMod: "q_idx >= kv_idx" }))).not.toBe(key);
    expect(tuningKey(parseSpec({ ...spec, query: { ...spec.query, dtype: "float32" }, key: { ...spec.key, dtype: "float32" }, value: { ...spec.value, dtype: "float32" } }))).not.toBe(key);
  });
});

describe("withBlockSize", () => {
  it("drops a PARTITION_SIZE that the new kv block does not divide", () => {
    const g = parseSpec({ ...spec, kernelOptions: { PARTITION_SIZE: 192 } });
    expect(withBlockSize(g, 64, 64)).toBe(g);
    expect(withBlockSize(g, 64, 128).kernelOptions.PARTITION_SIZE).toBeUndefined();
    expect(withBlockSize(g, 32, 64).kernelOptions.PARTITION_SIZE).toBe(192);
    expect(withBlockSize(g, 32, 64).blockSize).toEqual([32, 64]);
  });
});

describe("the tuning store", () => {
  let dir: string;
  beforeAll(async () => {
    dir = await mkdtemp(join(tmpdir(), "minductor-tune-store-"));
  });
  afterAll(() => rm(dir, { recursive: true, force: true }));

  it("stores a choice per graph and bucket, keeps the others, and reads them back", async () => {
    expect((await readTunedChoices(graph, dir)).size).toBe(0);
    const path = await storeTunedChoice(graph, "B1.q1.kv1024.t2", tuned, dir);
    expect(path).toBe(await tuningStorePath(dir));
    const other = parseSpec({ ...spec, maskMod: "q_idx >= kv_idx" });
    await storeTunedChoice(other, "B1.q1.kv1024.t2", { ...tuned, template: "flash_attention" }, dir);
    await storeTunedChoice(graph, "B1.q1.kv4096.t2", { ...tuned, partitionSize: 1024 }, dir);
    const mine = await readTunedChoices(parseSpec({ ...spec, name: "same_kernel" }), dir);
    expect(Object.fromEntries(mine)).toEqual({ "B1.q1.kv1024.t2": tuned, "B1.q1.kv4096.t2": { ...tuned, partitionSize: 1024 } });
    expect((await readTunedChoices(other, dir)).get("B1.q1.kv1024.t2")?.template).toBe("flash_attention");
    expect((await readdir(dir)).filter((f) => f.startsWith("tuning-"))).toEqual([path.split("/").pop()]);
  });

  it("treats an unreadable store as empty and rewrites it on the next store", async () => {
    const path = await tuningStorePath(dir);
    await writeFile(path, "{ not json");
    expect((await readTunedChoices(graph, dir)).size).toBe(0);
    await storeTunedChoice(graph, "B1.q1.kv1024.t2", tuned, dir);
    expect((await readTunedChoices(graph, dir)).get("B1.q1.kv1024.t2")).toEqual(tuned);
  });
});

describe("selectTemplate with a tuned choice", () => {
  const f = callFeatures(graph, { batch: 1, qLen: 1, kvLen: 1000, threads: 2 });

  it("uses it under the auto policy and says so", () => {
    const c = selectTemplate(f, "auto", tuned);
    expect(c).toMatchObject({ template: "flash_decoding", policy: "tuned", qBlock: 64, kvBlock: 128, partitionSize: 512, numThreads: 1 });
    const text = describeChoice(f, c);
    expect(text).toMatch(/^policy {4}tuned$/m);
    expect(text).toContain("1.50x");
    expect(text).toContain("kv block 128, partition 512");
  });

  it("is ignored by the pytorch policy and by a template the spec forces", () => {
    expect(selectTemplate(f, "pytorch", tuned).policy).toBe("pytorch");
    const forced = callFeatures(parseSpec({ ...spec, kernelOptions: { template: "flash_attention" } }), { batch: 1, qLen: 1, kvLen: 1000, threads: 2 });
    expect(selectTemplate(forced, "auto", tuned)).toMatchObject({ policy: "forced", template: "flash_attention" });
    expect(selectTemplate(f, "auto")).toMatchObject({ policy: "auto" });
  });
});
