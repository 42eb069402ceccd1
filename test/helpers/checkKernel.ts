import { expect } from "vitest";
import type { AttentionGraph } from "../../src/ir/graph.js";
import { compile, type Kernel, type RunOptions } from "../../src/index.js";
import { generateInputs, type ShapeOverrides } from "../../src/io/generateInputs.js";
import { compareOutputs, TOLERANCE } from "../../src/reference/compareOutputs.js";
import { referenceAttention } from "../../src/reference/referenceAttention.js";
import { toFloat64 } from "../../src/runtime/tensor.js";

const kernels = new Map<string, Promise<Kernel>>();

/**
 * Compiles once per graph and flags within a test file (the disk cache shares kernels across files and runs).
 * `cxxflags` absent: the default flags (-O3), or MINDUCTOR_CXXFLAGS where the file set it; the example specs keep
 * them, and files that check configurations of their own pass FAST_BUILD_CXXFLAGS (test/helpers/fastBuilds.ts).
 */
export function kernelFor(graph: AttentionGraph, cxxflags?: readonly string[]): Promise<Kernel> {
  const key = JSON.stringify([graph.query, graph.key, graph.value, graph.scale, graph.scoreMod.hash, graph.maskMod.hash, graph.buffers, graph.blockSize, graph.kvCache, graph.returnLse, cxxflags]);
  let k = kernels.get(key);
  if (!k) kernels.set(key, (k = compile(graph, cxxflags ? { cxxflags: [...cxxflags] } : {})));
  return k;
}

/**
 * Starts compiling every graph a test file will use, so the builds run side by side (one g++ per core) while the
 * first tests wait for theirs; most of a cold suite is g++. A failed build surfaces in the test that uses it.
 */
export function prebuild(graphs: readonly AttentionGraph[], cxxflags?: readonly string[]): void {
  for (const graph of graphs) kernelFor(graph, cxxflags).catch(() => {});
}

/**
 * Runs the kernel on seeded inputs and compares out (and lse) with the float64 reference within the dtype's
 * tolerance (src/reference/compareOutputs.ts); returns the outputs for further checks.
 */
export async function expectMatchesReference(
  graph: AttentionGraph,
  options: { seed?: number; shapes?: ShapeOverrides; run?: RunOptions; label?: string; cxxflags?: readonly string[] } = {},
) {
  const kernel = await kernelFor(graph, options.cxxflags);
  const inputs = generateInputs(graph, options.seed ?? 1, options.shapes);
  const result = kernel.run(inputs, options.run);
  const ref = referenceAttention(graph, inputs);
  const label = options.label ?? `${graph.name} ${JSON.stringify(options.shapes ?? {})} ${JSON.stringify(options.run ?? {})}`;
  const out = compareOutputs(toFloat64(result.out), ref.out, TOLERANCE[graph.query.dtype]);
  expect(out.ok, `${label}: out ${JSON.stringify(out)}`).toBe(true);
  if (graph.returnLse) {
    const lse = compareOutputs(toFloat64(result.lse!), ref.lse, TOLERANCE.float32);
    expect(lse.ok, `${label}: lse ${JSON.stringify(lse)}`).toBe(true);
  }
  return { result, ref, inputs, kernel };
}
