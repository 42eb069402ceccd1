/**
 * `npm run bench [-- prefill|decode|sweep|serving|overhead|tune|all] [--quick] [--plot FILE.svg]`: the benchmark suite.
 * Run it on a quiet machine; every figure is relative to the probe measured at the start of the same run.
 */
import { readFile } from "node:fs/promises";
import { Command, CommanderError } from "commander";
import type { BenchResults } from "./benchResults.js";
import { writePlot } from "./plotResults.js";
import { SUITE_GROUPS, runBench } from "./runBench.js";

const program = new Command()
  .name("npm run bench --")
  .description("minductor's benchmark suite: prefill, decode (with the template-choice sweep), serving (layouts, 8-bit KV, ragged batches), overhead, tuning")
  .argument("[suite]", `one of ${Object.keys(SUITE_GROUPS).join(", ")}`, "all")
  .option("--quick", "smaller shapes and fewer runs, reusing the cached probe (minutes, not tens of minutes)")
  .option("--plot <file>", "also draw the results as an SVG (roofline, templates, sweep, tuning)")
  .option("--results-dir <dir>", "where the results JSON goes", "bench/results")
  .option("--from <results.json>", "measure nothing: draw --plot from an earlier run's results file")
  .exitOverride();

try {
  program.parse();
  const suite = program.args[0] ?? "all";
  const suites = SUITE_GROUPS[suite];
  if (!suites) throw new CommanderError(1, "bench.suite", `unknown suite '${suite}'; use one of ${Object.keys(SUITE_GROUPS).join(", ")}`);
  const opts = program.opts<{ quick?: boolean; plot?: string; resultsDir: string; from?: string }>();
  if (opts.from) {
    if (!opts.plot) throw new CommanderError(1, "bench.suite", "--from needs --plot FILE.svg");
    await writePlot(opts.plot, JSON.parse(await readFile(opts.from, "utf8")) as BenchResults);
    process.stderr.write(`wrote ${opts.plot}\n`);
  } else {
    await runBench({ suites, quick: Boolean(opts.quick), plot: opts.plot, resultsDir: opts.resultsDir });
  }
} catch (e) {
  if (e instanceof CommanderError) {
    if (e.exitCode !== 0 && e.code === "bench.suite") process.stderr.write(`${e.message}\n`);
    process.exitCode = e.exitCode;
  } else {
    process.stderr.write(`bench failed: ${e instanceof Error ? (e.stack ?? e.message) : String(e)}\n`);
    process.exitCode = 2;
  }
}
