/**
 * The libraries behind a kernel. What depends only on the configuration (dtype, heads, head dims, block, tile and
 * page sizes, the scale; the ISA through -march=native) is the engine, built once per configuration and cached; what
 * depends on the graph (score_mod, mask_mod, the buffers) is a small mod library built for that engine. The runtime
 * loads both and passes the mod library's table to the engine on every call (docs/abi.md).
 */
import { type KernelSource, renderEngine, renderModLibrary } from "./codegen/renderKernel.js";
import { renderModsCode } from "./codegen/renderMods.js";
import { rendererIdentity } from "./codegen/rendererIdentity.js";
import {
  type CompiledLibrary,
  type CompileOptions,
  buildTarget,
  compileSource,
  entryChecksums,
  findIndexed,
  kernelIndexKey,
  recordIndexed,
  sha256,
  sourceIdentity,
  splitBuilds,
} from "./compile/index.js";
import { Expr } from "./ir/expr.js";
import type { AttentionGraph } from "./ir/graph.js";
import { type NativeLibrary, openSplitLibrary } from "./runtime/nativeLibrary.js";

/** The two cached libraries of a kernel; `key`, `soPath` and `sourcePath` are the mod library's. */
export interface KernelLibrary extends CompiledLibrary {
  engine: CompiledLibrary;
  mods: CompiledLibrary;
  /** sha256 of the engine's source, which the mod library names in `md_mods.engine_hash`. */
  engineHash: string;
}

/**
 * Renders, builds (or finds in the cache) and loads the engine and the mod library of a graph. The mod library needs
 * only the engine's source hash, so on a cold configuration both compile at once; a cached engine leaves only the
 * mod library to build. A cached mod library that names another engine is rebuilt (`compileSource` checks it).
 */
export async function buildKernelLibrary(graph: AttentionGraph, options: CompileOptions = {}): Promise<{ library: KernelLibrary; native: NativeLibrary }> {
  const started = performance.now();
  const { engine, mods, engineHash } = await buildKernelFiles(graph, options);
  const native = openSplitLibrary(engine.soPath, mods.soPath, engineHash);
  const library: KernelLibrary = {
    ...mods,
    fromCache: worst(engine.fromCache, mods.fromCache),
    compileMs: performance.now() - started,
    engine,
    mods,
    engineHash,
  };
  return { library, native };
}

/**
 * The identity of an engine's source: its .cpp and the prelude it includes (md_base.h, minductor.h, mod_helpers.h),
 * so that a change to either is another engine, which mod libraries and golden snapshots name (sourceIdentity).
 */
export function engineSourceHash(engine: KernelSource): string {
  const prelude = engine.prelude ? { name: engine.prelude.name, checksum: sha256(engine.prelude.text) } : undefined;
  return sourceIdentity(sha256(engine.cpp), prelude);
}

/**
 * Renders and builds (or finds in the cache) the engine and the mod library of a graph without loading them: what
 * `buildKernelLibrary` loads, for callers that only fill the cache ahead of a later `compile()`.
 */
export async function buildKernelFiles(
  graph: AttentionGraph,
  options: CompileOptions = {},
): Promise<{ engine: CompiledLibrary; mods: CompiledLibrary; engineHash: string }> {
  // A kernel built before, by this code for this graph and target, is found without rendering (compile/kernelIndex.ts).
  const target = await buildTarget(options);
  const indexKey = kernelIndexKey(renderedFrom(graph), target);
  const indexed = await findIndexed(target, indexKey, options.onProgress);
  if (indexed) return indexed;
  const engineSource = renderEngine(graph);
  const engineHash = engineSourceHash(engineSource);
  const modsSource = renderModLibrary(graph, renderModsCode(graph), engineHash);
  // Both settle before a failure is reported, so no build of this call is still running when the caller hears of it.
  // Both include the same prelude. An engine built in units keeps every core busy: the prelude, when it has never been
  // precompiled with these flags, then precompiles after this returns instead of making the first build wait for it.
  // Its second unit waits for the mod library's build (compileSource's unitsAfter says why).
  const precompileLater = splitBuilds();
  const mods = compileSource(modsSource.cpp, { ...options, header: modsSource.header, prelude: modsSource.prelude, requires: [engineHash], precompileLater });
  const engine = compileSource(engineSource.cpp, { ...options, header: engineSource.header, prelude: engineSource.prelude, units: engineSource.units, precompileLater, unitsAfter: mods });
  const [engineBuild, modsBuild] = await Promise.allSettled([engine, mods]);
  if (engineBuild.status === "rejected") throw engineBuild.reason;
  if (modsBuild.status === "rejected") throw modsBuild.reason;
  const built = { engine: engineBuild.value, mods: modsBuild.value, engineHash };
  await recordIndexed(target, indexKey, built, {
    engine: entryChecksums({ key: built.engine.key, source: engineSource.cpp, header: engineSource.header, prelude: engineSource.prelude }),
    mods: entryChecksums({ key: built.mods.key, source: modsSource.cpp, header: modsSource.header, prelude: modsSource.prelude, requires: [engineHash] }),
  });
  return built;
}

/**
 * Everything a kernel's two sources are rendered from: the graph (its expressions by their structural hashes) and
 * the renderer's own identity.
 */
function renderedFrom(graph: AttentionGraph): string {
  return JSON.stringify([rendererIdentity(), graph], (_key, value: unknown) => (value instanceof Expr ? value.hash : value));
}

/** "compiled" if either library was, else "disk" if either came from disk, else "memory". */
function worst(a: CompiledLibrary["fromCache"], b: CompiledLibrary["fromCache"]): CompiledLibrary["fromCache"] {
  const order = ["memory", "disk", "compiled"] as const;
  return order[Math.max(order.indexOf(a), order.indexOf(b))];
}
