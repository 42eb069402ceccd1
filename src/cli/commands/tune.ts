import type { Command } from "commander";
import { formatTable, ms } from "../../bench/formatTable.js";
import { type Trial, tuneKernel } from "../../bench/tuneKernel.js";
import { storeTunedChoice } from "../../tune/tuningStore.js";
import { specFeatures } from "../../kernel.js";
import { UserError } from "../errors.js";
import { type CliIO, printJson } from "../io.js";
import { intOption, loadSpec } from "../loadSpec.js";
import { overrideDType } from "../overrideDType.js";
import { withProgress } from "../progress.js";

interface TuneFlags {
  batch?: string; qLen?: string; kvLen?: string; dtype?: string; blockSizes?: string[]; partitionSizes?: string[];
  threads?: string[]; runs?: string; dryRun?: boolean; json?: boolean;
}

/** `QxKV`, e.g. `64x128`. */
function parseBlockSize(text: string): [number, number] {
  const m = /^(\d+)x(\d+)$/.exec(text.trim());
  const sizes = m ? [Number(m[1]), Number(m[2])] : [];
  if (sizes.length !== 2 || !sizes.every((n) => n >= 16 && n <= 1024 && n % 16 === 0)) {
    throw new UserError(`--block-sizes takes QxKV pairs of multiples of 16 up to 1024, got '${text}'`, "e.g. --block-sizes 64x64 128x128");
  }
  return sizes as [number, number];
}

const list = (values: string[] | undefined, name: string): number[] | undefined =>
  values?.flatMap((v) => v.split(",")).map((v) => intOption(name, v)!);

function trialName(t: Pick<Trial, "template" | "qBlock" | "kvBlock" | "partitionSize" | "numThreads">): string {
  return `${t.template} ${t.qBlock}x${t.kvBlock}${t.partitionSize !== null ? ` partition ${t.partitionSize}` : ""}, ${t.numThreads} thread(s)`;
}

export function registerTune(program: Command, io: CliIO): void {
  program
    .command("tune")
    .description("measure block sizes, templates, partition sizes and thread counts for one call shape; store the fastest for this machine")
    .argument("<spec>", "spec JSON file")
    .option("--batch <n>", "batch size (default: the spec's)")
    .option("--q-len <n>", "query length (default: the spec's)")
    .option("--kv-len <n>", "kv length (default: the spec's)")
    .option("--dtype <dtype>", "tune another q/k/v dtype than the spec's")
    .option("--block-sizes <QxKV...>", "candidate block sizes, each one more compile (default: a few around the spec's)")
    .option("--partition-sizes <n...>", "candidate flash-decoding partition sizes (default: 1..32 partitions per kv head)")
    .option("--threads <n...>", "candidate thread counts (default: all, half, one)")
    .option("--runs <n>", "timed runs per configuration (finalists get twice as many)", "5")
    .option("--dry-run", "measure and print, but store nothing")
    .option("--json", "print machine-readable JSON")
    .addHelpText("after", "\nThe choice serves every call in the same bucket (B, q_len, kv_len rounded up to powers of two, same threads);\n`compile()` and `minductor run` use it from then on, and `minductor explain` shows it.\n\nExample:\n  minductor tune examples/specs/gqa_decode.json --batch 1 --q-len 1 --kv-len 16384")
    .action(async (specPath: string, f: TuneFlags) => {
      const graph = overrideDType(loadSpec(specPath), f.dtype);
      if (graph.kernelOptions.template) throw new UserError(`the spec forces kernelOptions.template = ${graph.kernelOptions.template}; a tuned choice would never be used`);
      const spec = specFeatures(graph);
      const call = {
        batch: intOption("--batch", f.batch) ?? spec.batch,
        qLen: intOption("--q-len", f.qLen) ?? spec.qLen,
        kvLen: intOption("--kv-len", f.kvLen) ?? spec.kvLen,
      };
      const candidates = {
        ...(f.blockSizes ? { blockSizes: f.blockSizes.flatMap((b) => b.split(",")).map(parseBlockSize) } : {}),
        ...(f.partitionSizes ? { partitionSizes: list(f.partitionSizes, "--partition-sizes")! } : {}),
        ...(f.threads ? { threads: list(f.threads, "--threads")! } : {}),
      };
      const say = (line: string) => (f.json ? undefined : io.err(`${line}\n`));
      const result = await withProgress(io, `tuning ${graph.name}`, () =>
        tuneKernel(graph, { call, candidates, runs: intOption("--runs", f.runs), onProgress: say }),
      );
      const stored = f.dryRun ? undefined : await storeTunedChoice(graph, result.bucket, result.best);
      if (f.json) {
        printJson(io, { spec: graph.name, call, ...result, stored: stored ?? null });
        return;
      }
      const ranked = [...result.trials].sort((a, b) => (a.medianMs ?? Infinity) - (b.medianMs ?? Infinity));
      const b = result.best;
      const h = result.heuristic;
      io.out(
        [
          `${graph.name}: B = ${call.batch}, q_len = ${call.qLen}, kv_len = ${call.kvLen} (bucket ${result.bucket})`,
          formatTable(["configuration", "median ms"], ranked.map((t) => [trialName(t), t.medianMs === null ? `failed: ${t.error}` : ms(t.medianMs)]), ["l", "r"]),
          "",
          `heuristic  ${trialName({ ...h, partitionSize: h.template === "flash_decoding" ? h.partitionSize : null, numThreads: spec.threads })}: ${ms(b.heuristicMs)} ms`,
          `tuned      ${trialName({ ...b, partitionSize: b.template === "flash_decoding" ? b.partitionSize : null })}: ${ms(b.tunedMs)} ms (${(b.heuristicMs / b.tunedMs).toFixed(2)}x)`,
          stored
            ? `stored in ${stored}; \`minductor explain ${specPath} --batch ${call.batch} --q-len ${call.qLen} --kv-len ${call.kvLen}\` shows it`
            : "not stored (--dry-run)",
        ].join("\n") + "\n",
      );
    });
}
