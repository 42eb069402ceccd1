import { appendFileSync, cpSync, mkdtempSync, readFileSync, readdirSync, writeFileSync } from "node:fs";
import { createRequire } from "node:module";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { describe, expect, it } from "vitest";
import { benchSpec } from "../../src/bench/benchSpecs.js";
import { precompiledModule, writePrecompiledTemplates } from "../../src/codegen/precompileTemplates.js";
import { renderHarness } from "../../src/codegen/renderHarness.js";
import { renderKernel } from "../../src/codegen/renderKernel.js";
import { renderMods } from "../../src/codegen/renderMods.js";
import { type PrecompiledTemplates, createTemplateEnvironment } from "../../src/codegen/templateEnv.js";
import { templatesDir } from "../../src/codegen/templatesDir.js";
import { parseSpec } from "../../src/ir/spec.js";

const root = join(import.meta.dirname, "..", "..");
const require = createRequire(import.meta.url);

/** Evaluates a generated module the way require would, without writing it anywhere. */
function evaluate(moduleText: string): PrecompiledTemplates {
  const module = { exports: {} as PrecompiledTemplates };
  new Function("module", "exports", moduleText)(module, module.exports);
  return module.exports;
}

/** A private copy of src/templates, so a test can edit templates without touching the package's. */
function templatesCopy(): string {
  const dir = mkdtempSync(join(tmpdir(), "minductor-templates-"));
  cpSync(templatesDir(), dir, { recursive: true });
  return dir;
}

const specs = [
  ...readdirSync(join(root, "examples", "specs"))
    .filter((f) => f.endsWith(".json"))
    .sort()
    .map((f) => JSON.parse(readFileSync(join(root, "examples", "specs", f), "utf8")) as Record<string, unknown>),
  benchSpec({ dtype: "bfloat16", hq: 32, hkv: 8, headDim: 128, causal: false }),
  benchSpec({ dtype: "float16", hq: 32, hkv: 2, headDim: 256, causal: true }),
];

describe("templates precompiled at build time", () => {
  it("render the same bytes as the templates compiled from the files, for every example spec", () => {
    const dir = templatesDir();
    const precompiled = createTemplateEnvironment(dir, evaluate(precompiledModule(dir)));
    const compiled = createTemplateEnvironment(dir, undefined);
    expect([precompiled.precompiled, compiled.precompiled]).toEqual([true, false]);
    for (const spec of specs) {
      const graph = parseSpec(spec);
      const mods = renderMods(graph);
      // The harness embeds kernel.cpp; the header is rendered apart.
      expect(renderHarness(graph, precompiled.env), String(spec.name)).toBe(renderHarness(graph, compiled.env));
      expect(renderKernel(graph, mods, precompiled.env).header, String(spec.name)).toBe(renderKernel(graph, mods, compiled.env).header);
    }
  });

  it("are not used once a template was edited, added or compiled with other options: the files are compiled instead", () => {
    const dir = templatesCopy();
    const built = evaluate(precompiledModule(dir));
    expect(createTemplateEnvironment(dir, built).precompiled).toBe(true);

    appendFileSync(join(dir, "kernel.h.njk"), "// edited after the build\n");
    const edited = createTemplateEnvironment(dir, built);
    expect(edited.precompiled).toBe(false);
    expect(renderKernel(parseSpec(specs[0]), "", edited.env).header).toMatch(/\/\/ edited after the build\n$/);

    const rebuilt = evaluate(precompiledModule(dir));
    expect(createTemplateEnvironment(dir, rebuilt).precompiled).toBe(true);
    writeFileSync(join(dir, "extra.njk"), "{{ 1 }}\n");
    expect(createTemplateEnvironment(dir, rebuilt).precompiled).toBe(false);

    const current = evaluate(precompiledModule(dir));
    expect(createTemplateEnvironment(dir, { ...current, key: current.key.replace('"trimBlocks":true', '"trimBlocks":false') }).precompiled).toBe(false);
  });

  it("are written as a CommonJS module that require loads", () => {
    const dir = templatesCopy();
    const path = writePrecompiledTemplates(dir, join(mkdtempSync(join(tmpdir(), "minductor-precompiled-")), "precompiledTemplates.cjs"));
    expect(createTemplateEnvironment(dir, require(path) as PrecompiledTemplates).precompiled).toBe(true);
  });
});
