import { existsSync, mkdirSync, readdirSync, readFileSync, writeFileSync } from "node:fs";
import { basename, join } from "node:path";
import { renderEngine, renderModLibrary } from "../codegen/renderKernel.js";
import { renderModsCode } from "../codegen/renderMods.js";
import { compile } from "../index.js";
import { engineSourceHash } from "../kernelLibrary.js";
import { generateInputs, type ShapeOverrides } from "../io/generateInputs.js";
import { readNpy, writeNpy } from "../io/npy.js";
import type { AttentionGraph } from "../ir/graph.js";
import { parseSpec } from "../ir/spec.js";
import { type Comparison, compareOutputs, TOLERANCE } from "../reference/compareOutputs.js";
import { fromFloat64, toFloat64 } from "../runtime/tensor.js";
import { diffLines } from "./diffLines.js";

/**
 * Golden outputs protect a custom attention variant the way snapshot tests protect UI: `update` stores, for every
 * spec in a folder, the C++ that depends on the spec (its mod library), the hash of the engine source it ran on,
 * and the kernel's outputs on seeded inputs; `check` regenerates them and reports a changed mod library as a small
 * diff, a changed engine once (by its hash), and any numerical drift beyond the dtype's tolerance.
 */
export interface GoldenOptions {
  /** Where the snapshots live; default `<specDir>/__golden__`. */
  goldenDir?: string;
  /** Seed of the inputs; default 0. */
  seed?: number;
}

/** Golden runs use small shapes (lengths that are not multiples of the block sizes) so snapshots stay small. */
export function goldenShapes(graph: AttentionGraph): ShapeOverrides {
  const decode = graph.query.shape[2] <= 8;
  return {
    batch: Math.min(graph.query.shape[0], 2),
    qLen: decode ? graph.query.shape[2] : Math.min(graph.query.shape[2], 33),
    kvLen: graph.kvCache ? Math.min(graph.kvCache.pageSize * 3 - 5, 300) : Math.min(graph.key.shape[2], 161),
  };
}

export interface GoldenCaseResult {
  spec: string;
  status: "ok" | "updated" | "source-changed" | "engine-changed" | "drift" | "missing";
  /** A few lines of unified diff when the spec's C++ changed. */
  sourceDiff?: string;
  /** The engine hash stored and today's (first 12 hex digits each), when they differ. */
  engineChange?: { stored: string; now: string };
  out?: Comparison;
  lse?: Comparison;
}

const specFiles = (dir: string): string[] => readdirSync(dir).filter((f) => f.endsWith(".json")).sort();

/** Stands for the engine hash in a stored mod library, which the `.engine` file holds. */
const ENGINE_HASH_PLACEHOLDER = "(engine hash: see the .engine snapshot)";

/**
 * What a golden snapshot stores of a spec's C++: its mod library (the mods, the block-mask builder, the md_mods
 * table and the configuration's constants; the fixed prelude stays an #include), with the engine hash written
 * apart, so an engine change does not show as a diff of every spec.
 */
export function goldenSource(graph: AttentionGraph): { cpp: string; engineHash: string } {
  const engineHash = engineSourceHash(renderEngine(graph));
  const { cpp } = renderModLibrary(graph, renderModsCode(graph), engineHash);
  return { cpp: cpp.split(`"${engineHash}"`).join(`"${ENGINE_HASH_PLACEHOLDER}"`), engineHash };
}

const engineFileText = (hash: string) => `# sha256 of the engine source these snapshots were checked with\n${hash}\n`;
const storedEngineHash = (text: string) => /^[0-9a-f]{64}$/m.exec(text)?.[0] ?? "";

async function runGolden(graph: AttentionGraph, seed: number) {
  const kernel = await compile(graph);
  const inputs = generateInputs(graph, seed, goldenShapes(graph));
  return kernel.run(inputs);
}

/** Writes `<name>.cpp`, `<name>.engine`, `<name>.out.npy` (and `<name>.lse.npy`) for every spec in `specDir`. */
export async function goldenUpdate(specDir: string, options: GoldenOptions = {}): Promise<GoldenCaseResult[]> {
  const goldenDir = options.goldenDir ?? join(specDir, "__golden__");
  mkdirSync(goldenDir, { recursive: true });
  const results: GoldenCaseResult[] = [];
  for (const file of specFiles(specDir)) {
    const graph = parseSpec(readFileSync(join(specDir, file), "utf8"));
    const name = basename(file, ".json");
    const { cpp, engineHash } = goldenSource(graph);
    writeFileSync(join(goldenDir, `${name}.cpp`), cpp);
    writeFileSync(join(goldenDir, `${name}.engine`), engineFileText(engineHash));
    const result = await runGolden(graph, options.seed ?? 0);
    writeNpy(join(goldenDir, `${name}.out.npy`), fromFloat64(toFloat64(result.out), "float32", result.out.shape));
    if (result.lse) writeNpy(join(goldenDir, `${name}.lse.npy`), result.lse);
    results.push({ spec: name, status: "updated" });
  }
  return results;
}

/** Regenerates every spec's C++ and outputs and compares them with the stored snapshots. */
export async function goldenCheck(specDir: string, options: GoldenOptions = {}): Promise<GoldenCaseResult[]> {
  const goldenDir = options.goldenDir ?? join(specDir, "__golden__");
  const results: GoldenCaseResult[] = [];
  for (const file of specFiles(specDir)) {
    const graph = parseSpec(readFileSync(join(specDir, file), "utf8"));
    const name = basename(file, ".json");
    const cppPath = join(goldenDir, `${name}.cpp`);
    const outPath = join(goldenDir, `${name}.out.npy`);
    if (!existsSync(cppPath) || !existsSync(outPath)) {
      results.push({ spec: name, status: "missing" });
      continue;
    }
    const { cpp, engineHash } = goldenSource(graph);
    const stored = readFileSync(cppPath, "utf8");
    const sourceDiff = stored === cpp ? undefined : diffLines(stored, cpp, { context: 2, maxLines: 40 });
    const enginePath = join(goldenDir, `${name}.engine`);
    const storedEngine = existsSync(enginePath) ? storedEngineHash(readFileSync(enginePath, "utf8")) : "";
    const engineChange = storedEngine === engineHash ? undefined : { stored: storedEngine.slice(0, 12) || "(none)", now: engineHash.slice(0, 12) };
    const result = await runGolden(graph, options.seed ?? 0);
    const tol = TOLERANCE[graph.query.dtype];
    const want = readNpy(outPath);
    const out = sameShape(want.shape, result.out.shape)
      ? compareOutputs(toFloat64(result.out), toFloat64(want), tol)
      : { maxAbs: Infinity, maxRel: Infinity, failures: Infinity, nonFiniteMismatches: 0, ok: false };
    const lsePath = join(goldenDir, `${name}.lse.npy`);
    const lse = result.lse && existsSync(lsePath) ? compareOutputs(toFloat64(result.lse), toFloat64(readNpy(lsePath)), TOLERANCE.float32) : undefined;
    const drift = !out.ok || (lse !== undefined && !lse.ok) || Boolean(result.lse) !== existsSync(lsePath);
    // Drift says the most (the numbers moved); then a change of the spec's own C++; then one of the engine.
    const status = drift ? "drift" : sourceDiff ? "source-changed" : engineChange ? "engine-changed" : "ok";
    results.push({ spec: name, status, sourceDiff, ...(engineChange ? { engineChange } : {}), out, lse });
  }
  return results;
}

const sameShape = (a: readonly number[], b: readonly number[]) => a.length === b.length && a.every((x, i) => x === b[i]);
