import { readFileSync } from "node:fs";
import { join } from "node:path";
import nunjucks from "nunjucks";
import type { AttentionGraph } from "../ir/graph.js";
import { kernelConstants } from "./kernelConstants.js";
import { templatesDir } from "./templatesDir.js";

/** A rendered kernel: the self-contained C++ source and the public C header of its ABI. */
export interface KernelSource {
  cpp: string;
  header: string;
}

interface TemplateFiles {
  env: nunjucks.Environment;
  /** minductor.h, pasted verbatim (never parsed as a template) so the .cpp needs no include path. */
  helpersHeader: string;
}

let files: TemplateFiles | undefined;

function templateFiles(): TemplateFiles {
  if (!files) {
    const dir = templatesDir();
    const env = new nunjucks.Environment(new nunjucks.FileSystemLoader(dir), {
      autoescape: false,
      throwOnUndefined: true,
      trimBlocks: true,
      lstripBlocks: true,
    });
    files = { env, helpersHeader: readFileSync(join(dir, "minductor.h"), "utf8") };
  }
  return files;
}

/**
 * Render the kernel library of a graph. `modsCode` is the C++ of its mods (`renderMods`), inserted after the
 * helpers and `md_args` and before the templates. Only numbers and fixed C tokens computed here reach the
 * templates; the graph's name and mod expressions are not read. Deterministic: same inputs, same bytes.
 */
export function renderKernel(graph: AttentionGraph, modsCode: string): KernelSource {
  const constants = kernelConstants(graph);
  const { env, helpersHeader } = templateFiles();
  const header = env.render("kernel.h.njk", constants);
  const cpp = env.render("kernel.cpp.njk", { ...constants, header_text: helpersHeader, mods_code: modsCode });
  return { cpp, header };
}
