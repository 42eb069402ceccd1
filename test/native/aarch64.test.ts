/**
 * The aarch64 NEON kernels, without an ARM machine: the standalone harness of every example spec (and of one variant
 * with odd head dims and an fp8 key/value) cross-compiled with Debian's aarch64-linux-gnu-g++ (static, OpenMP) and run
 * under qemu-aarch64 (user-mode emulation), both templates, paged and unpaged as the specs are, compared element by
 * element with the float64 reference within the tolerances every x86 test uses; minductor.h's primitive checks
 * (headerPrimitives.test.ts's) on NEON; the mods' vector form (4 lanes) against their scalar form bit for bit; and
 * the disassembly, which must show NEON in the hot loops where the same source with its NEON branch removed shows
 * none. Emulation says nothing about speed: nothing here is timed.
 *
 * Skipped, saying why, when the cross compiler or qemu is missing; .ci/run installs both.
 *
 * The specs are a sweep (test/helpers/sweeps.ts), each a cross build of its own: `npm test` runs SAMPLE (fp32, bf16
 * and fp16; both kinds of mods; paging; the odd head dims and fp8 of the extra variant) with the primitives and the
 * disassembly, and `npm run test:sweeps` the other example specs.
 */
import { spawnSync } from "node:child_process";
import { readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { execa } from "execa";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { templatesDir } from "../../src/codegen/templatesDir.js";
import { type AttentionGraph, isQuantized } from "../../src/ir/graph.js";
import { generateInputs, type ShapeOverrides } from "../../src/io/generateInputs.js";
import { compareOutputs, TOLERANCE } from "../../src/reference/compareOutputs.js";
import { referenceAttention } from "../../src/reference/referenceAttention.js";
import { tensor, toFloat64 } from "../../src/runtime/tensor.js";
import { sweep, sweepPart } from "../helpers/sweeps.js";
import { parsePrimitives, PRIMITIVES_DRIVER, primitivesTests } from "../kernel/harness/primitivesDriver.js";
import { buildHarness, exampleGraphs, fnv1a, harnessArgs, limiter, runHarness, scratchDir } from "./harnessTools.js";

const CXX = "aarch64-linux-gnu-g++";
const OBJDUMP = "aarch64-linux-gnu-objdump";
const QEMU = "qemu-aarch64";
/**
 * Static, so qemu needs no aarch64 sysroot. -O1 keeps the intrinsics, the forced inlining and NEON in every function
 * the disassembly checks look at, and builds in less time than -O2 (this file alone, on a 2-core AVX-512 VM: 37 s of
 * CPU at -O2, 25 at -O1, 25 at -O0, whose emulated runs are slower).
 */
const FLAGS = ["-O1", "-march=armv8-a", "-static"];
/** Two builds at a time: the machines that run the suite have two cores. */
const PARALLEL = 2;

const missing = [CXX, OBJDUMP, QEMU].filter((tool) => spawnSync(tool, ["--version"], { stdio: "ignore" }).status !== 0);
const skipReason = `needs ${missing.join(", ")} (Debian: apt-get install g++-aarch64-linux-gnu qemu-user, as .ci/run does)`;
if (missing.length > 0) console.warn(`aarch64.test.ts skipped: ${skipReason}`);

/** Decode specs at a cache length that is no multiple of a page or of 4 lanes; prefill specs at partial blocks. */
function shapesOf(graph: AttentionGraph): Required<ShapeOverrides> {
  const batch = graph.query.shape[0];
  return graph.query.shape[2] === 1 ? { batch: Math.min(batch, 2), qLen: 1, kvLen: 333 } : { batch: Math.min(batch, 2), qLen: 67, kvLen: 129 };
}

/**
 * The spec as the harness runs it without --layout and --ragged: a dense call in the plain layout. A page pool is cut
 * to the pages the call uses: the pool's size is a runtime value (the kernel is the same), and drawing the spec's
 * whole pool under emulation would take most of this file's time.
 */
function asRun(graph: AttentionGraph): AttentionGraph {
  const { batch, kvLen } = shapesOf(graph);
  const pages = graph.kvCache ? batch * Math.ceil(kvLen / graph.kvCache.pageSize) : 0;
  const pool = <T extends AttentionGraph["key"]>(t: T): T => {
    const [, h, l, d] = t.shape;
    return { ...t, layout: "bhsd", shape: graph.kvCache ? [pages, h, l, d] : t.shape };
  };
  return { ...graph, raggedQuery: false, query: { ...graph.query, layout: "bhsd" }, key: pool(graph.key), value: pool(graph.value) };
}

/** The NEON branches of the headers, turned off: the scalar path the same compiler builds for the same CPU. */
const NEON_CONDITION = "defined(__aarch64__) && defined(__ARM_NEON)";
const withoutNeon = (source: string) => {
  if (!source.includes(NEON_CONDITION)) throw new Error("the harness source has no NEON branch to turn off");
  return source.replaceAll(NEON_CONDITION, "0");
};

/**
 * Beyond the examples, whose head dims are multiples of 4: paged_decode with head dims that are not (the partial last
 * vector of a row, in every kernel) and an fp8 e4m3fn key/value (NEON's widening loads inside the kernels).
 */
function tailsAndFp8(graph: AttentionGraph): AttentionGraph {
  const dims = <T extends AttentionGraph["key"]>(t: T, d: number): T => ({ ...t, shape: [t.shape[0], t.shape[1], t.shape[2], d] });
  return {
    ...graph,
    query: dims(graph.query, 70),
    key: { ...dims(graph.key, 70), dtype: "float8_e4m3fn" },
    value: { ...dims(graph.value, 38), dtype: "float8_e4m3fn" },
  };
}

const examples = exampleGraphs();
/** The specs `npm test` runs; `npm run test:sweeps` runs the others. */
const SAMPLE = new Set(["paged_decode", "paged_decode_d70_e4m3fn", "causal", "softcap", "document_mask"]);
/** The primitives and the disassembly belong to the sample. */
const sampled = sweepPart() !== "rest";
const graphs = sweep(
  [...examples, ["paged_decode_d70_e4m3fn", tailsAndFp8(examples.find(([name]) => name === "paged_decode")![1])] as const].map(([name, graph]) => [name, asRun(graph)] as const),
  ([name]) => SAMPLE.has(name),
);
const scratch = scratchDir("aarch64");
const slot = limiter(PARALLEL);
/** The spec whose build the disassembly checks read: fp16 (NEON's conversion instruction), paged, both templates. */
const DISASSEMBLED = "paged_decode";
const builds = new Map<string, Promise<string>>();
if (missing.length === 0) {
  if (sampled) builds.set("primitives", slot(() => buildPrimitives(scratch.dir)));
  // Every build is queued at import; each test waits for its own while the later ones compile.
  for (const [name, graph] of graphs) builds.set(name, slot(() => buildHarness(graph, scratch.dir, name, FLAGS, { cxx: CXX })));
  if (sampled) {
    const graph = graphs.find(([name]) => name === DISASSEMBLED)![1];
    builds.set(`${DISASSEMBLED}_scalar`, slot(() => buildHarness(graph, scratch.dir, `${DISASSEMBLED}_scalar`, FLAGS, { cxx: CXX, edit: withoutNeon })));
  }
  for (const build of builds.values()) build.catch(() => {});
}
afterAll(() => scratch.remove());

const underQemu = (exe: string, args: readonly string[]) => runHarness(QEMU, [exe, ...args]);

/** minductor.h's primitives driver (test/kernel/headerPrimitives.test.ts's), built for aarch64. */
async function buildPrimitives(dir: string): Promise<string> {
  const source = join(dir, "primitives.cpp");
  const exe = join(dir, "primitives");
  writeFileSync(source, PRIMITIVES_DRIVER);
  await execa(CXX, ["-std=gnu++17", ...FLAGS, "-I", templatesDir(), source, "-o", exe]);
  return exe;
}

/** out (the query's dtype) then lse (float32), as --write-outputs stores them, as float64. */
function readOutputs(file: string, graph: AttentionGraph, outCount: number): { out: Float64Array; lse: Float64Array } {
  const bytes = readFileSync(file);
  const buffer = bytes.buffer.slice(bytes.byteOffset, bytes.byteOffset + bytes.byteLength);
  const dtype = graph.query.dtype;
  const width = dtype === "float32" ? 4 : 2;
  const out = dtype === "float32" ? new Float32Array(buffer, 0, outCount) : new Uint16Array(buffer, 0, outCount);
  const lseCount = (bytes.byteLength - outCount * width) / 4;
  return {
    out: toFloat64(tensor(dtype, [outCount], out as Float32Array & Uint16Array)),
    lse: Float64Array.from(new Float32Array(buffer, outCount * width, lseCount)),
  };
}

describe.skipIf(missing.length > 0)(`aarch64 NEON under ${QEMU}${missing.length > 0 ? ` (skipped: ${skipReason})` : ""}`, () => {
  describe.runIf(sampled)("minductor.h primitives, as on x86", () => {
    let r: Record<string, number>;
    beforeAll(async () => {
      const run = await execa(QEMU, [await builds.get("primitives")!]);
      r = parsePrimitives(run.stdout);
    });
    primitivesTests(() => r);
  });

  it.each(graphs.map(([name]) => name))("%s: both templates match the float64 reference", async (name) => {
    const graph = graphs.find(([n]) => n === name)![1];
    const exe = await builds.get(name)!;
    const shapes = shapesOf(graph);
    const seed = 5;
    const inputs = generateInputs(graph, seed, shapes);
    // The harness hashes the values it draws before it quantizes them, as an unquantized graph would draw them.
    const values = isQuantized(graph.key.dtype)
      ? generateInputs({ ...graph, key: { ...graph.key, dtype: graph.query.dtype }, value: { ...graph.value, dtype: graph.query.dtype } }, seed, shapes)
      : inputs;
    const drawn = [values.query, values.key, values.value, values.pageTable, values.seqLens, ...graph.buffers.map((b) => values.buffers[b.name])];
    const ref = referenceAttention(graph, inputs);
    for (const template of ["attention", "decoding"] as const) {
      const file = join(scratch.dir, `${name}.${template}.out`);
      const run = await underQemu(exe, [...harnessArgs({ template, ...shapes, seed, threads: 2 }), "--write-outputs", file]);
      expect(run.exitCode, run.stderr).toBe(0);
      // the emulated harness drew the reference's inputs, bit for bit
      expect(run.fields.inputs_fnv1a).toBe(fnv1a(drawn.filter((t) => t !== undefined).map((t) => t.data)));
      const got = readOutputs(file, graph, ref.out.length);
      const out = compareOutputs(got.out, ref.out, TOLERANCE[graph.query.dtype]);
      expect(out.ok, `${name} ${template}: out ${JSON.stringify(out)}`).toBe(true);
      expect(got.lse.length).toBe(graph.returnLse ? ref.lse.length : 0);
      if (graph.returnLse) {
        const lse = compareOutputs(got.lse, ref.lse, TOLERANCE.float32);
        expect(lse.ok, `${name} ${template}: lse ${JSON.stringify(lse)}`).toBe(true);
      }
    }
  });

  // a float buffer, tanh, an int buffer read at a varying index, a 2-D buffer: those of this run's specs
  const withMods = ["alibi", "softcap", "document_mask", "relative_bias"].filter((name) => builds.has(name));
  it.each(withMods)("%s: the mods' 4-lane vector form gives their scalar form's bits", async (name) => {
    const run = await underQemu(await builds.get(name)!, ["--check-mods", "--batch", "1", "--q-len", "9", "--kv-len", "40"]);
    expect(run.exitCode, run.stderr).toBe(0);
    expect(run.fields.mods_lanes).toBe("4");
    expect(Number(run.fields.mods_rows)).toBeGreaterThan(0);
    expect(run.fields.mods_mismatches).toBe("0");
  });

  it.runIf(sampled)(`the hot loops use NEON (${DISASSEMBLED}'s build), and the same checks fail on the scalar path`, async () => {
    const [neon, scalar] = await Promise.all([neonEvidence(await builds.get(DISASSEMBLED)!), neonEvidence(await builds.get(`${DISASSEMBLED}_scalar`)!)]);
    // Prefill's micro-GEMM (S = Q K^T and P V): at least one step of its 8-row x 2-vector block.
    expect(neon.prefillFmla, JSON.stringify(neon)).toBeGreaterThanOrEqual(16);
    // Decode's row-pointer kernels: fp16 rows widened four at a time by NEON's conversion, then vector FMAs.
    expect(neon.decodeFp16Loads, JSON.stringify(neon)).toBeGreaterThan(0);
    expect(neon.decodeFmla, JSON.stringify(neon)).toBeGreaterThan(0);
    // The softmax's exp: NEON's round-to-nearest of a vector, in a function that runs the polynomial's vector FMAs.
    expect(neon.expFmla, JSON.stringify(neon)).toBeGreaterThanOrEqual(6);

    expect(scalar.prefillFmla, JSON.stringify(scalar)).toBeLessThan(16);
    expect(scalar.decodeFp16Loads, JSON.stringify(scalar)).toBe(0);
    expect(scalar.expFmla, JSON.stringify(scalar)).toBeLessThan(6);
  });
});

/** Vector instructions of the kernel's functions in an aarch64 binary. */
async function neonEvidence(exe: string): Promise<{ prefillFmla: number; decodeFmla: number; decodeFp16Loads: number; expFmla: number }> {
  const { stdout } = await execa(OBJDUMP, ["-d", "-C", "--no-show-raw-insn", exe], { maxBuffer: 1 << 30 });
  const functions = new Map<string, string[]>();
  let body: string[] | undefined;
  for (const line of stdout.split("\n")) {
    const start = /^[0-9a-f]+ <(.*)>:$/.exec(line);
    if (start) {
      body = start[1].includes("md_") ? [] : undefined;
      if (body) functions.set(start[1], body);
    } else if (body && line.startsWith(" ")) {
      body.push(line.split("\t").slice(1).join(" "));
    }
  }
  const count = (name: (f: string) => boolean, instruction: RegExp) =>
    [...functions].filter(([f]) => name(f)).reduce((n, [, lines]) => n + lines.filter((l) => instruction.test(l)).length, 0);
  const fmla = /^fmla v\d+\.4s,/;
  const isDecode = (f: string) => f.includes("md_dec_task");
  // The function that holds the vector exp: a vector round-to-nearest (vrndnq_f32; the scalar exp's nearbyintf is a
  // scalar frinti), counted with the vector FMAs beside it; the largest such count over the kernel's functions.
  const expFmla = Math.max(
    0,
    ...[...functions.values()].filter((lines) => lines.some((l) => /^frintn v\d+\.4s,/.test(l))).map((lines) => lines.filter((l) => fmla.test(l)).length),
  );
  return {
    prefillFmla: count((f) => f.startsWith("md_flash_attention_task(") || /\bmd_gemm(_limited)?</.test(f), fmla),
    decodeFmla: count(isDecode, fmla),
    decodeFp16Loads: count(isDecode, /^fcvtl v\d+\.4s, v\d+\.4h/),
    expFmla,
  };
}
