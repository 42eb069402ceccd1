import { readFileSync } from "node:fs";
import { join } from "node:path";
import type { Environment } from "nunjucks";
import type { AttentionGraph } from "../ir/graph.js";
import { kernelConstants } from "./kernelConstants.js";
import { templateEnvironment } from "./templateEnv.js";
import { templatesDir } from "./templatesDir.js";

/** A rendered kernel: the self-contained C++ source and the public C header of its ABI. */
export interface KernelSource {
  cpp: string;
  header: string;
}

/** minductor.h, pasted verbatim (never parsed as a template) so the .cpp needs no include path. */
let helpersHeader: string | undefined;

/**
 * Render the kernel library of a graph. `modsCode` is the C++ of its mods (`renderMods`), inserted after the
 * helpers and `md_args` and before the templates. Only numbers and fixed C tokens computed here reach the
 * templates; the graph's name and mod expressions are not read. Deterministic: same inputs, same bytes.
 * `env` is the process's template environment unless a test compares another (see templateEnv.ts).
 */
export function renderKernel(graph: AttentionGraph, modsCode: string, env: Environment = templateEnvironment()): KernelSource {
  const constants = kernelConstants(graph);
  helpersHeader ??= readFileSync(join(templatesDir(), "minductor.h"), "utf8");
  const header = env.render("kernel.h.njk", constants);
  const cpp = env.render("kernel.cpp.njk", { ...constants, header_text: helpersHeader, mods_code: modsCode });
  return { cpp, header };
}
