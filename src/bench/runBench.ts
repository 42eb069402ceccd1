/**
 * `npm run bench`: measures the machine, runs the chosen suites (every case in its own process), checks the
 * targets, prints the tables, writes `bench/results/<date>.json` and, when asked, the plot.
 */
import { loadavg } from "node:os";
import { compilerInfo } from "../compile/index.js";
import { defaultCxx, defaultCxxflags } from "../compile/options.js";
import { defaultThreads } from "../kernel.js";
import type { CaseRequest, CaseResult } from "./benchCase.js";
import type { BenchContext } from "./benchContext.js";
import { type BenchResults, type MachineSummary, type SuiteName, emptyResults, writeResults } from "./benchResults.js";
import { formatDecode, runDecode } from "./decodeSuite.js";
import { figure } from "./formatProbe.js";
import { machineIdentity } from "../tune/machineIdentity.js";
import { formatOverhead, runOverhead } from "./overheadSuite.js";
import { writePlot } from "./plotResults.js";
import { formatPrefill, runPrefill } from "./prefillSuite.js";
import { probeMachine } from "./probe.js";
import { type SpawnOptions, spawnCase } from "./spawnCase.js";
import { formatServing, runServing } from "./servingSuite.js";
import { formatSweep, runSweep } from "./sweepSuite.js";
import { checkTargets, formatTargets } from "./targets.js";
import { formatTune, runTune } from "./tuneSuite.js";

export const SUITES: readonly SuiteName[] = ["prefill", "decode", "sweep", "serving", "overhead", "tune"];

/** What each name on the command line selects; `decode` brings the sweep that justifies the auto policy. */
export const SUITE_GROUPS: Record<string, readonly SuiteName[]> = {
  prefill: ["prefill"],
  decode: ["decode", "sweep"],
  sweep: ["sweep"],
  serving: ["serving"],
  overhead: ["overhead"],
  tune: ["tune"],
  all: SUITES,
};

export interface BenchOptions {
  suites: readonly SuiteName[];
  quick: boolean;
  /** Where the results JSON goes (default bench/results under the working dir); null writes none. */
  resultsDir?: string | null;
  plot?: string;
  /** Measure the probe again (default: yes for a full run; a quick run reuses the cached probe). */
  refreshProbe?: boolean;
  spawn?: SpawnOptions;
  log?: (line: string) => void;
  out?: (text: string) => void;
}

export async function machineSummary(refresh: boolean): Promise<MachineSummary> {
  const probe = await probeMachine({ refresh });
  const identity = await machineIdentity();
  const compiler = await compilerInfo(defaultCxx(), defaultCxxflags());
  return {
    probe,
    cores: identity.cores,
    threads: defaultThreads(),
    node: process.version,
    compiler: compiler.version.split("\n")[0],
    cpuFeatures: compiler.cpuFeatures,
    loadAverage: loadavg()[0],
  };
}

/** Half a runnable process per core on average: enough competition to slow every OpenMP barrier down. */
export function isBusy(m: MachineSummary): boolean {
  return m.loadAverage >= 0.5 * m.cores;
}

export function formatMachine(m: MachineSummary): string {
  const p = m.probe;
  return [
    `machine  ${p.cpu}, ${m.cores} core(s), ${p.isa}; kernels run ${m.threads} thread(s)`,
    `probe    read ${figure(p.readBandwidthGBs.allThreads)} GB/s (1 thread ${figure(p.readBandwidthGBs.oneThread)}), fp32 FMA ${figure(p.fmaPeakGflops.allThreads)} GFLOP/s (1 thread ${figure(p.fmaPeakGflops.oneThread)}), ${p.bf16DotPeakGflops ? `bf16 dot ${figure(p.bf16DotPeakGflops.allThreads)} GFLOP/s (1 thread ${figure(p.bf16DotPeakGflops.oneThread)}), ` : ""}${p.amxBf16PeakGflops ? `AMX-BF16 ${figure(p.amxBf16PeakGflops.allThreads)} GFLOP/s (1 thread ${figure(p.amxBf16PeakGflops.oneThread)}), ` : ""}${p.int16DotPeakGflops ? `int16 dot ${figure(p.int16DotPeakGflops.allThreads)} GOP/s (1 thread ${figure(p.int16DotPeakGflops.oneThread)}), ` : ""}measured ${p.measuredAt}`,
    `software ${m.compiler}, node ${m.node}`,
    `load     ${m.loadAverage.toFixed(1)} (1-minute average) on ${m.cores} core(s)${isBusy(m) ? ": BUSY, other processes compete for the cores, so figures will be low and noisy" : ""}`,
  ].join("\n");
}

/** A context whose cases run in fresh processes and land in `results.cases`. */
export function benchContext(results: BenchResults, log: (line: string) => void, spawn?: SpawnOptions): BenchContext {
  return {
    quick: results.quick,
    machine: results.machine,
    log,
    async measure<R extends CaseResult>(request: CaseRequest): Promise<R> {
      const result = await spawnCase<R>(request, spawn);
      results.cases.push(result);
      return result;
    },
  };
}

export async function runBench(options: BenchOptions): Promise<{ results: BenchResults; resultsPath?: string; report: string }> {
  const log = options.log ?? ((line: string) => void process.stderr.write(`${line}\n`));
  const out = options.out ?? ((text: string) => void process.stdout.write(text));
  const refresh = options.refreshProbe ?? !options.quick;
  log(refresh ? "measuring the machine (probe) ..." : "reading the machine's probe (measured once and cached) ...");
  const machine = await machineSummary(refresh);
  out(`${formatMachine(machine)}\n\n`);
  if (isBusy(machine)) log(`warning: load average ${machine.loadAverage.toFixed(1)} on ${machine.cores} core(s); run the bench on a quiet machine for figures worth keeping`);

  const results = emptyResults(machine, options.quick, options.suites);
  const ctx = benchContext(results, log, options.spawn);
  const sections: string[] = [];
  const section = (text: string) => {
    if (!text) return;
    sections.push(text);
    out(`${text}\n\n`);
  };
  // Sections print as each suite ends, so a long run shows its figures early.
  for (const suite of SUITES.filter((s) => options.suites.includes(s))) {
    if (suite === "prefill") section(formatPrefill((results.prefill = await runPrefill(ctx))));
    if (suite === "decode") section(formatDecode((results.decode = await runDecode(ctx))));
    if (suite === "sweep") section(formatSweep((results.sweep = await runSweep(ctx))));
    if (suite === "serving") section(formatServing((results.serving = await runServing(ctx))));
    if (suite === "overhead") section(formatOverhead((results.overhead = await runOverhead(ctx))));
    if (suite === "tune") section(formatTune((results.tune = await runTune(ctx))));
  }
  results.targets = checkTargets(results);
  section(formatTargets(results.targets));
  results.finishedAt = new Date().toISOString();

  const resultsPath = options.resultsDir === null ? undefined : await writeResults(options.resultsDir ?? "bench/results", results);
  if (resultsPath) log(`wrote ${resultsPath}`);
  if (options.plot) {
    await writePlot(options.plot, results);
    log(`wrote ${options.plot}`);
  }
  return { results, resultsPath, report: [formatMachine(machine), ...sections].join("\n\n") };
}
