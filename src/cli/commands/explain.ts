import type { Command } from "commander";
import { choiceForSpec } from "../../bench/choiceForSpec.js";
import { describeGraph, graphSummary } from "../../ir/describeGraph.js";
import { describeChoice } from "../../select/describeChoice.js";
import { UserError } from "../errors.js";
import { type CliIO, printJson } from "../io.js";
import { intOption, loadSpec } from "../loadSpec.js";

interface ChoiceFlags { choice?: boolean; batch?: string; qLen?: string; kvLen?: string; threads?: string; policy?: string }

export function registerExplain(program: Command, io: CliIO): void {
  program
    .command("explain")
    .description("validate a spec and print its graph and the simplified IR of its mods")
    .argument("<spec>", "spec JSON file")
    .option("--json", "print machine-readable JSON")
    .option("--no-choice", "print only the graph and the IR, not the template decision")
    .option("--batch <n>", "batch size of the call the decision is for (default: the spec's)")
    .option("--q-len <n>", "query length of the call")
    .option("--kv-len <n>", "kv length of the call")
    .option("--threads <n>", "threads of the call (default: every core)")
    .option("--policy <name>", "auto or pytorch (default: the spec's, else auto); a tuned choice wins under auto")
    .addHelpText("after", "\nExamples:\n  minductor explain examples/specs/alibi.json\n  minductor explain examples/specs/gqa_decode.json --q-len 1 --kv-len 16384 --policy pytorch")
    .action(async (specPath: string, opts: { json?: boolean } & ChoiceFlags) => {
      const graph = loadSpec(specPath);
      if (!opts.choice) {
        if (opts.json) printJson(io, graphSummary(graph));
        else io.out(`${describeGraph(graph)}\n`);
        return;
      }
      if (opts.policy && opts.policy !== "auto" && opts.policy !== "pytorch") throw new UserError(`--policy must be auto or pytorch, got '${opts.policy}'`);
      const shapes = { batch: intOption("--batch", opts.batch), qLen: intOption("--q-len", opts.qLen), kvLen: intOption("--kv-len", opts.kvLen), threads: intOption("--threads", opts.threads) };
      const { features, choice } = await choiceForSpec(graph, shapes, opts.policy as "auto" | "pytorch" | undefined);
      if (opts.json) printJson(io, { ...graphSummary(graph), call: features, choice });
      else io.out(`${describeGraph(graph)}\n\n${describeChoice(features, choice)}\n`);
    });
}
