import { chmod, mkdtemp, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { tuneKernel } from "../../src/bench/tuneKernel.js";
import { readTunedChoices, storeTunedChoice } from "../../src/tune/tuningStore.js";
import { main } from "../../src/cli/main.js";
import { compile, defaultThreads } from "../../src/index.js";
import { generateInputs } from "../../src/io/generateInputs.js";
import { parseSpec } from "../../src/ir/spec.js";
import { compareOutputs, TOLERANCE } from "../../src/reference/compareOutputs.js";
import { referenceAttention } from "../../src/reference/referenceAttention.js";
import { toFloat64 } from "../../src/runtime/tensor.js";
import type { TunedChoice } from "../../src/select/tunedChoice.js";
import { TUNED_VARIANT_WARNING_CODE } from "../../src/tune/tunedVariants.js";
import { useFastBuilds } from "../helpers/fastBuilds.js";

// Plumbing, not arithmetic: its kernels build fast (test/helpers/fastBuilds.ts).
useFastBuilds();

/*
 * Tuned choices are stored per cache dir, so every test here uses a private one: a store in the shared test cache
 * would steer other tests' kernels. The variants compiled by the first test serve the later ones.
 */
const spec = {
  name: "tune_test",
  query: { shape: [1, 4, 1, 16], dtype: "float32" },
  key: { shape: [1, 2, 200, 16], dtype: "float32" },
  value: { shape: [1, 2, 200, 16], dtype: "float32" },
  blockSize: [16, 16],
};
const graph = parseSpec(spec);
const call = { batch: 1, qLen: 1, kvLen: 200 };
const bucket = `B1.q1.kv256.t${defaultThreads()}`;
let dir: string;
let specPath: string;

beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), "minductor-tune-"));
  specPath = join(dir, "tune_test.json");
  await writeFile(specPath, JSON.stringify(spec));
});
afterAll(() => rm(dir, { recursive: true, force: true }));

describe("tuneKernel", () => {
  it("measures every candidate and returns the fastest with the heuristic's figure", async () => {
    const lines: string[] = [];
    const result = await tuneKernel(graph, {
      call,
      cacheDir: dir,
      candidates: { blockSizes: [[16, 16], [16, 32]], partitionSizes: [64, 128], threads: [1] },
      runs: 2,
      onProgress: (line) => lines.push(line),
    });
    expect(result.bucket).toBe(bucket);
    expect(result.heuristic.policy).toBe("auto");
    const configs = result.trials.map((t) => `${t.template} ${t.qBlock}x${t.kvBlock} ${t.partitionSize} ${t.numThreads}`);
    for (const kv of [16, 32]) {
      expect(configs).toContain(`flash_attention 16x${kv} null ${defaultThreads()}`);
      for (const p of [64, 128]) expect(configs).toContain(`flash_decoding 16x${kv} ${p} ${defaultThreads()}`);
    }
    expect(result.trials.every((t) => t.medianMs !== null && t.medianMs > 0)).toBe(true);
    const best = result.best;
    expect(["flash_attention", "flash_decoding"]).toContain(best.template);
    expect([16, 32]).toContain(best.kvBlock);
    expect(best.partitionSize % best.kvBlock).toBe(0);
    expect(best.tunedMs).toBeLessThanOrEqual(best.heuristicMs);
    expect(best.shape).toEqual(call);
    expect(lines.some((l) => l.includes("compiling blocks 16 x 32"))).toBe(true);
  });
});

// Another kv block than the graph's, so the kernel must run the variant library.
const stored: TunedChoice = {
  template: "flash_decoding",
  qBlock: 16,
  kvBlock: 32,
  partitionSize: 64,
  numThreads: 1,
  tunedMs: 0.01,
  heuristicMs: 0.02,
  measuredAt: new Date().toISOString(),
  shape: call,
};

