import { resolve } from "node:path";
import { type Command, InvalidArgumentError } from "commander";
import { pruneCache } from "../../compile/cacheMaintenance.js";
import { type CompiledLibrary, clearCache, defaultCacheDir, listCache } from "../../compile/index.js";
import { usableCacheDir } from "../../compile/usableCacheDir.js";
import { compile } from "../../index.js";
import { SpecError } from "../../ir/errors.js";
import type { AttentionGraph } from "../../ir/graph.js";
import { UserError } from "../errors.js";
import { type CliIO, printJson } from "../io.js";
import { loadSpec } from "../loadSpec.js";
import { overrideDType } from "../overrideDType.js";
import { withProgress } from "../progress.js";

export function registerCache(program: Command, io: CliIO): void {
  const cache = program.command("cache").description("inspect, prune or clear the compiled-kernel cache ($MINDUCTOR_CACHE_DIR or ~/.cache/minductor)");
  cache
    .command("path")
    .description("print the cache directory")
    .option("--json", "print machine-readable JSON")
    .action((opts: { json?: boolean }) => (opts.json ? printJson(io, { path: defaultCacheDir() }) : io.out(`${defaultCacheDir()}\n`)));
  cache
    .command("ls")
    .description("list cached kernels, newest first")
    .option("--json", "print machine-readable JSON")
    .action(async (opts: { json?: boolean }) => {
      const entries = await listCache();
      if (opts.json) return printJson(io, entries);
      for (const e of entries) io.out(`${e.key}  ${(e.bytes / 1024).toFixed(0).padStart(6)} KiB  ${e.mtime.toISOString()}\n`);
      io.out(`${entries.length} kernel(s) in ${defaultCacheDir()}\n`);
    });
  cache
    .command("clear")
    .description("remove every cached kernel")
    .option("--json", "print machine-readable JSON")
    .action(async (opts: { json?: boolean }) => {
      const removed = await clearCache();
      if (opts.json) printJson(io, { removed });
      else io.out(`removed ${removed} cached kernel(s) from ${defaultCacheDir()}\n`);
    });
  cache
    .command("prune")
    .description("remove least-recently-used kernels until the cache fits in a size (kernels in use by a running process stay)")
    .requiredOption("--max-size <size>", "the size to fit in: bytes, or a number with K, M or G (powers of 1024), e.g. 500M", parseByteSize)
    .option("--json", "print machine-readable JSON")
    .action(async (opts: { maxSize: number; json?: boolean }) => {
      const result = await pruneCache(opts.maxSize);
      if (opts.json) return printJson(io, result);
      for (const e of result.removed) io.out(`removed ${e.key}  ${formatBytes(e.bytes).padStart(9)}  last used ${e.lastUsed.toISOString()}\n`);
      for (const e of result.kept) io.out(`kept    ${e.key}  ${formatBytes(e.bytes).padStart(9)}  ${e.reason}\n`);
      const pch = result.precompiledRemoved;
      if (pch.count > 0) io.out(`removed ${pch.count} precompiled prelude(s) (${formatBytes(pch.bytes)}); rebuilt in about a second when next needed\n`);
      const removedBytes = result.bytesBefore - result.bytesAfter;
      io.out(
        `removed ${result.removed.length} cached kernel(s) (${formatBytes(removedBytes)}) from ${defaultCacheDir()}; ` +
          `${formatBytes(result.bytesAfter)} left of at most ${formatBytes(result.maxBytes)}\n`,
      );
      if (result.bytesAfter > result.maxBytes) {
        io.err(`minductor: the cache is still over --max-size: ${result.kept.length} kernel(s) that running processes use were kept\n`);
      }
    });
  cache
    .command("warm")
    .description("build (or find) the engines and mod libraries of specs ahead of time, so a deployment's first call does not wait for g++")
    .argument("<spec...>", "spec JSON files")
    .option("--dtype <dtype>", "warm for this q/k/v dtype instead of the spec's; repeat it or separate with commas for several", collectList, [])
    .option("--json", "print machine-readable JSON")
    .addHelpText("after", "\nExamples:\n  minductor cache warm examples/specs/*.json\n  minductor cache warm examples/specs/causal.json --dtype float32,bfloat16")
    .action(async (specPaths: string[], opts: { dtype: string[]; json?: boolean }) => {
      const report = await warmCache(io, specPaths, opts.dtype);
      if (opts.json) return printJson(io, report);
      const width = Math.max(...report.kernels.map((k) => k.name.length));
      const engineWord = howObtained(report.kernels.map((k) => k.engine));
      const modsWord = howObtained(report.kernels.map((k) => k.mods));
      report.kernels.forEach((k, i) => {
        io.out(`${k.name.padEnd(width)}  ${k.dtype.padEnd(8)}  engine ${k.engine.key} ${engineWord[i].padEnd(8)}  mods ${k.mods.key} ${modsWord[i]}\n`);
      });
      const t = report.totals;
      io.out(
        `warmed ${t.kernels} kernel(s) in ${(report.wallMs / 1000).toFixed(1)} s: ${t.engines} engine(s), ${t.enginesCompiled} compiled; ` +
          `${t.modLibraries} mod librar${t.modLibraries === 1 ? "y" : "ies"}, ${t.modLibrariesCompiled} compiled (cache ${report.cacheDir})\n`,
      );
    });
}

