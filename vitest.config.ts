import { join } from "node:path";
import { defineConfig } from "vitest/config";
import { compilerEnv } from "./src/compile/options.js";

export default defineConfig({
  test: {
    include: ["test/**/*.test.ts"],
    // Kernels are content-addressed: one compile cache inside the checkout serves the whole suite,
    // and a clean clone starts cold.
    env: {
      MINDUCTOR_CACHE_DIR: process.env.MINDUCTOR_CACHE_DIR ?? join(import.meta.dirname, ".cache", "test-kernels"),
      // g++ and the kernels' OpenMP threads share two cores: threads that spin at a barrier would take a core from
      // the builds running beside them, so waiting threads sleep instead. Tests never time anything.
      OMP_WAIT_POLICY: "passive",
      // An engine builds whole: the files and the prebuild already keep both cores compiling, where building an engine
      // in units (src/compile/compilerSlots.ts, splitBuilds) would add a second parse of its shared parts. The tests of
      // unit builds set it themselves.
      MINDUCTOR_SPLIT_BUILDS: process.env.MINDUCTOR_SPLIT_BUILDS ?? "0",
      // compile() runs g++ with these malloc settings (src/compile/options.ts); the tests' own g++ runs (harnesses,
      // sanitizer and cross builds, warning checks) get them too.
      ...compilerEnv(),
    },
    // A cold cache: the kernels of the heaviest files build in the background while the first files run.
    globalSetup: ["test/globalSetup.ts"],
    testTimeout: 180_000,
    hookTimeout: 180_000,
    pool: "forks",
    // One file at a time (vitest's own default on two cores, said here on purpose): two workers measured no faster
    // and used about a quarter more CPU, the g++ builds and OpenMP kernels of two files fighting for two cores.
    // Files start their own builds together instead, one g++ per core (test/helpers/checkKernel.ts, prebuild).
    maxWorkers: 1,
  },
});
