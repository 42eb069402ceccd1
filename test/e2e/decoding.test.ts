import { mkdtempSync, readdirSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { basename, join } from "node:path";
import { afterAll, describe, expect, it } from "vitest";
import { compile, listCache } from "../../src/index.js";
import type { AttentionGraph } from "../../src/ir/graph.js";
import { parseSpec } from "../../src/ir/spec.js";
import { generateInputs } from "../../src/io/generateInputs.js";
import { rng } from "../../src/io/random.js";
import { compareOutputs, TOLERANCE } from "../../src/reference/compareOutputs.js";
import { referenceAttention } from "../../src/reference/referenceAttention.js";
import { fromFloat64, tensor, toFloat64 } from "../../src/runtime/tensor.js";
import { expectMatchesReference, kernelFor as kernelWith, prebuild } from "../helpers/checkKernel.js";
import { exampleCxxflags } from "../helpers/fastBuilds.js";
import { decodeGraph, DECODING_CXXFLAGS, decodingGraphs, g1, GROUPS, noneGraph, windowGraph } from "./decodingGraphs.js";

/** This file's own configurations build fast (decodingGraphs.ts); the example specs below build as the run has them (exampleCxxflags). */
const kernelFor = (graph: AttentionGraph) => kernelWith(graph, DECODING_CXXFLAGS);

/**
 * Runs both templates on the same inputs and checks each against the float64 reference, and the two against
 * each other. The offset makes query row i sit at absolute position kvLen - qLen + i, as in a decode step.
 */
async function checkDecode(graph: AttentionGraph, qLen: number, kvLen: number, partitionSize: number, seed = 1) {
  const kernel = await kernelFor(graph);
  const inputs = generateInputs(graph, seed, { batch: 2, qLen, kvLen });
  const lens = inputs.seqLens ? [...(inputs.seqLens.data as Int32Array)] : [kvLen, kvLen];
  inputs.buffers.offset = tensor("int32", [2], Int32Array.from(lens.map((l) => Math.max(0, l - qLen))));
  const ref = referenceAttention(graph, inputs);
  const tol = TOLERANCE[graph.query.dtype];
  const label = `${graph.name} q=${qLen} kv=${kvLen} P=${partitionSize}`;
  const decoding = kernel.run(inputs, { template: "flash_decoding", partitionSize });
  const attention = kernel.run(inputs, { template: "flash_attention" });
  for (const [name, r] of [["flash_decoding", decoding], ["flash_attention", attention]] as const) {
    const out = compareOutputs(toFloat64(r.out), ref.out, tol);
    expect(out.ok, `${label} ${name} out ${JSON.stringify(out)}`).toBe(true);
    const lse = compareOutputs(toFloat64(r.lse!), ref.lse, TOLERANCE.float32);
    expect(lse.ok, `${label} ${name} lse ${JSON.stringify(lse)}`).toBe(true);
  }
  // The templates agree with each other at least as closely as each agrees with the reference.
  expect(compareOutputs(toFloat64(decoding.out), toFloat64(attention.out), { atol: 2 * tol.atol, rtol: 2 * tol.rtol }).ok, label).toBe(true);
}

const exampleDir = join(import.meta.dirname, "..", "..", "examples", "specs");
const exampleFiles = readdirSync(exampleDir).filter((f) => f.endsWith(".json")).sort();
prebuild(decodingGraphs(), DECODING_CXXFLAGS);
for (const f of exampleFiles) prebuild([parseSpec(readFileSync(join(exampleDir, f), "utf8"))], exampleCxxflags(basename(f, ".json")));

// The decode loop's kernel, in a cache of its own (other test files add entries to the shared one meanwhile), starts
// building now with the others rather than alone at the end of the file.
const loopPageSize = 16;
const loopGraph = decodeGraph("dec_loop", { hq: 8, hkv: 2, d: 64, dtype: "bfloat16", block: [16, 16], pageSize: loopPageSize });
const loopCacheDir = mkdtempSync(join(tmpdir(), "minductor-decode-loop-"));
const loopEvents: string[] = [];
const loopKernel = compile(loopGraph, { cacheDir: loopCacheDir, cxxflags: [...DECODING_CXXFLAGS], onProgress: (e) => loopEvents.push(e.phase) });
loopKernel.catch(() => {});
afterAll(() => rmSync(loopCacheDir, { recursive: true, force: true }));

describe("flash decoding against the reference and against flash attention", () => {
  const cases: Array<[number, number, number]> = [];
  for (const qLen of [1, 8]) for (const kvLen of [1, 127, 128, 129, 4099]) for (const p of [64, 128, 256, 1024]) cases.push([qLen, kvLen, p]);
  it.each(cases)("G=1 D=64 fp32: q_len %i, kv_len %i, partition %i", async (qLen, kvLen, p) => {
    await checkDecode(g1, qLen, kvLen, p);
  });

  it.each(GROUPS)("%s: q_len 1 and 8 over ragged lengths and partition sizes", async (_name, graph) => {
    for (const [qLen, kvLen, p] of [[1, 129, 128], [1, 700, 256], [8, 333, 128], [8, 1000, 1024], [1, 1, 128]] as const) {
      const block = graph.blockSize[1];
      await checkDecode(graph, qLen, kvLen, Math.max(block, Math.floor(p / block) * block), qLen * 7 + kvLen);
    }
  });

  it("partitions whose positions are all masked (a block mask that lists every block as partial)", async () => {
    const graph = windowGraph;
    const kernel = await kernelFor(graph);
    const kvLen = 1000;
    const inputs = generateInputs(graph, 3, { batch: 2, qLen: 1, kvLen });
    inputs.buffers.offset = tensor("int32", [2], Int32Array.of(kvLen - 1, 150));
    const kvBlocks = Math.ceil(kvLen / 64);
    // Every block listed as partial: mask_mod decides, and most 64-position partitions see nothing.
    const blockMask = {
      batch: 1, heads: 1, qBlocks: 1, kvBlocks, qBlockSize: 64, kvBlockSize: 64,
      kvNumBlocks: Int32Array.of(kvBlocks), kvIndices: Int32Array.from({ length: kvBlocks }, (_, i) => i),
      fullKvNumBlocks: null, fullKvIndices: null,
    };
    const ref = referenceAttention(graph, inputs);
    for (const template of ["flash_decoding", "flash_attention"] as const) {
      const r = kernel.run(inputs, { template, partitionSize: 64, blockMask });
      expect(compareOutputs(toFloat64(r.out), ref.out, TOLERANCE.float32).ok, template).toBe(true);
      expect(compareOutputs(toFloat64(r.lse!), ref.lse, TOLERANCE.float32).ok, template).toBe(true);
    }
  });

  it("a query masked everywhere gives zeros and lse = -inf in both templates", async () => {
    const graph = noneGraph;
    const kernel = await kernelFor(graph);
    const inputs = generateInputs(graph, 4, { batch: 2, qLen: 1, kvLen: 500 });
    inputs.buffers.offset = tensor("int32", [2], Int32Array.of(0, 0));
    for (const template of ["flash_decoding", "flash_attention"] as const) {
      const r = kernel.run(inputs, { template, partitionSize: 128 });
      expect([...toFloat64(r.out)].every((x) => x === 0), template).toBe(true);
      expect([...toFloat64(r.lse!)].every((x) => x === -Infinity), template).toBe(true);
    }
  });
});

describe("the block mask a kernel builds for a buffer-reading mask_mod", () => {
  // windowGraph's mask reads offset[b], so run() builds its block mask natively and rebuilds it whenever offset
  // changes, refilling the previous mask's arrays when the geometry is the same.
  const inputsAt = (offsets: [number, number], qLen: number, kvLen: number) => {
    const inputs = generateInputs(windowGraph, 5, { batch: 2, qLen, kvLen });
    inputs.buffers.offset = tensor("int32", [2], Int32Array.from(offsets));
    return inputs;
  };
  const expectReference = (inputs: ReturnType<typeof inputsAt>, r: { out: Parameters<typeof toFloat64>[0]; lse?: Parameters<typeof toFloat64>[0] }, label: string, ref = referenceAttention(windowGraph, inputs)) => {
    expect(compareOutputs(toFloat64(r.out), ref.out, TOLERANCE.float32).ok, `${label} out`).toBe(true);
    expect(compareOutputs(toFloat64(r.lse!), ref.lse, TOLERANCE.float32).ok, `${label} lse`).toBe(true);
  };

  it("is rebuilt in place, call after call, as offsets and lengths change", async () => {
    const kernel = await kernelFor(windowGraph);
    const steps: Array<[[number, number], number]> = [[[999, 150], 1000], [[150, 999], 1000], [[500, 0], 1000], [[500, 0], 1000], [[20, 900], 1000], [[1200, 10], 1300], [[0, 1299], 1300]];
    // The same inputs object throughout, its offset changed in place, as a decode loop does.
    const inputs = inputsAt([0, 0], 1, 1000);
    for (const [offsets, kvLen] of steps) {
      const step = kvLen === inputs.key.shape[2] ? inputs : Object.assign(inputs, inputsAt(offsets, 1, kvLen));
      (step.buffers.offset.data as Int32Array).set(offsets);
      expectReference(step, kernel.run(step), `offsets ${offsets} kv ${kvLen}`);
    }
  });

  it("is never refilled while a call on a worker thread may still read it", async () => {
    const kernel = await kernelFor(windowGraph);
    // Long prefill-shaped calls, so the worker's tiles are still reading their mask rows when the next call rebuilds.
    const a = inputsAt([1800, 100], 256, 2049);
    const b = inputsAt([100, 1800], 256, 2049);
    const [refA, refB] = [referenceAttention(windowGraph, a), referenceAttention(windowGraph, b)];
    for (let round = 0; round < 3; round++) {
      const pending = kernel.runAsync(a, { template: "flash_attention" });
      const now = kernel.run(b, { template: "flash_attention" });
      const later = await pending;
      expectReference(b, now, `round ${round}, the synchronous call`, refB);
      expectReference(a, later, `round ${round}, the call on a worker thread`, refA);
    }
  });
});

describe("every example mod, decode-shaped", () => {
  const dir = join(import.meta.dirname, "..", "..", "examples", "specs");
  const specs = readdirSync(dir).filter((f) => f.endsWith(".json")).sort();
  it.each(specs)("%s with q_len 1 and 4 in flash decoding matches the reference", async (file) => {
    const graph = parseSpec(readFileSync(join(dir, file), "utf8"));
    for (const qLen of [1, 4]) {
      await expectMatchesReference(graph, {
        shapes: { qLen, kvLen: 300 },
        run: { template: "flash_decoding", partitionSize: graph.blockSize[1] },
        cxxflags: exampleCxxflags(basename(file, ".json")),
      });
    }
  });
});

describe("a decode loop over a paged cache", () => {
  it("appends 64 tokens one step at a time, compiling exactly once", async () => {
    const pageSize = loopPageSize;
    const graph = loopGraph;
    const events = loopEvents;
    const cacheDir = loopCacheDir;
    const kernel = await loopKernel;
    const entriesBefore = (await listCache(cacheDir)).length;
    const r = rng(11);
    const B = 2;
    const start = [300, 257]; // long enough for the auto policy to pick flash decoding from the first step
    const maxPages = Math.ceil((300 + 64) / pageSize) + 1;
    const pool = generateInputs(graph, 5, { batch: B, qLen: 1, kvLen: maxPages * pageSize });
    const order = r.shuffle(Int32Array.from({ length: pool.key.shape[0] }, (_, i) => i));
    const pageTable = tensor("int32", [B, maxPages], order.slice(0, B * maxPages));
    for (let step = 0; step < 64; step++) {
      const lens = start.map((s) => s + step + 1);
      const inputs = {
        query: fromFloat64(Array.from({ length: B * 8 * 64 }, () => r.normal()), "bfloat16", [B, 8, 1, 64]),
        key: pool.key, value: pool.value, pageTable,
        seqLens: tensor("int32", [B], Int32Array.from(lens)),
        buffers: { offset: tensor("int32", [B], Int32Array.from(lens.map((l) => l - 1))) },
      };
      expect(kernel.choiceFor(inputs).template).toBe("flash_decoding");
      const result = kernel.run(inputs);
      if (step % 21 === 0 || step === 63) {
        const ref = referenceAttention(graph, inputs);
        expect(compareOutputs(toFloat64(result.out), ref.out, TOLERANCE.bfloat16).ok, `step ${step}`).toBe(true);
      }
    }
    // One lookup (or build) for the engine and one for the mod library, both before the first step.
    expect(events.filter((p) => p === "compiling").length + events.filter((p) => p.startsWith("cache-hit")).length).toBe(2);
    expect((await listCache(cacheDir)).length).toBe(entriesBefore);
    rmSync(cacheDir, { recursive: true, force: true });
  });
});
