import { copyFileSync, writeFileSync } from "node:fs";
import type { Command } from "commander";
import { renderHarness } from "../../codegen/renderHarness.js";
import { compileSource } from "../../compile/index.js";
import { generate } from "../../index.js";
import { describeGraph } from "../../ir/describeGraph.js";
import { UserError } from "../errors.js";
import { type CliIO, printJson } from "../io.js";
import { loadSpec } from "../loadSpec.js";
import { overrideDType } from "../overrideDType.js";
import { withProgress } from "../progress.js";

const EMITS = ["cpp", "so", "ir", "harness"] as const;

export function registerCompile(program: Command, io: CliIO): void {
  program
    .command("compile")
    .description("generate and compile a spec's kernel; --emit writes the C++, the shared library, the IR or a standalone harness")
    .argument("<spec>", "spec JSON file")
    .option("--emit <what>", `what to write: ${EMITS.join(", ")}`, "so")
    .option("-o, --output <path>", "where to write it (cpp, ir and harness default to stdout; so to <name>.so)")
    .option("--dtype <dtype>", "compile for another q/k/v dtype than the spec's")
    .option("--json", "print machine-readable JSON")
    .addHelpText("after", "\nExamples:\n  minductor compile examples/specs/causal.json --emit cpp -o causal.cpp   # also writes causal.h\n  minductor compile examples/specs/causal.json -o causal.so\n  minductor compile examples/specs/causal.json --emit harness -o h.cpp     # g++ -O1 -g -fopenmp -std=gnu++17 h.cpp")
    .action(async (specPath: string, opts: { emit: string; output?: string; dtype?: string; json?: boolean }) => {
      if (!(EMITS as readonly string[]).includes(opts.emit)) {
        throw new UserError(`--emit must be one of ${EMITS.join(", ")}, got '${opts.emit}'`);
      }
      const graph = overrideDType(loadSpec(specPath), opts.dtype);
      if (opts.emit === "ir") {
        emitText(io, opts.output, `${describeGraph(graph)}\n`);
        return;
      }
      if (opts.emit === "harness") {
        emitText(io, opts.output, renderHarness(graph));
        if (opts.output && !opts.json) io.out(`wrote ${opts.output}\n`);
        if (opts.output && opts.json) printJson(io, { harness: opts.output });
        return;
      }
      if (opts.emit === "cpp") {
        const { cpp, header } = generate(graph);
        if (opts.output) {
          const headerPath = opts.output.replace(/\.[^./]*$/, "") + ".h";
          writeFileSync(opts.output, cpp);
          writeFileSync(headerPath, header);
          if (opts.json) printJson(io, { cpp: opts.output, header: headerPath });
          else io.out(`wrote ${opts.output} and ${headerPath}\n`);
        } else io.out(cpp);
        return;
      }
      // One self-contained library (engine and mods, every entry point), as an embedding engine wants it; the
      // split libraries that compile() caches need each other and the runtime to pair them.
      const { cpp, header } = generate(graph);
      const library = await withProgress(io, `compiling ${graph.name}`, () => compileSource(cpp, { header }));
      const target = opts.output ?? `${graph.name}.so`;
      copyFileSync(library.soPath, target);
      const summary = { so: target, cacheKey: library.key, fromCache: library.fromCache, compileMs: Math.round(library.compileMs) };
      if (opts.json) printJson(io, summary);
      else io.out(`wrote ${target} (${summary.fromCache === "compiled" ? `compiled in ${summary.compileMs} ms` : `from the ${summary.fromCache} cache`})\n`);
    });
}

function emitText(io: CliIO, output: string | undefined, text: string): void {
  if (output) writeFileSync(output, text);
  else io.out(text);
}
