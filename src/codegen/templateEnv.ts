/**
 * The nunjucks environment that renders src/templates/*.njk. Compiling the templates costs a fresh process about
 * 20 ms on its first `generate()`, so `npm run build` precompiles them (src/codegen/precompileTemplates.ts) into
 * dist/codegen/precompiledTemplates.cjs, and a process only renders. The precompiled code is used only while it
 * is exactly what compiling the files now would give: same template names, same bytes of every template, same
 * nunjucks version and options. Otherwise (a template edited since the build, no build yet) the templates are
 * compiled from the files as before: slower, never stale.
 */
import { createHash } from "node:crypto";
import { existsSync, readFileSync, readdirSync } from "node:fs";
import { createRequire } from "node:module";
import { join } from "node:path";
import type * as Nunjucks from "nunjucks";
import { packageRoot, templatesDir } from "./templatesDir.js";

// Loaded on the first generate(), synchronously as generate() is; and nunjucks' CommonJS bundle loads several times
// faster through require than through an ESM import (about 4 ms against 25 here).
const require = createRequire(import.meta.url);

/**
 * The options every template is compiled and rendered with. trimBlocks, lstripBlocks and throwOnUndefined act when
 * a template is compiled, so the build must use exactly these too (they are part of PrecompiledTemplates.key).
 */
export const TEMPLATE_OPTIONS: Readonly<Nunjucks.ConfigureOptions> = Object.freeze({
  autoescape: false,
  throwOnUndefined: true,
  trimBlocks: true,
  lstripBlocks: true,
});

/** Bump when the layout of the generated module changes. */
const PRECOMPILED_FORMAT = 1;

/** What dist/codegen/precompiledTemplates.cjs exports. */
export interface PrecompiledTemplates {
  /** `compilerKey()` of the build: the nunjucks version and options the code was compiled with. */
  key: string;
  /** By file name: the sha256 of the template file the code was compiled from, and nunjucks' compiled code. */
  templates: Record<string, { sourceHash: string; props: () => object }>;
}

/** Everything besides a template's own bytes that decides the code nunjucks compiles it to. */
export function compilerKey(): string {
  const nunjucksVersion = (require("nunjucks/package.json") as { version: string }).version;
  return JSON.stringify({ format: PRECOMPILED_FORMAT, nunjucks: nunjucksVersion, options: TEMPLATE_OPTIONS });
}

export function sourceHash(bytes: Uint8Array): string {
  return createHash("sha256").update(bytes).digest("hex");
}

/** Where `npm run build` writes the precompiled templates; found from the package root, so `src/` runs use it too. */
export function precompiledTemplatesPath(): string {
  return join(packageRoot(), "dist", "codegen", "precompiledTemplates.cjs");
}

/** The template files of a dir, sorted: every `*.njk` (minductor.h and friends are pasted verbatim, never compiled). */
export function templateNames(dir: string): string[] {
  return readdirSync(dir)
    .filter((name) => name.endsWith(".njk"))
    .sort();
}

let shared: Nunjucks.Environment | undefined;

/** The process's environment for src/templates, precompiled when the build's templates are current. */
export function templateEnvironment(): Nunjucks.Environment {
  shared ??= createTemplateEnvironment(templatesDir(), loadPrecompiled(precompiledTemplatesPath())).env;
  return shared;
}

/**
 * An environment for the templates of `dir`: `precompiled` if it matches them exactly (then `precompiled` is true),
 * else one that compiles the files.
 */
export function createTemplateEnvironment(dir: string, precompiled: PrecompiledTemplates | undefined): { env: Nunjucks.Environment; precompiled: boolean } {
  const current = precompiled && currentTemplates(dir, precompiled);
  if (current) {
    // The runtime-only build nunjucks ships for precompiled templates (same version, minified): without the lexer,
    // parser and compiler it loads in about 4 ms instead of 18.
    const slim = require("nunjucks/browser/nunjucks-slim.min.js") as typeof Nunjucks;
    // @types/nunjucks declares an array here; nunjucks takes the compiled templates by name.
    return { env: new slim.Environment(new slim.PrecompiledLoader(current as unknown as unknown[]), { ...TEMPLATE_OPTIONS }), precompiled: true };
  }
  const nunjucks = require("nunjucks") as typeof Nunjucks;
  return { env: new nunjucks.Environment(new nunjucks.FileSystemLoader(dir), { ...TEMPLATE_OPTIONS }), precompiled: false };
}

/** The compiled templates by name when they were compiled from exactly the current files, else undefined. */
function currentTemplates(dir: string, precompiled: PrecompiledTemplates): Record<string, object> | undefined {
  if (precompiled.key !== compilerKey()) return undefined;
  const names = templateNames(dir);
  if (names.join("\n") !== Object.keys(precompiled.templates).sort().join("\n")) return undefined;
  const current: Record<string, object> = {};
  for (const name of names) {
    const built = precompiled.templates[name];
    if (built.sourceHash !== sourceHash(readFileSync(join(dir, name)))) return undefined;
    current[name] = built.props();
  }
  return current;
}

function loadPrecompiled(path: string): PrecompiledTemplates | undefined {
  // Absent before the first build (or in a checkout that was never built): compile the files instead.
  if (!existsSync(path)) return undefined;
  const loaded = require(path) as Partial<PrecompiledTemplates>;
  return typeof loaded.key === "string" && typeof loaded.templates === "object" ? (loaded as PrecompiledTemplates) : undefined;
}
