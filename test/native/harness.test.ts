/**
 * The standalone harness: it compiles with the plain command of its documentation, draws exactly the inputs that
 * generateInputs makes in TypeScript (bit for bit), and the kernel it embeds gives the checksums the loaded library
 * gives on those inputs. That makes a sanitizer run of the harness a run of the same computation Node performs.
 */
import { readFileSync } from "node:fs";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { main } from "../../src/cli/main.js";
import { renderHarness } from "../../src/codegen/renderHarness.js";
import { flexAttention } from "../../src/ir/flexAttention.js";
import type { AttentionGraph } from "../../src/ir/graph.js";
import { generateInputs } from "../../src/io/generateInputs.js";
import { toFloat64 } from "../../src/runtime/tensor.js";
import { kernelFor } from "../helpers/checkKernel.js";
import { exampleCxxflags } from "../helpers/fastBuilds.js";
import { buildHarness, exampleGraphs, fnv1a, harnessArgs, runHarness, scratchDir, SPECS_DIR } from "./harnessTools.js";

/** The command `minductor compile --help` gives for the harness: no -march, so the kernel takes its scalar path. */
const PLAIN_FLAGS = ["-O1", "-g"];

/** Specs covering fp32/bf16/fp16, paged and unpaged, 1-D int, 2-D float and no buffers. */
const CASES: Array<{ spec: string; batch: number; qLen: number; kvLen: number; partitionSize: number }> = [
  { spec: "paged_decode", batch: 3, qLen: 1, kvLen: 333, partitionSize: 128 },
  { spec: "document_mask", batch: 1, qLen: 67, kvLen: 129, partitionSize: 64 },
  { spec: "relative_bias", batch: 2, qLen: 67, kvLen: 129, partitionSize: 128 },
  { spec: "softcap", batch: 1, qLen: 8, kvLen: 333, partitionSize: 128 },
];

const graphs = new Map(exampleGraphs());
const scratch = scratchDir("harness");
const exes = new Map<string, Promise<string>>();
const exeFor = (spec: string) => {
  let exe = exes.get(spec);
  if (!exe) exes.set(spec, (exe = buildHarness(graphs.get(spec)!, scratch.dir, spec, PLAIN_FLAGS)));
  return exe;
};

beforeAll(() => {
  // Start every build at once; g++ runs them in parallel while the first test waits for its own.
  for (const c of CASES) void exeFor(c.spec).catch(() => {});
});
afterAll(() => scratch.remove());

function sums(values: Float64Array): { sum: number; absSum: number; nan: number } {
  let sum = 0;
  let absSum = 0;
  let nan = 0;
  for (const x of values) {
    if (Number.isNaN(x)) nan++;
    else {
      sum += x;
      absSum += Math.abs(x);
    }
  }
  return { sum, absSum, nan };
}

