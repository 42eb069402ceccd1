import { readFileSync, readdirSync } from "node:fs";
import { dirname, join, relative, resolve, sep } from "node:path";
import { describe, expect, it } from "vitest";

/**
 * The layering of src/: the tools (src/bench, src/cli) may import the core, never the other way round. Autotuning
 * lives in src/tune because compile() reads its store; the bench and the CLI import it from there.
 */
const root = join(import.meta.dirname, "..", "..");
const srcDir = join(root, "src");

/** The tools: only they may import from each other's folders. */
const TOOLS = ["bench", "cli"];
/** The compile pipeline's stages; named separately so a rule about them survives a loosening of the general one. */
const STAGES = ["ir", "select", "codegen", "compile", "runtime", "tune"];

function tsFiles(dir: string): string[] {
  return readdirSync(dir, { withFileTypes: true }).flatMap((e) => {
    const path = join(dir, e.name);
    if (e.isDirectory()) return tsFiles(path);
    return e.name.endsWith(".ts") ? [path] : [];
  });
}

interface Import {
  /** The importing file, relative to the repository root (forward slashes). */
  file: string;
  /** The specifier as written. */
  specifier: string;
  /** The top folder of src/ the import resolves into; undefined for packages and files directly in src/. */
  target: string | undefined;
}

/** The top folder of src/ a path is in: "bench" for src/bench/x.ts, undefined for src/index.ts or outside src/. */
function topFolder(path: string): string | undefined {
  const parts = relative(srcDir, path).split(sep);
  return parts[0] === ".." || parts.length < 2 ? undefined : parts[0];
}

/**
 * The specifiers a source imports: `import`/`export ... from` (type-only included, spanning lines), side-effect
 * `import "x"` and dynamic `import("x")`. Static forms must start a line, so doc comments (` * import ...`) and
 * `//` comments do not count; the TypeScript in use (7, native) has no JS API to parse with.
 */
function specifiers(source: string): string[] {
  const patterns = [
    /^\s*(?:import|export)\b[^;"'`]*?\bfrom\s*(["'])(.+?)\1/gm,
    /^\s*import\s*(["'])(.+?)\1/gm,
    /\bimport\s*\(\s*(["'])(.+?)\1\s*\)/g,
  ];
  return patterns.flatMap((re) => [...source.matchAll(re)].map((m) => m[2]));
}

/** Every import of every .ts file under src/. */
function srcImports(): Import[] {
  return tsFiles(srcDir).flatMap((path) => {
    const file = relative(root, path).split(sep).join("/");
    return specifiers(readFileSync(path, "utf8")).map((specifier) => ({
      file,
      specifier,
      target: specifier.startsWith(".") ? topFolder(resolve(dirname(path), specifier)) : undefined,
    }));
  });
}

const describeImport = (i: Import): string => `${i.file} imports "${i.specifier}" (src/${i.target})`;

describe("src layering", () => {
  const imports = srcImports();

  it("scans the sources", () => {
    // A broken scan would find no violations; make sure it sees a known import of each kind.
    expect(imports.some((i) => i.file === "src/index.ts" && i.target === "tune")).toBe(true);
    expect(imports.some((i) => i.file.startsWith("src/bench/") && i.target === "tune")).toBe(true);
  });

  it("only src/bench and src/cli import from src/bench or src/cli", () => {
    const bad = imports.filter((i) => TOOLS.includes(i.target!) && !TOOLS.includes(topFolder(join(root, i.file))!));
    expect(bad.map(describeImport), "files outside the tools import a tool").toEqual([]);
  });

  it("the pipeline stages never import from src/bench or src/cli", () => {
    const bad = imports.filter((i) => TOOLS.includes(i.target!) && STAGES.includes(topFolder(join(root, i.file))!));
    expect(bad.map(describeImport), `a stage (${STAGES.join(", ")}) imports a tool`).toEqual([]);
  });
});
