/**
 * The identity of the code that renders a kernel's sources from its graph: this package's version, and the name, size
 * and modification time of every file that code is (src/codegen, src/ir, src/select and src/kernelLibrary, as .ts
 * under src or .js under dist, and the templates). The kernel index (src/compile/kernelIndex.ts) keys on it, so that
 * an edit to any of them, or another release, makes every record a miss and the sources are rendered again.
 *
 * By metadata, not content: about 50 stats cost a fresh process a fraction of a millisecond where reading and
 * hashing the half megabyte took 5 ms, a third of what the index saves. Editing a file moves its modification
 * time; a package installed from a registry has fixed times but its own version. The index checks the entries it
 * points at by content regardless, so what this identity guards is only whether the graph would render the same.
 * test/compile/kernelIndex.test.ts checks that every module the renderers import is among the files.
 */
import { readdirSync, readFileSync, statSync } from "node:fs";
import { dirname, extname, join } from "node:path";
import { fileURLToPath } from "node:url";
import { packageRoot, templatesDir } from "./templatesDir.js";

/** The module root this runs from (src/ or dist/) and its modules' extension (.ts or .js). */
const here = fileURLToPath(import.meta.url);
const moduleRoot = dirname(dirname(here));
const moduleExt = extname(here);

/** Directories whose every file counts, and single modules, relative to the module root. */
const RENDERER_DIRS = ["codegen", "ir", "select"];
const RENDERER_MODULES = ["kernelLibrary"];

/** The files of the renderer, absolute, sorted. */
export function rendererFiles(): string[] {
  const files: string[] = [];
  for (const dir of [...RENDERER_DIRS.map((d) => join(moduleRoot, d)), templatesDir()]) {
    for (const name of readdirSync(dir)) if (!name.endsWith(".map") && !name.endsWith(".d.ts")) files.push(join(dir, name));
  }
  for (const module of RENDERER_MODULES) files.push(join(moduleRoot, module + moduleExt));
  return files.sort();
}

let identity: string | undefined;

/** Computed once per process: a process runs the code it loaded, whatever happens to the files later. */
export function rendererIdentity(): string {
  if (identity === undefined) {
    const { version } = JSON.parse(readFileSync(join(packageRoot(), "package.json"), "utf8")) as { version: string };
    identity = JSON.stringify([version, filesIdentity(rendererFiles(), packageRoot())]);
  }
  return identity;
}

/** The name (relative to `root`), size and modification time (ms) of each file. */
export function filesIdentity(files: readonly string[], root: string): Array<[string, number, number]> {
  return files.map((path) => {
    const stat = statSync(path);
    return [path.slice(root.length), stat.size, Math.trunc(stat.mtimeMs)];
  });
}
