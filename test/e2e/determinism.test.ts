/**
 * Same inputs, same thread count: bit-identical outputs, run after run, for both templates. Neither template may
 * let OpenMP's scheduling decide a reduction order (which thread takes which task must not change any sum), so
 * three runs, synchronous and on koffi's worker thread, agree to the last bit of out and lse. The example specs build
 * as the run has them (test/helpers/fastBuilds.ts, exampleCxxflags): paged_decode at the default flags in `npm test`.
 */
import { readFileSync } from "node:fs";
import { join } from "node:path";
import { describe, expect, it } from "vitest";
import type { AttentionGraph } from "../../src/ir/graph.js";
import { parseSpec } from "../../src/ir/spec.js";
import { generateInputs } from "../../src/io/generateInputs.js";
import type { KernelOutputs } from "../../src/runtime/prepareCall.js";
import { kernelFor } from "../helpers/checkKernel.js";
import { exampleCxxflags } from "../helpers/fastBuilds.js";

// A call wakes only the threads its work pays for, so these small shapes would run on one thread whatever they ask
// for: every call here takes all of them (the engine reads this once, at this process's first call).
process.env.MINDUCTOR_WAKE_EVERY_THREAD = "1";

const spec = (name: string): AttentionGraph =>
  parseSpec(readFileSync(join(import.meta.dirname, "..", "..", "examples", "specs", `${name}.json`), "utf8"));

/** Shapes where both templates do real work: several q blocks, several partitions, tails, ragged paged lengths. */
const CASES: Array<{ spec: string; batch: number; qLen: number; kvLen: number; partitionSize: number }> = [
  { spec: "causal", batch: 2, qLen: 67, kvLen: 129, partitionSize: 64 },
  { spec: "softcap", batch: 1, qLen: 8, kvLen: 333, partitionSize: 128 },
  { spec: "paged_decode", batch: 3, qLen: 1, kvLen: 333, partitionSize: 128 },
  { spec: "gqa_decode", batch: 1, qLen: 1, kvLen: 700, partitionSize: 128 },
];

/** Inputs per case, generated once: the paged pools hold millions of seeded normals. */
const inputsOf = new Map<(typeof CASES)[number], ReturnType<typeof generateInputs>>();

const bytes = (r: KernelOutputs): Buffer[] =>
  [r.out.data, ...(r.lse ? [r.lse.data] : [])].map((d) => Buffer.from(d.buffer, d.byteOffset, d.byteLength));

describe("bit-identical outputs across runs at a fixed thread count", () => {
  for (const c of CASES) {
    for (const template of ["flash_attention", "flash_decoding"] as const) {
      it.each([2, 1])(`${c.spec} q=${c.qLen} kv=${c.kvLen} ${template}, %i thread(s)`, async (numThreads) => {
        const graph = spec(c.spec);
        const kernel = await kernelFor(graph, exampleCxxflags(c.spec));
        let inputs = inputsOf.get(c);
        if (!inputs) inputsOf.set(c, (inputs = generateInputs(graph, 11, { batch: c.batch, qLen: c.qLen, kvLen: c.kvLen })));
        const options = { template, partitionSize: c.partitionSize, numThreads };
        const runs = [kernel.run(inputs, options), kernel.run(inputs, options), await kernel.runAsync(inputs, options)];
        const [first, ...rest] = runs.map(bytes);
        // A run that produced nothing would be trivially identical.
        expect(first[0].some((b) => b !== 0)).toBe(true);
        for (const [i, other] of rest.entries()) {
          other.forEach((buf, k) => expect(buf.equals(first[k]), `run ${i + 2} differs from run 1 in ${k === 0 ? "out" : "lse"}`).toBe(true));
        }
      });
    }
  }

  // Not required by the ABI, but true of both templates today and worth knowing when it stops being true: with the
  // partition size fixed, the thread count changes only who computes a task, never how it is reduced.
  it.each(["flash_attention", "flash_decoding"] as const)("paged_decode %s: the same bits with 1, 2 and 3 threads", async (template) => {
    const c = CASES[2];
    const graph = spec(c.spec);
    const kernel = await kernelFor(graph, exampleCxxflags(c.spec));
    let inputs = inputsOf.get(c);
    if (!inputs) inputsOf.set(c, (inputs = generateInputs(graph, 11, { batch: c.batch, qLen: c.qLen, kvLen: c.kvLen })));
    const [one, ...more] = [1, 2, 3].map((numThreads) => bytes(kernel.run(inputs, { template, partitionSize: c.partitionSize, numThreads })));
    for (const other of more) other.forEach((buf, k) => expect(buf.equals(one[k])).toBe(true));
  });
});