describe("a stored tuned choice", () => {
  it("is used by compile() and run() for calls in its bucket, with correct outputs", async () => {
    await storeTunedChoice(graph, bucket, stored, dir);
    const kernel = await compile(graph, { cacheDir: dir });
    expect(kernel.tunedBuckets).toEqual([bucket]);
    const inputs = generateInputs(graph, 5, call);
    expect(kernel.choiceFor(inputs)).toMatchObject({ policy: "tuned", template: "flash_decoding", kvBlock: 32, partitionSize: 64, numThreads: 1 });
    const got = kernel.run(inputs);
    const ref = referenceAttention(graph, inputs);
    expect(compareOutputs(toFloat64(got.out), ref.out, TOLERANCE.float32).ok).toBe(true);
    const heuristic = await compile(graph, { cacheDir: dir, tuning: false });
    expect(heuristic.tunedBuckets).toEqual([]);
    expect(heuristic.choiceFor(inputs).policy).toBe("auto");
    expect(compareOutputs(toFloat64(got.out), toFloat64(heuristic.run(inputs).out), TOLERANCE.float32).ok).toBe(true);
  });

  it("is not used outside its bucket, nor when the caller steers the call", async () => {
    const kernel = await compile(graph, { cacheDir: dir });
    const longer = generateInputs(graph, 6, { ...call, kvLen: 300 });
    expect(kernel.choiceFor(longer).policy).toBe("auto");
    const inputs = generateInputs(graph, 7, call);
    expect(kernel.choiceFor(inputs, { template: "flash_attention" }).policy).toBe("auto");
    expect(kernel.choiceFor(inputs, { partitionSize: 128 }).policy).toBe("auto");
    expect(kernel.choiceFor(inputs, { policy: "pytorch" }).policy).toBe("pytorch");
    expect(kernel.choiceFor(inputs, { numThreads: 1 }).policy).toBe(defaultThreads() === 1 ? "tuned" : "auto");
    // A mask of the graph's own 16-wide blocks cannot drive the 32-wide variant.
    const mask = kernel.createBlockMask(1, 1, 200);
    expect(kernel.choiceFor({ ...inputs, blockMask: mask }).policy).toBe("auto");
    expect(compareOutputs(toFloat64(kernel.run({ ...inputs, blockMask: mask }).out), referenceAttention(graph, inputs).out, TOLERANCE.float32).ok).toBe(true);
  });

  it("is what kernel.explain() reports for its bucket", async () => {
    const kernel = await compile(graph, { cacheDir: dir });
    expect(kernel.explain({ batch: 1, qLen: 1, kvLen: 256 })).toMatch(/^policy {4}tuned$/m);
    expect(kernel.explain({ batch: 1, qLen: 1, kvLen: 4096 })).toMatch(/^policy {4}auto$/m);
  });
});

describe("a tuned choice whose variant does not compile", () => {
  it("is dropped with a warning and the kernel keeps the heuristic", async () => {
    const own = await mkdtemp(join(tmpdir(), "minductor-tune-broken-"));
    try {
      // A compiler that refuses exactly the 32-wide kv block variant.
      const cxx = join(own, "picky-g++");
      await writeFile(cxx, '#!/bin/sh\nfor a in "$@"; do case "$a" in *.cpp) if grep -q "MD_SPARSE_KV_BLOCK_SIZE 32" "$a"; then echo "refused" >&2; exit 1; fi;; esac; done\nexec g++ "$@"\n');
      await chmod(cxx, 0o755);
      await storeTunedChoice(graph, bucket, stored, own);
      const warnings: string[] = [];
      const onWarning = (w: Error & { code?: string }) => void (w.code === TUNED_VARIANT_WARNING_CODE && warnings.push(w.message));
      process.on("warning", onWarning);
      try {
        const kernel = await compile(graph, { cacheDir: own, cxx });
        await new Promise((resolve) => setImmediate(resolve));
        expect(kernel.tunedBuckets).toEqual([]);
        expect(kernel.choiceFor(generateInputs(graph, 8, call)).policy).toBe("auto");
      } finally {
        process.off("warning", onWarning);
      }
      expect(warnings.join("\n")).toMatch(/blocks 16 x 32\) ignored/);
    } finally {
      await rm(own, { recursive: true, force: true });
    }
  });
});

describe("minductor tune and explain", () => {
  function capture() {
    let out = "";
    let err = "";
    return { io: { out: (t: string) => void (out += t), err: (t: string) => void (err += t), interactive: false }, text: () => ({ out, err }) };
  }

  it("stores the tuned choice and explain reports it as tuned", async () => {
    const saved = process.env.MINDUCTOR_CACHE_DIR;
    process.env.MINDUCTOR_CACHE_DIR = dir;
    try {
      const tune = capture();
      const code = await main(["node", "minductor", "tune", specPath, "--batch", "1", "--q-len", "1", "--kv-len", "500", "--block-sizes", "16x16", "--partition-sizes", "64", "--threads", "1", "--runs", "2", "--json"], tune.io);
      expect(code, tune.text().err).toBe(0);
      const printed = JSON.parse(tune.text().out) as { bucket: string; stored: string; best: TunedChoice };
      expect(printed.bucket).toBe(`B1.q1.kv512.t${defaultThreads()}`);
      expect(printed.stored.startsWith(dir)).toBe(true);
      expect((await readTunedChoices(graph, dir)).get(printed.bucket)).toEqual(printed.best);

      const explain = capture();
      expect(await main(["node", "minductor", "explain", specPath, "--batch", "1", "--q-len", "1", "--kv-len", "400"], explain.io)).toBe(0);
      expect(explain.text().out).toMatch(/^policy {4}tuned$/m);
      expect(explain.text().out).toContain("measured fastest on this machine by `minductor tune`");

      const untuned = capture();
      expect(await main(["node", "minductor", "explain", specPath, "--kv-len", "5000"], untuned.io)).toBe(0);
      expect(untuned.text().out).toMatch(/^policy {4}auto$/m);
    } finally {
      if (saved === undefined) delete process.env.MINDUCTOR_CACHE_DIR;
      else process.env.MINDUCTOR_CACHE_DIR = saved;
    }
  });
});
