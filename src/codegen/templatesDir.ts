import { existsSync } from "node:fs";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";

let root: string | undefined;

/** The minductor package root (the dir of its package.json), found from this module whether it runs from `src/` or `dist/`. */
export function packageRoot(): string {
  if (root) return root;
  let dir = dirname(fileURLToPath(import.meta.url));
  while (!existsSync(join(dir, "package.json"))) {
    const parent = dirname(dir);
    if (parent === dir) throw new Error("cannot find the minductor package root (package.json)");
    dir = parent;
  }
  root = dir;
  return root;
}

/** `src/templates` of the package. */
export function templatesDir(): string {
  return join(packageRoot(), "src", "templates");
}
