import { join } from "node:path";
import { defineConfig } from "vitest/config";

export default defineConfig({
  test: {
    include: ["test/**/*.test.ts"],
    // Kernels are content-addressed: one compile cache inside the checkout serves the whole suite,
    // and a clean clone starts cold.
    env: {
      MINDUCTOR_CACHE_DIR: process.env.MINDUCTOR_CACHE_DIR ?? join(import.meta.dirname, ".cache", "test-kernels"),
      // Test files, g++ and kernels share two cores. OpenMP threads that spin at barriers while another process
      // wants the core slow everything down several times over; waiting threads sleep instead. Tests never time.
      OMP_WAIT_POLICY: "passive",
    },
    testTimeout: 180_000,
    hookTimeout: 180_000,
    pool: "forks",
    // vitest's default is one worker per core but one, so a single worker on two cores: files would run one at a
    // time while most of a file's time is one g++ or one single-threaded reference. Two overlap those.
    maxWorkers: 1,
  },
});
