#!/usr/bin/env node
/**
 * `npm run fuzz -- [--runs N] [--seed S] [--path P] [--cxxflags="..."]`: a longer fuzz run of random kernels
 * against the float64 reference (test/fuzz/kernels.test.ts, which `npm test` runs with a small fixed seed).
 * On a failure it prints the seed, the path and the shrunk spec and calls; `--seed S --path P` replays that case.
 */
import { spawn } from "node:child_process";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";
import { parseArgs } from "node:util";

const root = join(dirname(fileURLToPath(import.meta.url)), "..");
const usage = 'usage: npm run fuzz -- [--runs N] [--seed S] [--path P] [--cxxflags="-O3 -march=native ..."]';

let values;
try {
  ({ values } = parseArgs({
    options: {
      runs: { type: "string" },
      seed: { type: "string" },
      path: { type: "string" },
      cxxflags: { type: "string" },
      help: { type: "boolean", short: "h" },
    },
  }));
} catch (error) {
  console.error(`fuzz: ${error.message}\n${usage}`);
  process.exit(1);
}
if (values.help) {
  console.log(usage);
  process.exit(0);
}

const integer = (name, text, min) => {
  const n = Number(text);
  if (!Number.isSafeInteger(n) || n < min) {
    console.error(`fuzz: --${name} must be an integer >= ${min}, got '${text}'\n${usage}`);
    process.exit(1);
  }
  return n;
};
const runs = values.runs === undefined ? 100 : integer("runs", values.runs, 1);
// A fresh seed each run unless one is given; it is printed first, so any run can be repeated.
const seed = values.seed === undefined ? Math.floor(Math.random() * 2 ** 31) : integer("seed", values.seed, -(2 ** 31));
if (values.path !== undefined && values.seed === undefined) {
  console.error("fuzz: --path replays a case of one seed's search; give that --seed too");
  process.exit(1);
}
if (values.path !== undefined && !/^\d+(:\d+)*$/.test(values.path)) {
  console.error(`fuzz: --path must look like 12:0:3 (as a failure report prints it), got '${values.path}'`);
  process.exit(1);
}

const env = {
  ...process.env,
  MINDUCTOR_FUZZ_RUNS: String(runs),
  MINDUCTOR_FUZZ_SEED: String(seed),
  MINDUCTOR_FUZZ_PATH: values.path ?? "",
  MINDUCTOR_FUZZ_CXXFLAGS: values.cxxflags ?? "",
  // Fuzz kernels are many and used once: they get a cache of their own, pruned after each run (never the
  // user's MINDUCTOR_CACHE_DIR).
  MINDUCTOR_CACHE_DIR: process.env.MINDUCTOR_FUZZ_CACHE_DIR || join(root, ".cache", "fuzz-kernels"),
};
console.log(`fuzz: seed ${seed}${values.path ? `, path ${values.path}` : `, ${runs} run(s)`} (repeat with --seed ${seed})`);
const vitest = join(root, "node_modules", "vitest", "vitest.mjs");
const child = spawn(process.execPath, [vitest, "run", "test/fuzz/kernels.test.ts", "--disableConsoleIntercept"], {
  cwd: root,
  env,
  stdio: "inherit",
});
child.on("exit", (code, signal) => process.exit(code ?? (signal ? 1 : 0)));
