import { join } from "node:path";
import { defineConfig } from "vitest/config";

export default defineConfig({
  test: {
    include: ["test/**/*.test.ts"],
    // Kernels are content-addressed: one compile cache inside the checkout serves the whole suite,
    // and a clean clone starts cold.
    env: { MINDUCTOR_CACHE_DIR: process.env.MINDUCTOR_CACHE_DIR ?? join(import.meta.dirname, ".cache", "test-kernels") },
    testTimeout: 180_000,
    hookTimeout: 180_000,
    pool: "forks",
  },
});
