import type { Command } from "commander";
import { generateInputs } from "../../io/generateInputs.js";
import { referenceAttention } from "../../reference/referenceAttention.js";
import { fromFloat64 } from "../../runtime/tensor.js";
import { type CliIO, printJson } from "../io.js";
import { intOption, loadSpec } from "../loadSpec.js";
import { inputsAsRecord, readInputsDir, writeTensorsDir } from "../tensorDir.js";

export function registerReference(program: Command, io: CliIO): void {
  program
    .command("reference")
    .description("run the float64 reference on a spec (seeded random inputs unless --inputs is given)")
    .argument("<spec>", "spec JSON file")
    .option("--inputs <dir>", "read query.npy, key.npy, value.npy, buffers, pageTable.npy, seqLens.npy from DIR")
    .requiredOption("--out <dir>", "write out.npy and lse.npy (and the generated inputs) to DIR")
    .option("--seed <n>", "seed of the random inputs", "0")
    .option("--batch <n>", "batch size of generated inputs (default: the spec's)")
    .option("--q-len <n>", "query length of generated inputs")
    .option("--kv-len <n>", "kv length of generated inputs")
    .option("--json", "print machine-readable JSON")
    .addHelpText("after", "\nExample:\n  minductor reference examples/specs/causal.json --out /tmp/causal-ref --seed 1")
    .action((specPath: string, opts: { inputs?: string; out: string; seed: string; batch?: string; qLen?: string; kvLen?: string; json?: boolean }) => {
      const graph = loadSpec(specPath);
      const seed = intOption("--seed", opts.seed, 0)!;
      const inputs = opts.inputs
        ? readInputsDir(graph, opts.inputs)
        : generateInputs(graph, seed, { batch: intOption("--batch", opts.batch), qLen: intOption("--q-len", opts.qLen), kvLen: intOption("--kv-len", opts.kvLen) });
      const result = referenceAttention(graph, inputs);
      const written = writeTensorsDir(opts.out, {
        ...(opts.inputs ? {} : inputsAsRecord(inputs)),
        out: fromFloat64(result.out, "float32", result.shape),
        lse: graph.returnLse ? fromFloat64(result.lse, "float32", result.shape.slice(0, 3)) : undefined,
      });
      if (opts.json) printJson(io, { outDir: opts.out, files: written, shape: result.shape });
      else io.out(`reference ${graph.name}: out [${result.shape.join(", ")}] float64 -> float32; wrote ${written.join(", ")} to ${opts.out}\n`);
    });
}
