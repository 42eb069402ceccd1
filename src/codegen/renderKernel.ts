import { readFileSync } from "node:fs";
import { join } from "node:path";
import type { Environment } from "nunjucks";
import type { AttentionGraph } from "../ir/graph.js";
import { engineConstants, kernelConstants, modsConstants } from "./kernelConstants.js";
import { modHelpersText } from "./renderMods.js";
import { templateEnvironment } from "./templateEnv.js";
import { templatesDir } from "./templatesDir.js";

/** A rendered library: its C++ source and the public C header of its ABI. */
export interface KernelSource {
  cpp: string;
  header: string;
  /** A fixed header the source includes first, written beside it (the compile stage may precompile it). */
  prelude?: { name: string; text: string };
  /**
   * Translation units the source splits into by `-DMD_UNIT=1..units` (absent: one); without MD_UNIT it is whole. The
   * compile stage may build them at once and link them (src/compile/buildEntry.ts).
   */
  units?: number;
}

/** An engine splits into flash decoding and flash attention with the rest (engine.cpp.njk). */
const ENGINE_UNITS = 2;

/**
 * The prelude both libraries include first: md_base.h, minductor.h and mod_helpers.h, the same text for every graph and
 * configuration, so one precompiled header serves every engine and mod library built with the same flags.
 */
export const PRELUDE_NAME = "md_prelude.h";

/**
 * The C++ runtime headers, pasted verbatim (never parsed as templates) so a generated source needs no include path:
 * md_base.h then minductor.h (whose include of md_base.h is dropped).
 */
const pasted = new Map<string, string>();
function headerText(names: readonly string[]): string {
  const key = names.join(",");
  let text = pasted.get(key);
  if (text === undefined) {
    text = names
      .map((name) => readFileSync(join(templatesDir(), name), "utf8").replace(/^#include "md_base\.h"\n/m, ""))
      .join("\n");
    pasted.set(key, text);
  }
  return text;
}
const ENGINE_HEADERS = ["md_base.h", "minductor.h"] as const;
let preludeText: string | undefined;
function prelude(): { name: string; text: string } {
  preludeText ??= `${headerText(ENGINE_HEADERS)}\n${modHelpersText()}`;
  return { name: PRELUDE_NAME, text: preludeText };
}

/**
 * The self-contained kernel library of a graph: engine and mods in one source that exports every entry point of
 * docs/abi.md, for `--emit cpp`, the harness and embedding. `modsCode` is the C++ of its mods (`renderMods`). Only
 * numbers and fixed C tokens computed here reach the templates; the graph's name and mod expressions are not read.
 * Deterministic: same inputs, same bytes. `env` is the process's template environment unless a test compares another.
 */
export function renderKernel(graph: AttentionGraph, modsCode: string, env: Environment = templateEnvironment()): KernelSource {
  const constants = { ...kernelConstants(graph), part: "kernel", engine_hash: "" };
  const header = env.render("kernel.h.njk", constants);
  const cpp = env.render("kernel.cpp.njk", { ...constants, header_text: headerText(ENGINE_HEADERS), mods_code: modsCode });
  return { cpp, header };
}

/**
 * The engine library of a graph's configuration: the templates without the mods, which it calls through the table
 * of a mod library (`renderModLibrary`). Every graph of the same configuration renders the same bytes.
 */
export function renderEngine(graph: AttentionGraph, env: Environment = templateEnvironment()): KernelSource {
  const constants = { ...engineConstants(graph), part: "engine" };
  const header = env.render("kernel.h.njk", constants);
  const cpp = env.render("engine_library.cpp.njk", { ...constants, prelude_name: PRELUDE_NAME });
  return { cpp, header, prelude: prelude(), units: ENGINE_UNITS };
}

/**
 * The mod library of a graph: its mods, its block-mask builder and the `md_mods` table, for the engine whose source
 * hashes to `engineHash` (sha256, hex). Small, so a new mod compiles in a fraction of a second; most of what is left
 * is its prelude (md_base.h, mod_helpers.h and the system headers), which it includes first so that it can be
 * precompiled once. `modsCode` is `renderModsCode(graph)`: the mods without the helpers, which the prelude has.
 */
export function renderModLibrary(
  graph: AttentionGraph,
  modsCode: string,
  engineHash: string,
  env: Environment = templateEnvironment(),
): KernelSource {
  if (!/^[0-9a-f]{64}$/.test(engineHash)) throw new RangeError(`renderModLibrary: engineHash must be a sha256 in hex, got ${JSON.stringify(engineHash)}`);
  const constants = { ...engineConstants(graph), ...modsConstants(graph), part: "mods", engine_hash: engineHash };
  const header = env.render("kernel.h.njk", constants);
  const cpp = env.render("mods_library.cpp.njk", { ...constants, prelude_name: PRELUDE_NAME, mods_code: modsCode });
  return { cpp, header, prelude: prelude() };
}
