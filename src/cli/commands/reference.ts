import type { Command } from "commander";
import { generateInputs } from "../../io/generateInputs.js";
import { referenceAttention } from "../../reference/referenceAttention.js";
import { fileOrder, isPacked, layoutOf } from "../../io/fileLayout.js";
import { fromFloat64 } from "../../runtime/tensor.js";
import { type CliIO, printJson } from "../io.js";
import { intOption, loadSpec } from "../loadSpec.js";
import { inputsAsRecord, readInputsDir, writeTensorsDir } from "../tensorDir.js";

export function registerReference(program: Command, io: CliIO): void {
  program
    .command("reference")
    .description("run the float64 reference on a spec (seeded random inputs unless --inputs is given)")
    .argument("<spec>", "spec JSON file")
    .option("--inputs <dir>", "read query.npy, key.npy, value.npy (in their layouts), buffers, pageTable.npy, seqLens.npy, qStartLoc.npy, kvStartLoc.npy from DIR")
    .requiredOption("--out <dir>", "write out.npy (in the query's layout) and lse.npy (and the generated inputs) to DIR")
    .option("--seed <n>", "seed of the random inputs", "0")
    .option("--batch <n>", "batch size of generated inputs (default: the spec's)")
    .option("--q-len <n>", "query length of generated inputs (ragged: the longest sequence)")
    .option("--kv-len <n>", "kv length of generated inputs (paged or ragged: the longest sequence)")
    .option("--json", "print machine-readable JSON")
    .addHelpText("after", "\nExample:\n  minductor reference examples/specs/causal.json --out /tmp/causal-ref --seed 1")
    .action((specPath: string, opts: { inputs?: string; out: string; seed: string; batch?: string; qLen?: string; kvLen?: string; json?: boolean }) => {
      const graph = loadSpec(specPath);
      const seed = intOption("--seed", opts.seed, 0)!;
      const inputs = opts.inputs
        ? readInputsDir(graph, opts.inputs)
        : generateInputs(graph, seed, { batch: intOption("--batch", opts.batch), qLen: intOption("--q-len", opts.qLen), kvLen: intOption("--kv-len", opts.kvLen) });
      const result = referenceAttention(graph, inputs);
      // out.npy in the query's layout, as `run` writes it; lse.npy [B, Hq, Lq] (ragged: [totalQ, Hq]).
      const out = fromFloat64(result.out, "float32", result.shape);
      const written = writeTensorsDir(opts.out, {
        ...(opts.inputs ? {} : inputsAsRecord(graph, inputs)),
        out: isPacked(graph, "out") ? out : fileOrder(out, layoutOf(graph, "out")),
        lse: graph.returnLse ? fromFloat64(result.lse, "float32", result.shape.slice(0, -1)) : undefined,
      });
      if (opts.json) printJson(io, { outDir: opts.out, files: written, shape: result.shape });
      else io.out(`reference ${graph.name}: out [${result.shape.join(", ")}] float64 -> float32; wrote ${written.join(", ")} to ${opts.out}\n`);
    });
}
