import { readFileSync } from "node:fs";
import type { AttentionGraph } from "../ir/graph.js";
import { parseSpec } from "../ir/spec.js";
import { UserError } from "./errors.js";

/** Reads and validates a spec file. */
export function loadSpec(path: string): AttentionGraph {
  let text: string;
  try {
    text = readFileSync(path, "utf8");
  } catch (e) {
    const code = (e as NodeJS.ErrnoException).code;
    throw new UserError(`cannot read spec ${path}: ${code === "ENOENT" ? "no such file" : (e as Error).message}`, "give the path of a spec JSON file, e.g. examples/specs/causal.json");
  }
  return parseSpec(text);
}

/** Parses a positive integer option, naming the option when it is not one. */
export function intOption(name: string, value: string | undefined, min = 1): number | undefined {
  if (value === undefined) return undefined;
  const n = Number(value);
  if (!Number.isSafeInteger(n) || n < min) throw new UserError(`${name} must be an integer >= ${min}, got '${value}'`);
  return n;
}