/**
 * How each line's library was obtained, in the text output: the first line with a key says "compiled" when g++ built
 * it in this run (whichever line's build that was) and "cached" otherwise; later lines with the same key say
 * "shared" (mostly an engine that several specs of one configuration use).
 */
function howObtained(libraries: readonly WarmedLibrary[]): string[] {
  const compiled = new Set(libraries.filter((l) => l.fromCache === "compiled").map((l) => l.key));
  const seen = new Set<string>();
  return libraries.map((l) => {
    if (seen.has(l.key)) return "shared";
    seen.add(l.key);
    return compiled.has(l.key) ? "compiled" : "cached";
  });
}

export interface WarmedLibrary {
  /** The first 12 hex digits of the cache key. */
  key: string;
  fromCache: CompiledLibrary["fromCache"];
}

export interface WarmReport {
  /** Where the libraries are: $MINDUCTOR_CACHE_DIR etc. as given, or the temp-dir fallback when that cannot be written. */
  cacheDir: string;
  kernels: Array<{ spec: string; name: string; dtype: string; engine: WarmedLibrary; mods: WarmedLibrary }>;
  /** Libraries counted once per distinct key; a library is "compiled" when g++ ran for it in this run. */
  totals: { kernels: number; engines: number; enginesCompiled: number; modLibraries: number; modLibrariesCompiled: number };
  wallMs: number;
}

/**
 * Loads every spec (in every dtype asked for) before anything compiles, then compiles them all in one `compile()`
 * call, so up to one g++ per core runs and a configuration shared by several specs builds its engine once.
 */
async function warmCache(io: CliIO, specPaths: readonly string[], dtypes: readonly string[]): Promise<WarmReport> {
  const targets: Array<{ spec: string; graph: AttentionGraph }> = [];
  for (const spec of specPaths) {
    const graph = loadNamedSpec(spec);
    for (const dtype of dtypes.length > 0 ? dtypes : [undefined]) targets.push({ spec, graph: overrideDType(graph, dtype) });
  }
  const started = performance.now();
  // The cast: compile()'s single-spec overload comes first and accepts any object, an array included.
  const graphs: readonly AttentionGraph[] = targets.map((t) => t.graph);
  const kernels = await withProgress(io, `warming ${targets.length} kernel(s)`, () => compile(graphs, { tuning: false }));
  const wallMs = Math.round(performance.now() - started);
  const libraries = (pick: "engine" | "mods") => {
    const byKey = new Map<string, boolean>();
    for (const k of kernels) {
      const lib = k.library[pick];
      byKey.set(lib.key, (byKey.get(lib.key) ?? false) || lib.fromCache === "compiled");
    }
    return { distinct: byKey.size, compiled: [...byKey.values()].filter(Boolean).length };
  };
  const engines = libraries("engine");
  const mods = libraries("mods");
  const short = (lib: CompiledLibrary): WarmedLibrary => ({ key: lib.key.slice(0, 12), fromCache: lib.fromCache });
  // Where the libraries went: the requested dir as given, or the private fallback when it cannot be written (compile warns).
  const requested = defaultCacheDir();
  const used = await usableCacheDir(resolve(requested));
  return {
    cacheDir: used === resolve(requested) ? requested : used,
    kernels: kernels.map((k, i) => ({ spec: targets[i].spec, name: k.graph.name, dtype: k.graph.query.dtype, engine: short(k.library.engine), mods: short(k.library.mods) })),
    totals: { kernels: kernels.length, engines: engines.distinct, enginesCompiled: engines.compiled, modLibraries: mods.distinct, modLibrariesCompiled: mods.compiled },
    wallMs,
  };
}

/** `loadSpec`, with the file named in a spec error: among several specs, the field alone does not say which. */
function loadNamedSpec(path: string): AttentionGraph {
  try {
    return loadSpec(path);
  } catch (e) {
    if (e instanceof SpecError) throw new UserError(`${path}: ${e.message}`);
    throw e;
  }
}

/** A repeatable option whose values may also be comma-separated: `--dtype float32,bfloat16 --dtype float16`. */
function collectList(value: string, previous: string[]): string[] {
  return [...previous, ...value.split(",").map((v) => v.trim()).filter((v) => v !== "")];
}

const SIZE_UNITS: Readonly<Record<string, number>> = { "": 1, K: 1024, M: 1024 ** 2, G: 1024 ** 3 };

/** `--max-size`: bytes, or a number with a K/M/G suffix (powers of 1024, as du and sort -h), an optional B or iB. */
export function parseByteSize(text: string): number {
  const match = /^\s*(\d+(?:\.\d+)?)\s*(?:([KMG])(?:i?B)?|B)?\s*$/i.exec(text);
  const bytes = match ? Math.floor(Number(match[1]) * SIZE_UNITS[(match[2] ?? "").toUpperCase()]) : NaN;
  if (!Number.isSafeInteger(bytes)) {
    throw new InvalidArgumentError(`expected a size such as 500000, 800K, 10M or 2G, got '${text}'`);
  }
  return bytes;
}

function formatBytes(bytes: number): string {
  if (bytes < 1024) return `${bytes} B`;
  const [value, unit] = bytes < 1024 ** 2 ? [bytes / 1024, "KiB"] : bytes < 1024 ** 3 ? [bytes / 1024 ** 2, "MiB"] : [bytes / 1024 ** 3, "GiB"];
  return `${value.toFixed(1)} ${unit}`;
}
