import { existsSync } from "node:fs";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";

let cached: string | undefined;

/** `src/templates` of the package, found from this module whether it runs from `src/` or `dist/`. */
export function templatesDir(): string {
  if (cached) return cached;
  let dir = dirname(fileURLToPath(import.meta.url));
  while (!existsSync(join(dir, "package.json"))) {
    const parent = dirname(dir);
    if (parent === dir) throw new Error("cannot find the minductor package root (package.json)");
    dir = parent;
  }
  cached = join(dir, "src", "templates");
  return cached;
}
