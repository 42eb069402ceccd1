/**
 * Every example spec's kernel under AddressSanitizer + UndefinedBehaviorSanitizer (LeakSanitizer on), through the
 * standalone harness: both templates, paged and unpaged as the spec is, at lengths that are not multiples of the
 * block sizes, so tails, partial blocks, ragged paged sequences and one-position caches are all exercised. Any
 * report fails the run (-fno-sanitize-recover=all) and the harness prints nothing on stderr when clean, so the
 * test asserts exit 0 and an empty stderr. Each spec's harness is built once and run with several argv.
 *
 * The specs are a sweep (test/helpers/sweeps.ts): each harness is a sanitized build of about 10 s of g++, so
 * `npm test` runs the specs of SAMPLE, which between them have both templates, paging, a ragged batch, a BSHD layout,
 * GQA, buffers, score and mask mods, lse, and fp32, bf16 and fp16 queries; `npm run test:sweeps`
 * runs the others.
 */
import { readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { execa } from "execa";
import { afterAll, describe, expect, it } from "vitest";
import type { AttentionGraph, QuantizedDType } from "../../src/ir/graph.js";
import { sweep } from "../helpers/sweeps.js";
import { buildHarness, exampleGraphs, harnessArgs, type HarnessRun, limiter, runHarness, scratchDir } from "./harnessTools.js";

/*
 * -g1 (line tables) is enough for symbolized reports and compiles a quarter faster than -g. -O0 hides no access
 * from the sanitizers and builds in about half the time of -O1; -DMD_NO_FORCED_INLINE halves it again (each helper is
 * compiled and instrumented once, not at every call site: 6.5 -> 2.9 s for bshd_prefill's harness).
 */
const SANITIZE = ["-fsanitize=address,undefined", "-fno-sanitize-recover=all", "-fno-omit-frame-pointer", "-O0", "-g1", "-DMD_NO_FORCED_INLINE"];
/**
 * The SIMD path this machine runs (AVX2/AVX-512 where present), with the engine calling the mods through the
 * md_mods table as `compile()`'s split build does; and the scalar/SSE path of the same kernel with the mods linked
 * in, as `--emit cpp` builds it.
 */
const NATIVE = ["-march=native", "-DMD_MODS_LINKED=0", ...SANITIZE];
const SCALAR = ["-march=native", "-mno-avx2", "-mno-fma", ...SANITIZE];
/** Lanes of the mods' vector form on this machine under -march=native (mod_helpers.h's MDM_W). */
const CPU_FLAGS = new Set(readFileSync("/proc/cpuinfo", "utf8").match(/^flags\s*:(.*)$/m)?.[1].trim().split(/\s+/) ?? []);
const SIMD_LANES = CPU_FLAGS.has("avx512f") ? 16 : CPU_FLAGS.has("avx2") && CPU_FLAGS.has("fma") ? 8 : 1;
/** The specs `npm test` sanitizes (the others run in `npm run test:sweeps`); document_mask also has the buffer-bound test. */
const SAMPLE = new Set(["paged_decode", "ragged_paged", "document_mask", "softcap", "bshd_prefill"]);
const inSample = (name: string) => SAMPLE.has(name);
/** Specs also run on the scalar path: the paged fp16 one covers the most helpers (16-bit loads, paging). */
const SCALAR_SPECS = sweep(["paged_decode"], inSample);
/** Specs also run with a quantized key/value, one per 8-bit format: paged and unpaged, decode and prefill. */
const QUANTIZED_SPECS: Array<[string, QuantizedDType]> = sweep(
  [["paged_decode", "int8"], ["causal", "float8_e4m3fn"], ["gqa_decode", "float8_e5m2"]] as Array<[string, QuantizedDType]>,
  ([name]) => inSample(name),
);

/* libgomp's thread pool is released at exit without leaking, so no LeakSanitizer suppression is needed. */
const SANITIZER_ENV = {
  // Every call takes all the threads it asks for, however small: the two-thread runs run the parallel paths.
  MINDUCTOR_WAKE_EVERY_THREAD: "1",
  ASAN_OPTIONS: "detect_leaks=1:abort_on_error=0:strict_string_checks=1:detect_stack_use_after_return=1",
  UBSAN_OPTIONS: "print_stacktrace=1",
};

/** g++ runs and harness runs share the machine's cores; more at once only thrashes. */
const PARALLEL = 2;

const allGraphs = exampleGraphs();
const graphs = sweep(allGraphs, ([name]) => inSample(name));
const scratch = scratchDir("sanitizers");
const slot = limiter(PARALLEL);
// Every build starts at import, queued on the limiter, so later specs compile while earlier ones run.
const builds = new Map<string, Promise<string>>();
for (const [name, graph] of graphs) builds.set(name, slot(() => buildHarness(graph, scratch.dir, name, NATIVE)));
for (const name of SCALAR_SPECS) {
  const graph = allGraphs.find(([n]) => n === name)![1];
  builds.set(`${name}_scalar`, slot(() => buildHarness(graph, scratch.dir, `${name}_scalar`, SCALAR)));
}
const quantized = QUANTIZED_SPECS.map(([name, dtype]) => {
  const graph = allGraphs.find(([n]) => n === name)![1];
  return [`${name}_${dtype}`, { ...graph, key: { ...graph.key, dtype }, value: { ...graph.value, dtype } }] as [string, AttentionGraph];
});
for (const [name, graph] of quantized) builds.set(name, slot(() => buildHarness(graph, scratch.dir, name, NATIVE)));
for (const build of builds.values()) build.catch(() => {});

let runs = 0;
afterAll(() => {
  console.info(`sanitizer runs: ${runs} (${builds.size} harness builds)`);
  scratch.remove();
});

/** A paged spec's pool for a run: the pages its batch reads and three more (undefined: unpaged). */
function poolPages(graph: AttentionGraph, batch: number, kvLen: number): number | undefined {
  const pageSize = graph.kvCache?.pageSize;
  return pageSize === undefined ? undefined : batch * Math.ceil(kvLen / pageSize) + 3;
}

/**
 * The argv of every run of one spec: q_len 1 and 67 (decode specs 1 and 8) x kv_len 1, 129, 333 x both templates;
 * then the strided and ragged layouts at kv_len 129: BSHD tensors (a token-major pool), and ragged batches (packed
 * key/value unless paged) through both templates, the decoding one mixing decode rows with prefill chunks.
 *
 * A paged spec's pool has the pages the batch needs and a few more, all shuffled, not the spec's whole pool:
 * paged_decode's 64 pages of 8 x 64 x 128 are 8.4 million random K/V elements a run, which took 0.7 of its 0.7-1.0 s
 * under the sanitizers (the kernel reads only the pages of the page table either way).
 */
function runsFor(graph: AttentionGraph): string[][] {
  const decode = graph.query.shape[2] === 1;
  const kvBlock = graph.blockSize[1];
  const pool = (batch: number, kvLen: number) => ({ numPages: poolPages(graph, batch, kvLen) });
  const list: string[][] = [];
  for (const qLen of decode ? [1, 8] : [1, 67]) {
    for (const [i, kvLen] of [1, 129, 333].entries()) {
      for (const template of ["attention", "decoding"] as const) {
        // Partitions of one kv block give the most partitions (and partials to merge); larger ones exercise
        // partitions that span several blocks.
        const partitionSize = kvBlock * (i + 1);
        list.push(harnessArgs({ template, batch: 2, qLen, kvLen, partitionSize, seed: qLen * 1000 + kvLen, threads: 2, ...pool(2, kvLen) }));
      }
    }
  }
  const qLen = decode ? 8 : 67;
  for (const template of ["attention", "decoding"] as const) {
    list.push(harnessArgs({ template, batch: 2, qLen, kvLen: 129, partitionSize: kvBlock, seed: 5, threads: 2, layout: "bshd", ...pool(2, 129) }));
    list.push(harnessArgs({ template, batch: 3, qLen: decode ? qLen : 13, kvLen: 129, partitionSize: kvBlock, seed: 6, threads: 2, ragged: true, layout: "bshd", ...pool(3, 129) }));
  }
  return list;
}

function expectClean(run: HarnessRun, label: string): void {
  expect(run.stderr, `${label}: sanitizer report`).toBe("");
  expect(run.exitCode, `${label}: exit code`).toBe(0);
  expect(run.fields.out_sum, `${label}: checksum line`).toBeDefined();
}

async function runAll(exe: string, argvs: string[][], label: string): Promise<void> {
  const results = await Promise.all(argvs.map((argv) => slot(() => runHarness(exe, argv, SANITIZER_ENV), true)));
  results.forEach((run, i) => expectClean(run, `${label} ${argvs[i].join(" ")}`));
  runs += results.length;
}

describe("ASan + UBSan + LSan over every example spec", () => {
  it.each(graphs)("%s", async (name, graph) => {
    await runAll(await builds.get(name)!, runsFor(graph), name);
  });

  it.each(graphs)("%s: the vector form of the mods gives the scalar form's bits (--check-mods), sanitized", async (name, graph) => {
    const exe = await builds.get(name)!;
    const qLen = graph.query.shape[2] === 1 ? 8 : 67;
    const pages = poolPages(graph, 2, 333);
    const pool = pages === undefined ? [] : ["--num-pages", String(pages)];
    const run = await slot(() => runHarness(exe, ["--check-mods", "--batch", "2", "--q-len", String(qLen), "--kv-len", "333", ...pool], SANITIZER_ENV), true);
    expect(run.stderr, `${name}: report`).toBe("");
    expect(run.exitCode).toBe(0);
    const lanes = Number(run.fields.mods_lanes);
    expect(lanes).toBe(SIMD_LANES);
    // batch 2 x heads x 3 query positions x row lengths 1 .. 4 * lanes + 3 x with and without mask_mod
    expect(Number(run.fields.mods_rows)).toBe(2 * graph.query.shape[1] * 3 * (4 * lanes + 3) * 2);
    expect(run.fields.mods_mismatches).toBe("0");
    runs++;
  });

  it.each(quantized)("%s: quantized key/value", async (name, graph) => {
    await runAll(await builds.get(name)!, runsFor(graph), name);
  });

  it.each(SCALAR_SPECS)("%s on the scalar path (-mno-avx2 -mno-fma)", async (name) => {
    const graph = allGraphs.find(([n]) => n === name)![1];
    await runAll(await builds.get(`${name}_scalar`)!, runsFor(graph), `${name} scalar`);
  });

  it.each([
    ["heap-buffer-overflow", "char* p = (char*)malloc(16); char d[32]; memcpy(d, p, opaque(17)); free(p);"],
    ["detected memory leaks", "leaked = malloc(64); leaked = nullptr;"],
    ["signed integer overflow", "volatile int x = 2147483647; x = x + opaque(1);"],
  ])("the same flags and environment report a planted bug: %s", async (report, body) => {
    const source = join(scratch.dir, `planted_${report.replace(/\W+/g, "_")}.cpp`);
    writeFileSync(source, `#include <stdlib.h>\n#include <string.h>\nvoid* volatile leaked;\n__attribute__((noinline)) int opaque(int x) { return x; }\nint main() { ${body} return 0; }\n`);
    const exe = source.replace(/\.cpp$/, "");
    await slot(() => execa("g++", [...NATIVE, source, "-o", exe]), true);
    const run = await slot(() => runHarness(exe, [], SANITIZER_ENV), true);
    expect(run.exitCode).not.toBe(0);
    expect(run.stderr).toContain(report);
  });

  it.runIf(builds.has("document_mask"))("a buffer index past the captured buffer is status 1 from the kernel, not a memory error", async () => {
    // q/kv positions past the 512 entries of the document mask's `doc` buffer: the kernel's bounds check turns the
    // reads into status 1 and zeros, so the harness fails cleanly, without a sanitizer report.
    const exe = await builds.get("document_mask")!;
    const run = await slot(() => runHarness(exe, harnessArgs({ template: "attention", batch: 1, qLen: 600, kvLen: 600 }), SANITIZER_ENV), true);
    expect(run.exitCode).toBe(1);
    expect(run.stderr).toContain("returned status 1");
    expect(run.stderr).not.toContain("Sanitizer");
  });
});
