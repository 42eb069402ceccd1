import type { Command } from "commander";
import { formatProbe, probeMachine } from "../../bench/probe.js";
import { type CliIO, printJson } from "../io.js";
import { withProgress } from "../progress.js";

export function registerProbe(program: Command, io: CliIO): void {
  program
    .command("probe")
    .description("measure this machine's read bandwidth, fp32 FMA peak, and bf16 and int16 dot-product peaks where it has them (the denominators of every bench figure; cached per machine)")
    .option("--refresh", "measure again even when this machine's figures are cached")
    .option("--json", "print machine-readable JSON")
    .addHelpText("after", "\nExample:\n  minductor probe --refresh   # on a quiet machine, before a benchmark")
    .action(async (opts: { refresh?: boolean; json?: boolean }) => {
      const probe = await withProgress(io, "measuring read bandwidth and FMA peak", () => probeMachine({ refresh: opts.refresh }));
      if (opts.json) printJson(io, probe);
      else io.out(`${formatProbe(probe)}\n`);
    });
}
