#!/usr/bin/env node
/**
 * Soak test: 10,000 flash-decoding calls in one process on a small paged decode spec, with the sequence lengths
 * changing every call as in a real decode loop, half of the calls synchronous and half on koffi's worker threads.
 * RSS is sampled every 500 calls after a warm-up of 500 calls (first sample at call 1000); a leak of even a few hundred bytes per call shows as
 * steady growth. Exits 1 when RSS grows more than 5% from the first sample to the last.
 *
 *   npm run build && node scripts/soak.mjs [--calls N] [--plant-leak-kb N]
 *
 * --plant-leak-kb keeps N KB per call alive on purpose, to see the check fail.
 */
import { spawnSync } from "node:child_process";
import { fileURLToPath } from "node:url";

/**
 * V8 resizes its young generation by tens of MB as allocation pressure changes, and frees old-space pages lazily,
 * which would swamp a 5% RSS criterion with noise. A fixed young generation and a full GC before each sample leave
 * RSS to measure what the process really retains, so the script re-runs itself with these flags.
 */
const V8_FLAGS = ["--expose-gc", "--min-semi-space-size=2", "--max-semi-space-size=2"];
if (typeof globalThis.gc !== "function") {
  const child = spawnSync(process.execPath, [...V8_FLAGS, fileURLToPath(import.meta.url), ...process.argv.slice(2)], { stdio: "inherit" });
  process.exit(child.status ?? 1);
}

let api;
try {
  api = await import("../dist/index.js");
} catch (e) {
  console.error(`soak: cannot load dist/index.js (run npm run build first): ${e.message}`);
  process.exit(2);
}
const { compile, fromFloat64, generateInputs, tensor } = api;

const WARMUP = 500;
const SAMPLE_EVERY = 500;
const MAX_GROWTH = 0.05;

function intOption(name, fallback, min) {
  const at = process.argv.indexOf(name);
  const value = at > 0 ? Number(process.argv[at + 1]) : fallback;
  if (!Number.isSafeInteger(value) || value < min) {
    console.error(`soak: ${name} must be an integer >= ${min}`);
    process.exit(2);
  }
  return value;
}
const CALLS = intOption("--calls", 10_000, WARMUP + 2 * SAMPLE_EVERY);
const PLANTED_LEAK_KB = intOption("--plant-leak-kb", 0, 0);
const planted = [];

const PAGE_SIZE = 16;
const BATCH = 2;
const MAX_KV = 512;
const spec = {
  name: "soak_paged_decode",
  query: { shape: [BATCH, 8, 1, 64], dtype: "float16" },
  key: { shape: [BATCH * (MAX_KV / PAGE_SIZE), 2, PAGE_SIZE, 64], dtype: "float16" },
  value: { shape: [BATCH * (MAX_KV / PAGE_SIZE), 2, PAGE_SIZE, 64], dtype: "float16" },
  scoreMod: "score + slopes[h] * (kv_idx - q_idx - offset[b])",
  maskMod: "q_idx + offset[b] >= kv_idx",
  buffers: { slopes: { shape: [8], dtype: "float32" }, offset: { shape: [BATCH], dtype: "int32" } },
  blockSize: [16, 16],
  kvCache: { pageSize: PAGE_SIZE },
  returnLse: true,
};

const kernel = await compile(spec);
const inputs = generateInputs(kernel.graph, 1, { kvLen: MAX_KV });
const seqLens = inputs.seqLens.data;
const offset = new Int32Array(BATCH);
inputs.buffers.offset = tensor("int32", [BATCH], offset);
inputs.buffers.slopes = fromFloat64([0.5, 0.25, 0.125, 0.0625, 0.03125, 0.015625, 0.0078125, 0.00390625], "float32", [8]);

/** Lengths walk through every value up to MAX_KV, so mask rebuilds and partition counts change as in decoding. */
function step(call) {
  for (let b = 0; b < BATCH; b++) {
    seqLens[b] = 1 + ((call * 7 + b * 131) % MAX_KV);
    offset[b] = seqLens[b] - 1;
  }
}

const samples = [];
let checksum = 0;
const started = performance.now();
for (let call = 0; call < CALLS; call++) {
  step(call);
  const options = { template: "flash_decoding", partitionSize: 64 };
  const result = call % 2 === 0 ? kernel.run(inputs, options) : await kernel.runAsync(inputs, options);
  checksum += result.lse.data[0];
  if (PLANTED_LEAK_KB > 0) planted.push(Buffer.alloc(PLANTED_LEAK_KB * 1024, 1));
  const done = call + 1;
  if (done > WARMUP && (done - WARMUP) % SAMPLE_EVERY === 0) {
    globalThis.gc();
    const m = process.memoryUsage();
    samples.push({ calls: done, rss: m.rss, heapUsed: m.heapUsed, external: m.external });
  }
}
const seconds = (performance.now() - started) / 1000;

const mb = (bytes) => (bytes / 2 ** 20).toFixed(2);
console.log(`soak: ${CALLS} flash-decoding calls in ${seconds.toFixed(1)} s (${((seconds / CALLS) * 1e6).toFixed(0)} us/call), lse checksum ${checksum.toFixed(3)}`);
console.log("   calls    rss MB   heap MB  external MB");
for (const s of samples) console.log(`${String(s.calls).padStart(8)}  ${mb(s.rss).padStart(8)}  ${mb(s.heapUsed).padStart(8)}  ${mb(s.external).padStart(11)}`);

// Least-squares slope of RSS over calls, reported per 1000 calls.
const n = samples.length;
const meanX = samples.reduce((a, s) => a + s.calls, 0) / n;
const meanY = samples.reduce((a, s) => a + s.rss, 0) / n;
const slope =
  samples.reduce((a, s) => a + (s.calls - meanX) * (s.rss - meanY), 0) / samples.reduce((a, s) => a + (s.calls - meanX) ** 2, 0);
const first = samples[0].rss;
const last = samples[n - 1].rss;
const growth = (last - first) / first;
console.log(`slope: ${(slope * 1000 / 1024).toFixed(1)} KB per 1000 calls; growth first -> last sample: ${(growth * 100).toFixed(2)}% (limit ${MAX_GROWTH * 100}%)`);
if (growth > MAX_GROWTH) {
  console.error(`soak: RSS grew ${(growth * 100).toFixed(2)}% over the run: a leak`);
  process.exit(1);
}
