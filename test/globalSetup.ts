import { mkdirSync } from "node:fs";
import { join } from "node:path";

/** One compile cache for the whole suite, inside the checkout so a clean clone starts cold. */
export default function setup(): void {
  const dir = process.env.MINDUCTOR_CACHE_DIR ?? join(process.cwd(), ".cache", "test-kernels");
  mkdirSync(dir, { recursive: true });
  process.env.MINDUCTOR_CACHE_DIR = dir;
}
