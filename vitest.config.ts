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
    // Two files at a time: with one, a cold run left a core idle for a third of its length (a file's JavaScript and
    // its serial steps with no build queued). Two cold runs each, 2-core AVX-512 VM: one worker 412 and 440 s (677-718
    // s of CPU), two 384 and 391 s (749-768 s of CPU: the builds and OpenMP kernels of two files share the cores, and
    // both cores stay busy to the end). Files start their own builds together, one g++ per core each
    // (test/helpers/checkKernel.ts, prebuild).
    maxWorkers: 2,
  },
});
