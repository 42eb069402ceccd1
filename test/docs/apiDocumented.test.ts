import { readFileSync } from "node:fs";
import { join } from "node:path";
import { describe, expect, it } from "vitest";

const root = join(import.meta.dirname, "..", "..");
const read = (path: string): string => readFileSync(join(root, path), "utf8");

/**
 * The names a module's source exports, split into runtime values and type-only names. Reads export lists
 * (`export { a, type B, c as d } from ...`, `export type { ... }`) and exported declarations. `export *` is refused:
 * it would hide names from this check.
 */
function exportedNames(source: string): { values: Set<string>; types: Set<string> } {
  const code = source.replace(/\/\*[\s\S]*?\*\//g, "").replace(/^\s*\/\/.*$/gm, "");
  if (/^\s*export\s+\*/m.test(code)) throw new Error("src/index.ts uses `export *`; list the names so they can be checked");
  const values = new Set<string>();
  const types = new Set<string>();
  for (const [, typeOnly, list] of code.matchAll(/^\s*export\s+(type\s+)?\{([^}]*)\}/gm)) {
    for (const raw of list.split(",")) {
      const item = raw.trim();
      if (item === "") continue;
      const isType = typeOnly !== undefined || item.startsWith("type ");
      const name = item.replace(/^type\s+/, "").split(/\s+as\s+/).pop()!.trim();
      (isType ? types : values).add(name);
    }
  }
  for (const [, kind, name] of code.matchAll(/^\s*export\s+(?:declare\s+)?(?:default\s+)?(?:async\s+)?(?:abstract\s+)?(function\*?|class|const|let|var|enum|interface|type)\s+([A-Za-z_$][\w$]*)/gm)) {
    (kind === "interface" || kind === "type" ? types : values).add(name);
  }
  return { values, types };
}

/**
 * True when `name` appears as a whole identifier in a heading or an inline code span of a Markdown text. Fenced
 * code blocks do not count: an export must be described, not just used in an example.
 */
function isDocumented(name: string, markdown: string): boolean {
  const prose = markdown.replace(/^(```|~~~)[^\n]*\n[\s\S]*?^\1[^\n]*$/gm, "");
  const word = new RegExp(`(?<![\\w$])${name.replace(/\$/g, "\\$")}(?![\\w$])`);
  const headings = prose.split("\n").filter((line) => /^#{1,6}\s/.test(line));
  const spans = [...prose.matchAll(/`([^`\n]+)`/g)].map((m) => m[1]);
  return [...headings, ...spans].some((text) => word.test(text));
}

describe("the doc-sync checks themselves", () => {
  it("reads every form of export", () => {
    const { values, types } = exportedNames(
      [
        "/** export { hidden } */",
        "// export const alsoHidden = 1;",
        'export { a, type B, c as d } from "./x.js";',
        'export type { E, F } from "./y.js";',
        "export async function g() {}",
        "export class H {}",
        "export const i = 1;",
        "export interface J {}",
        "export type K = number;",
      ].join("\n"),
    );
    expect([...values].sort()).toEqual(["a", "d", "g", "H", "i"].sort());
    expect([...types].sort()).toEqual(["B", "E", "F", "J", "K"]);
  });

  it("refuses `export *`", () => {
    expect(() => exportedNames('export * from "./x.js";')).toThrow(/export \*/);
  });

  it("counts a heading or an inline code span, as a whole identifier, outside fenced blocks", () => {
    const doc = ["## compile(spec)", "Use `kernel.run(inputs)` or `KernelInputs`.", "Tensor in prose.", "```ts", "flexAttention({})", "```"].join("\n");
    expect(isDocumented("compile", doc)).toBe(true);
    expect(isDocumented("run", doc)).toBe(true);
    expect(isDocumented("KernelInputs", doc)).toBe(true);
    expect(isDocumented("Kernel", doc)).toBe(false);
    expect(isDocumented("Tensor", doc)).toBe(false);
    expect(isDocumented("flexAttention", doc)).toBe(false);
  });
});

describe("docs/api.md documents every export of src/index.ts", async () => {
  const runtime = Object.keys(await import("../../src/index.js"));
  const { values, types } = exportedNames(read("src/index.ts"));
  const api = read("docs/api.md");

  it("the parsed value exports are exactly the module's runtime exports", () => {
    expect([...values].sort()).toEqual([...runtime].sort());
  });

  it("finds the exports it is meant to check", () => {
    expect(runtime).toContain("compile");
    expect(types.has("AttentionGraph")).toBe(true);
  });

  it("every runtime export is mentioned", () => {
    expect(runtime.filter((name) => !isDocumented(name, api))).toEqual([]);
  });

  it("every exported type is mentioned", () => {
    expect([...types].filter((name) => !isDocumented(name, api))).toEqual([]);
  });
});
