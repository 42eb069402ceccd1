import type { Command } from "commander";
import { type MachineProbe, probeMachine } from "../../bench/probe.js";
import { DEMO, type DemoReporter, runDemo } from "../../demo/demo.js";
import { UserError } from "../errors.js";
import { type CliIO, printJson } from "../io.js";

export function registerDemo(program: Command, io: CliIO): void {
  program
    .command("demo")
    .description(`a Llama-style attention layer: ${DEMO.promptLen}-token causal prefill into a paged KV cache, then ${DEMO.decodeSteps} decode steps (what \`npm start\` runs)`)
    .option("--json", "print machine-readable JSON")
    .option("--no-probe", "skip measuring the machine's bandwidth and FMA peak")
    .action(async (opts: { json?: boolean; probe: boolean }) => {
      const say = (text: string) => void (opts.json ? undefined : io.out(`${text}\n`));
      let probe: MachineProbe | undefined;
      if (opts.probe) {
        say("measuring this machine (read bandwidth and arithmetic peaks; cached after the first run) ...");
        probe = await probeMachine();
        const dot =
          (probe.bf16DotPeakGflops ? `, bf16 dot products ${probe.bf16DotPeakGflops.allThreads.toFixed(0)} GFLOP/s` : "") +
          (probe.amxBf16PeakGflops ? `, AMX-BF16 tiles ${probe.amxBf16PeakGflops.allThreads.toFixed(0)} GFLOP/s` : "");
        say(`  ${probe.threads} thread(s), ${probe.isa}: read ${probe.readBandwidthGBs.allThreads.toFixed(1)} GB/s, fp32 FMA ${probe.fmaPeakGflops.allThreads.toFixed(0)} GFLOP/s${dot}`);
      }
      const reporter: DemoReporter = {
        phase: (name, detail) => say(`${name}: ${detail}`),
        line: say,
        progress: (done, total, label) => {
          if (!io.interactive || opts.json) return;
          const width = 30;
          const filled = Math.round((width * done) / total);
          io.err(`\r  ${label} [${"#".repeat(filled)}${".".repeat(width - filled)}] ${done}/${total}${done === total ? "\r\x1b[2K" : ""}`);
        },
      };
      const result = await runDemo(
        reporter,
        probe && {
          readBandwidthGBs: probe.readBandwidthGBs.allThreads,
          fmaPeakGflops: probe.fmaPeakGflops.allThreads,
          ...(probe.bf16DotPeakGflops ? { bf16DotPeakGflops: probe.bf16DotPeakGflops.allThreads } : {}),
          ...(probe.amxBf16PeakGflops ? { amxBf16PeakGflops: probe.amxBf16PeakGflops.allThreads } : {}),
        },
      );
      if (opts.json) printJson(io, { probe, ...result });
      const failed = result.checks.filter((c) => !c.ok);
      if (failed.length > 0) throw new UserError(`the demo's outputs differ from the float64 reference: ${failed.map((c) => c.what).join(", ")}`);
      say("all sampled outputs match the float64 reference");
    });
}