describe("standalone harness", () => {
  it.each(CASES)("$spec: inputs identical to generateInputs, checksums equal to the loaded kernel's (both templates)", async (c) => {
    const graph = graphs.get(c.spec)!;
    const exe = await exeFor(c.spec);
    const kernel = await kernelFor(graph, exampleCxxflags(c.spec));
    const seed = 7;
    const inputs = generateInputs(graph, seed, { batch: c.batch, qLen: c.qLen, kvLen: c.kvLen });
    const tensors = [inputs.query, inputs.key, inputs.value, inputs.pageTable, inputs.seqLens, ...graph.buffers.map((b) => inputs.buffers[b.name])];
    const expectedInputs = fnv1a(tensors.filter((t) => t !== undefined).map((t) => t.data));

    for (const template of ["attention", "decoding"] as const) {
      const run = await runHarness(exe, harnessArgs({ template, ...c, seed }));
      expect(run.exitCode, run.stderr).toBe(0);
      expect(run.fields.inputs_fnv1a).toBe(expectedInputs);

      const result = kernel.run(inputs, { template: template === "attention" ? "flash_attention" : "flash_decoding", partitionSize: c.partitionSize });
      const out = sums(toFloat64(result.out));
      expect(Number(run.fields.out_nan)).toBe(out.nan);
      // -O1 scalar code against the kernel's SIMD code: the same math in another order, so close but not bit-identical.
      expect(Math.abs(Number(run.fields.out_sum) - out.sum)).toBeLessThanOrEqual(1e-3 * out.absSum);
      expect(Math.abs(Number(run.fields.out_abs_sum) - out.absSum)).toBeLessThanOrEqual(1e-3 * out.absSum);
      if (graph.returnLse) {
        const lse = sums(toFloat64(result.lse!));
        expect(Math.abs(Number(run.fields.lse_sum) - lse.sum)).toBeLessThanOrEqual(1e-4 * lse.absSum);
      } else {
        expect(run.fields.lse_sum).toBeUndefined();
      }
    }
  });

  it.each(["paged_decode", "document_mask"])("%s: BSHD tensors (a token-major pool) give the BHSD call's bits, both templates", async (spec) => {
    const exe = await exeFor(spec);
    for (const template of ["attention", "decoding"] as const) {
      for (const ragged of [false, true]) {
        const base = { template, batch: 3, qLen: 13, kvLen: 200, partitionSize: 128, threads: 2, ragged };
        const [bhsd, bshd] = await Promise.all([runHarness(exe, harnessArgs(base)), runHarness(exe, harnessArgs({ ...base, layout: "bshd" }))]);
        expect(bhsd.exitCode, bhsd.stderr).toBe(0);
        expect(bshd.exitCode, bshd.stderr).toBe(0);
        expect(bshd.fields.layout).toBe("bshd");
        expect(bshd.fields.out_fnv1a, `${template} ragged=${ragged}`).toBe(bhsd.fields.out_fnv1a);
        expect(bshd.fields.lse_fnv1a).toBe(bhsd.fields.lse_fnv1a);
      }
    }
  });

  it("a run is reproducible: the same argv prints the same output hashes, another seed other inputs", async () => {
    const exe = await exeFor("paged_decode");
    const args = harnessArgs({ template: "decoding", batch: 2, qLen: 1, kvLen: 200, partitionSize: 128, threads: 2 });
    const [a, b] = [await runHarness(exe, args), await runHarness(exe, args)];
    expect(a.exitCode).toBe(0);
    expect(a.fields.out_fnv1a).toBe(b.fields.out_fnv1a);
    expect(a.fields.lse_fnv1a).toBe(b.fields.lse_fnv1a);
    const other = await runHarness(exe, [...args, "--seed", "2"]);
    expect(other.fields.inputs_fnv1a).not.toBe(a.fields.inputs_fnv1a);
    expect(other.fields.out_fnv1a).not.toBe(a.fields.out_fnv1a);
  });

  it.each([
    [["--template", "prefill"], "bad value 'prefill' for --template"],
    [["--q-len", "0"], "bad value '0' for --q-len"],
    [["--kv-len", "12x"], "bad value '12x' for --kv-len"],
    [["--partition-size", "100"], "--partition-size must be a multiple of the kv block size"],
    [["--bogus", "1"], "unknown option"],
    [["--batch"], "every option takes a value"],
    [["--num-pages", "0"], "bad value '0' for --num-pages"],
    [["--batch", "2", "--kv-len", "200", "--num-pages", "7"], "--num-pages is fewer than batch * ceil(kv_len / page size)"],
  ])("refuses %j with exit 2 and says why", async (args, message) => {
    const run = await runHarness(await exeFor("paged_decode"), args);
    expect(run.exitCode).toBe(2);
    expect(run.stderr).toContain(message);
    expect(run.stderr).toContain("usage: harness");
    expect(run.stdout).toBe("");
  });

  it("--num-pages N draws the inputs of the spec with a pool of N pages; an unpaged spec refuses it", async () => {
    const graph = graphs.get("paged_decode")!;
    // batch 2 of 200 positions in pages of 64: 8 pages needed, 11 in the pool (the spec has 64)
    const pool = 11;
    const pages = <T extends AttentionGraph["key"]>(t: T): T => ({ ...t, shape: [pool, t.shape[1], t.shape[2], t.shape[3]] });
    const small: AttentionGraph = { ...graph, key: pages(graph.key), value: pages(graph.value) };
    const inputs = generateInputs(small, 3, { batch: 2, qLen: 1, kvLen: 200 });
    expect(inputs.key.shape[0]).toBe(pool);
    const expected = fnv1a([inputs.query, inputs.key, inputs.value, inputs.pageTable!, inputs.seqLens!].map((t) => t.data));
    const run = await runHarness(await exeFor("paged_decode"), [...harnessArgs({ template: "decoding", batch: 2, qLen: 1, kvLen: 200, seed: 3 }), "--num-pages", String(pool)]);
    expect(run.exitCode, run.stderr).toBe(0);
    expect(run.fields.inputs_fnv1a).toBe(expected);
    const unpaged = await runHarness(await exeFor("document_mask"), ["--num-pages", "4"]);
    expect(unpaged.exitCode).toBe(2);
    expect(unpaged.stderr).toContain("--num-pages is for a paged spec");
  });

  it("is deterministic and never prints the spec's name or buffer names into the C++", () => {
    const graph: AttentionGraph = flexAttention({
      name: "zz_secret_name",
      query: { shape: [1, 2, 16, 16], dtype: "float32" },
      key: { shape: [1, 2, 16, 16], dtype: "float32" },
      value: { shape: [1, 2, 16, 16], dtype: "float32" },
      scoreMod: "score + zz_secret_buffer[h]",
      buffers: { zz_secret_buffer: { shape: [2], dtype: "float32" } },
      blockSize: [16, 16],
    });
    const text = renderHarness(graph);
    expect(renderHarness(graph)).toBe(text);
    expect(text).not.toContain("zz_secret");
    expect(text).toContain("int main(int argc, char** argv)");
  });

  it("minductor compile --emit harness writes renderHarness's text", async () => {
    const out = join(scratch.dir, "cli_harness.cpp");
    const printed: string[] = [];
    const io = { out: (s: string) => void printed.push(s), err: (s: string) => void printed.push(s), interactive: false };
    const code = await main(["node", "minductor", "compile", join(SPECS_DIR, "causal.json"), "--emit", "harness", "-o", out], io);
    expect(code, printed.join("")).toBe(0);
    expect(readFileSync(out, "utf8")).toBe(renderHarness(graphs.get("causal")!));
  });
});
