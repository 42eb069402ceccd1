import type { Command } from "commander";
import { describeGraph, graphSummary } from "../../ir/describeGraph.js";
import { type CliIO, printJson } from "../io.js";
import { loadSpec } from "../loadSpec.js";

export function registerExplain(program: Command, io: CliIO): void {
  program
    .command("explain")
    .description("validate a spec and print its graph and the simplified IR of its mods")
    .argument("<spec>", "spec JSON file")
    .option("--json", "print machine-readable JSON")
    .addHelpText("after", "\nExample:\n  minductor explain examples/specs/alibi.json")
    .action((specPath: string, opts: { json?: boolean }) => {
      const graph = loadSpec(specPath);
      if (opts.json) printJson(io, graphSummary(graph));
      else io.out(`${describeGraph(graph)}\n`);
    });
}
