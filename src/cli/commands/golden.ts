import type { Command } from "commander";
import { type GoldenCaseResult, goldenCheck, goldenUpdate } from "../../golden/golden.js";
import { UserError } from "../errors.js";
import { type CliIO, printJson } from "../io.js";
import { intOption } from "../loadSpec.js";
import { withProgress } from "../progress.js";

interface GoldenFlags { goldenDir?: string; seed: string; json?: boolean }

export function registerGolden(program: Command, io: CliIO): void {
  const golden = program
    .command("golden")
    .description("snapshot the generated C++ and outputs of every spec in a folder, and check them later")
    .addHelpText("after", "\nProtect a custom attention variant:\n  minductor golden update my-specs/   # after a deliberate change; commit my-specs/__golden__\n  minductor golden check my-specs/    # in CI: exit 1 on a changed source or numerical drift");
  const common = (c: Command) =>
    c.argument("<dir>", "folder of spec JSON files")
      .option("--golden-dir <dir>", "where the snapshots live (default: <dir>/__golden__)")
      .option("--seed <n>", "seed of the inputs", "0")
      .option("--json", "print machine-readable JSON");
  common(golden.command("update").description("write the snapshots"))
    .action(async (dir: string, f: GoldenFlags) => {
      const results = await withProgress(io, "updating golden outputs", () => goldenUpdate(dir, { goldenDir: f.goldenDir, seed: intOption("--seed", f.seed, 0) }));
      if (f.json) printJson(io, results);
      else io.out(`updated ${results.length} snapshot(s): ${results.map((r) => r.spec).join(", ")}\n`);
    });
  common(golden.command("check").description("regenerate and compare with the snapshots; exit 1 on any difference"))
    .action(async (dir: string, f: GoldenFlags) => {
      const results = await withProgress(io, "checking golden outputs", () => goldenCheck(dir, { goldenDir: f.goldenDir, seed: intOption("--seed", f.seed, 0) }));
      if (f.json) printJson(io, results);
      else io.out(results.map(formatCase).join("") + formatEngineChanges(results));
      const bad = results.filter((r) => r.status !== "ok");
      if (bad.length > 0) {
        throw new UserError(`${bad.length} of ${results.length} golden snapshot(s) differ: ${bad.map((r) => `${r.spec} (${r.status})`).join(", ")}`, "if the change is intended, run `minductor golden update` and commit the snapshots");
      }
    });
}

/**
 * One line per distinct engine change: when the engine changes, every spec of its configuration reports it, but it
 * is one change with one cause (the templates or the runtime headers), not the specs' own.
 */
function formatEngineChanges(results: GoldenCaseResult[]): string {
  const changes = new Map<string, string[]>();
  for (const r of results) {
    if (!r.engineChange) continue;
    const id = `${r.engineChange.stored} -> ${r.engineChange.now}`;
    changes.set(id, [...(changes.get(id) ?? []), r.spec]);
  }
  return [...changes]
    .map(([id, specs]) => `engine changed ${id} (the engine source, not the specs' mods; run by ${specs.join(", ")}): check the outputs above, then \`minductor golden update\`\n`)
    .join("");
}

function formatCase(r: GoldenCaseResult): string {
  const err = r.out ? ` max abs ${r.out.maxAbs.toExponential(2)}${r.lse ? `, lse max abs ${r.lse.maxAbs.toExponential(2)}` : ""}` : "";
  let text = `${r.status === "ok" ? "ok     " : r.status.padEnd(7)} ${r.spec}${err}\n`;
  if (r.status === "missing") text += "        no snapshot: run `minductor golden update`\n";
  if (r.sourceDiff) text += `${r.sourceDiff.split("\n").map((l) => `        ${l}`).join("\n")}\n`;
  return text;
}
