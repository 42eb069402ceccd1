import { join } from "node:path";
import { defineConfig } from "vitest/config";
import { compilerEnv } from "./src/compile/options.js";

/**
 * Files that neither build nor load a kernel, start a process or change the environment for the files after them
 * (test/helpers/unchangedEnvironment.setup.ts checks the last): they run in one worker that is reused from file to
 * file (`isolate: false`), which saves the half second of CPU each of them spent starting a worker and importing its
 * modules anew. Any other file, a new one too, runs isolated, as vitest does by default.
 */
const SHARED_WORKER_FILES = [
  "bench/benchPieces", "bench/benchReport", "cli/layouts", "codegen/precompiledTemplates", "compile/compilerSlots",
  "docs/apiDocumented", "error/badSpecs", "error/injection", "fuzz/conditionedMods", "io/generateInputs", "io/npy",
  "io/random", "ir/evalInt64", "ir/examples", "ir/intervals", "ir/parseAndTrace", "ir/simplify", "ir/specLayout",
  "reference/referenceAttention", "runtime/blockMask", "runtime/createBlockMask", "runtime/dtypes", "runtime/tensor",
  "runtime/validateInputs", "runtime/view", "runtime/viewInputs", "select/callCost", "select/selectTemplate",
  "tune/layering",
].map((name) => `test/${name}.test.ts`);

export default defineConfig({
  test: {
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
    testTimeout: 180_000,
    hookTimeout: 180_000,
    pool: "forks",
    // Two files at a time: with one, a cold run left a core idle for a third of its length (a file's JavaScript and
    // its serial steps with no build queued). Two cold runs each, 2-core AVX-512 VM: one worker 412 and 440 s (677-718
    // s of CPU), two 384 and 391 s (749-768 s of CPU: the builds and OpenMP kernels of two files share the cores, and
    // both cores stay busy to the end). Files start their own builds together, one g++ per core each
    // (test/helpers/checkKernel.ts, prebuild).
    maxWorkers: 2,
    projects: [
      {
        extends: true,
        test: {
          name: "isolated",
          include: ["test/**/*.test.ts"],
          exclude: SHARED_WORKER_FILES,
          // A cold cache: the kernels of the heaviest files build in the background while the first files run.
          globalSetup: ["test/globalSetup.ts"],
        },
      },
      {
        extends: true,
        test: {
          name: "shared worker",
          include: SHARED_WORKER_FILES,
          isolate: false,
          setupFiles: ["test/helpers/unchangedEnvironment.setup.ts"],
        },
      },
    ],
  },
});
