import { readFileSync, writeFileSync } from "node:fs";
import type { Command } from "commander";
import type { BenchCall } from "../../bench/benchInputs.js";
import { emptyResults } from "../../bench/benchResults.js";
import { benchSpecCalls, formatSpecCalls } from "../../bench/benchSpecCalls.js";
import { writePlot } from "../../bench/plotResults.js";
import { benchContext, formatMachine, machineSummary } from "../../bench/runBench.js";
import { UserError } from "../errors.js";
import { type CliIO, printJson } from "../io.js";
import { loadSpec } from "../loadSpec.js";

interface BenchFlags { shapes?: string[]; dtype?: string; quick?: boolean; naive: boolean; json?: boolean; plot?: string; out?: string }

/** `B,Lq,Lkv`, e.g. `1,1,16384` for one decode step over 16384 cached tokens. */
export function parseShape(text: string): BenchCall {
  const parts = text.split(",").map((p) => Number(p.trim()));
  if (parts.length !== 3 || !parts.every((n) => Number.isSafeInteger(n) && n >= 1)) {
    throw new UserError(`--shapes takes B,Lq,Lkv triples of positive integers, got '${text}'`, "e.g. --shapes 1,2048,2048 1,1,16384");
  }
  return { batch: parts[0], qLen: parts[1], kvLen: parts[2] };
}

export function registerBench(program: Command, io: CliIO): void {
  program
    .command("bench")
    .description("time a spec's kernel at some shapes: the chosen template, both templates forced and the naive baseline, against this machine's probe")
    .argument("<spec>", "spec JSON file")
    .option("--shapes <B,Lq,Lkv...>", "calls to time (default: the spec's own shapes)")
    .option("--dtype <dtype>", "time another q/k/v dtype than the spec's (float32, bfloat16, float16)")
    .option("--quick", "fewer runs")
    .option("--no-naive", "skip the naive baseline (it materialises Lq x Lkv scores per head and is slow)")
    .option("--plot <file.svg>", "draw a roofline and the template comparison")
    .option("--out <file.json>", "write the results (machine, rows and raw cases) as JSON")
    .option("--json", "print machine-readable JSON")
    .addHelpText("after", "\nExamples:\n  minductor bench examples/specs/causal.json --shapes 1,2048,2048\n  minductor bench examples/specs/gqa_decode.json --shapes 1,1,4096 4,1,16384 --plot decode.svg")
    .action(async (specPath: string, f: BenchFlags) => {
      const graph = loadSpec(specPath);
      const spec = JSON.parse(readFileSync(specPath, "utf8")) as Record<string, unknown>;
      if (f.dtype !== undefined) {
        if (!["float32", "bfloat16", "float16"].includes(f.dtype)) throw new UserError(`--dtype must be one of float32, bfloat16, float16, got '${f.dtype}'`);
        for (const t of ["query", "key", "value"]) spec[t] = { ...(spec[t] as object), dtype: f.dtype };
      }
      const calls = (f.shapes ?? []).map(parseShape);
      const results = emptyResults(await machineSummary(false), Boolean(f.quick));
      const ctx = benchContext(results, (line) => io.err(`${line}\n`));
      const rows = await benchSpecCalls(spec, calls, ctx, { naive: f.naive });
      results.finishedAt = new Date().toISOString();
      if (f.json) printJson(io, { spec: graph.name, machine: results.machine, rows });
      else io.out(`${formatMachine(results.machine)}\n\n${formatSpecCalls(rows)}\n`);
      if (f.out) writeFileSync(f.out, `${JSON.stringify({ ...results, rows }, null, 2)}\n`);
      if (f.plot) await writePlot(f.plot, results);
    });
}
