import type { Command } from "commander";
import { compile } from "../../index.js";
import type { TemplateName } from "../../ir/graph.js";
import { generateInputs } from "../../io/generateInputs.js";
import { compareOutputs, TOLERANCE } from "../../reference/compareOutputs.js";
import { referenceAttention } from "../../reference/referenceAttention.js";
import { toFloat64 } from "../../runtime/tensor.js";
import { UserError } from "../errors.js";
import { type CliIO, printJson } from "../io.js";
import { intOption, loadSpec } from "../loadSpec.js";
import { overrideDType } from "../overrideDType.js";
import { withProgress } from "../progress.js";
import { inputsAsRecord, outputFor, readInputsDir, writeTensorsDir } from "../tensorDir.js";
import { describeLayouts, layoutLines } from "../describeLayouts.js";

interface RunFlags {
  inputs?: string; out?: string; seed: string; check?: boolean; dtype?: string;
  batch?: string; qLen?: string; kvLen?: string; template?: string; partitionSize?: string; threads?: string;
  policy?: string; json?: boolean;
}

export function registerRun(program: Command, io: CliIO): void {
  program
    .command("run")
    .description("compile a spec's kernel and run it on .npy inputs or seeded random ones")
    .argument("<spec>", "spec JSON file")
    .option("--inputs <dir>", "read query.npy, key.npy, value.npy (in their layouts), one .npy per buffer, pageTable.npy, seqLens.npy, qStartLoc.npy, kvStartLoc.npy")
    .option("--out <dir>", "write out.npy (in the query's layout) and lse.npy to DIR, and the generated inputs unless --inputs")
    .option("--seed <n>", "seed of the random inputs", "0")
    .option("--check", "compare with the float64 reference; exit 1 beyond the dtype's tolerance")
    .option("--dtype <dtype>", "run with another q/k/v dtype than the spec's (float32, bfloat16, float16)")
    .option("--batch <n>", "batch size of generated inputs")
    .option("--q-len <n>", "query length of generated inputs (ragged: the longest sequence)")
    .option("--kv-len <n>", "kv length of generated inputs (paged or ragged: the longest sequence)")
    .option("--template <name>", "force flash_attention, flash_decoding or naive")
    .option("--partition-size <n>", "kv positions per flash-decoding partition")
    .option("--threads <n>", "OpenMP threads (default: every core)")
    .option("--policy <name>", "template choice rule: auto or pytorch")
    .option("--json", "print machine-readable JSON")
    .addHelpText("after", "\nExamples:\n  minductor run examples/specs/causal.json --check\n  minductor run examples/specs/gqa_decode.json --kv-len 16384 --check --dtype float16")
    .action(async (specPath: string, f: RunFlags) => {
      const graph = overrideDType(loadSpec(specPath), f.dtype);
      const template = f.template as TemplateName | "naive" | undefined;
      if (template && !["flash_attention", "flash_decoding", "naive"].includes(template)) {
        throw new UserError(`--template must be flash_attention, flash_decoding or naive, got '${template}'`);
      }
      if (f.policy && f.policy !== "auto" && f.policy !== "pytorch") throw new UserError(`--policy must be auto or pytorch, got '${f.policy}'`);
      const inputs = f.inputs
        ? readInputsDir(graph, f.inputs)
        : generateInputs(graph, intOption("--seed", f.seed, 0)!, { batch: intOption("--batch", f.batch), qLen: intOption("--q-len", f.qLen), kvLen: intOption("--kv-len", f.kvLen) });
      const kernel = await withProgress(io, `compiling ${graph.name}`, () => compile(graph));
      const options = {
        template,
        partitionSize: intOption("--partition-size", f.partitionSize),
        numThreads: intOption("--threads", f.threads),
        policy: f.policy as "auto" | "pytorch" | undefined,
      };
      const choice = template === "naive" ? undefined : kernel.choiceFor(inputs, options);
      // The kernel writes out.npy's layout directly: the file's tensor is allocated here and given as a view.
      const out = outputFor(graph, inputs);
      const started = performance.now();
      const result = kernel.run(inputs, { ...options, out: out.view });
      const ms = performance.now() - started;
      const report: Record<string, unknown> = {
        spec: graph.name,
        dtype: graph.query.dtype,
        shape: { query: inputs.query.shape, key: inputs.key.shape, out: result.out.shape },
        ...describeLayouts(graph, inputs),
        template: template ?? choice!.template,
        // A forced template runs as forced: the selector's reasons are reported only when it decided.
        reasons: template ? ["forced by --template"] : choice!.reasons,
        partitionSize: options.partitionSize ?? choice?.partitionSize,
        ms,
        fromCache: kernel.library.fromCache,
      };
      if (f.out) report.wrote = writeTensorsDir(f.out, { out: out.file, lse: result.lse, ...(f.inputs ? {} : inputsAsRecord(graph, inputs)) });
      let failed = false;
      if (f.check) {
        const ref = referenceAttention(graph, { ...inputs, blockMask: undefined });
        const tol = TOLERANCE[graph.query.dtype];
        const out = compareOutputs(toFloat64(result.out), ref.out, tol);
        const lse = result.lse ? compareOutputs(toFloat64(result.lse), ref.lse, TOLERANCE.float32) : undefined;
        report.check = { out: { ...out, tolerance: tol }, lse: lse && { ...lse, tolerance: TOLERANCE.float32 } };
        failed = !out.ok || (lse !== undefined && !lse.ok);
      }
      if (f.json) printJson(io, report);
      else io.out(formatRun(report));
      if (failed) throw new UserError(`${graph.name}: the kernel's output differs from the float64 reference beyond the ${graph.query.dtype} tolerance`);
    });
}

function formatRun(r: Record<string, unknown>): string {
  const shape = r.shape as { query: number[]; key: number[]; out: number[] };
  const lines = [
    `${r.spec} (${r.dtype}): query [${shape.query.join(", ")}], key [${shape.key.join(", ")}] -> out [${shape.out.join(", ")}]`,
    ...layoutLines(r),
    `  template ${r.template}${r.template === "flash_decoding" ? `, partition ${r.partitionSize}` : ""}: ${(r.reasons as string[]).join("; ")}`,
    `  ran in ${(r.ms as number).toFixed(2)} ms (kernel ${r.fromCache === "compiled" ? "compiled now" : `from the ${r.fromCache} cache`})`,
  ];
  if (r.wrote) lines.push(`  wrote ${(r.wrote as string[]).join(", ")}`);
  type Checked = ReturnType<typeof compareOutputs> & { tolerance: { atol: number; rtol: number } };
  const check = r.check as { out: Checked; lse?: Checked } | undefined;
  if (check) {
    const line = (name: string, c: Checked) =>
      `  check ${name}: max abs ${c.maxAbs.toExponential(2)}, max rel ${c.maxRel.toExponential(2)} (atol ${c.tolerance.atol}, rtol ${c.tolerance.rtol}): ${c.ok ? "ok" : `FAIL, ${c.failures} element(s), first at ${c.firstFailure!.index}: ${c.firstFailure!.got} vs ${c.firstFailure!.want}`}`;
    lines.push(line("out", check.out));
    if (check.lse) lines.push(line("lse", check.lse));
  }
  return `${lines.join("\n")}\n`;
}
