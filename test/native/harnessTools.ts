/** Building and running the standalone harness (src/templates/harness.cpp.njk) from tests. */
import { mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { execa } from "execa";
import { renderHarness } from "../../src/codegen/renderHarness.js";
import type { AttentionGraph } from "../../src/ir/graph.js";
import { parseSpec } from "../../src/ir/spec.js";

export const SPECS_DIR = join(import.meta.dirname, "..", "..", "examples", "specs");

/** Every example spec, parsed, by file name without `.json`. */
export function exampleGraphs(): Array<[string, AttentionGraph]> {
  return readdirSync(SPECS_DIR)
    .filter((f) => f.endsWith(".json"))
    .sort()
    .map((f) => [f.replace(/\.json$/, ""), parseSpec(JSON.parse(readFileSync(join(SPECS_DIR, f), "utf8")))]);
}

/** A scratch directory removed by the returned function. */
/**
 * At most `slots` jobs at once; urgent jobs (harness runs, which a test is waiting for) go before queued ones
 * (builds of specs later in the file).
 */
export function limiter(slots: number): <T>(job: () => Promise<T>, urgent?: boolean) => Promise<T> {
  const queue: Array<() => void> = [];
  let free = slots;
  return async (job, urgent = false) => {
    if (free === 0) await new Promise<void>((resolve) => (urgent ? queue.unshift(resolve) : queue.push(resolve)));
    else free--;
    try {
      return await job();
    } finally {
      const next = queue.shift();
      if (next) next();
      else free++;
    }
  };
}

export function scratchDir(prefix: string): { dir: string; remove: () => void } {
  const dir = mkdtempSync(join(tmpdir(), `minductor-${prefix}-`));
  return { dir, remove: () => rmSync(dir, { recursive: true, force: true }) };
}

/**
 * Renders the harness of `graph` into `dir` and compiles it with `cxx` (g++ unless told) and `flags`; returns the
 * executable. `edit` rewrites the source first (a test that builds a variant of it).
 */
export async function buildHarness(
  graph: AttentionGraph,
  dir: string,
  name: string,
  flags: readonly string[],
  { cxx = "g++", edit = (source: string) => source }: { cxx?: string; edit?: (source: string) => string } = {},
): Promise<string> {
  const source = join(dir, `${name}.cpp`);
  const exe = join(dir, name);
  writeFileSync(source, edit(renderHarness(graph)));
  const result = await execa(cxx, [...flags, "-fopenmp", "-std=gnu++17", source, "-o", exe], { reject: false });
  if (result.exitCode !== 0) throw new Error(`${cxx} failed on the ${name} harness:\n${result.stderr}`);
  return exe;
}

export interface HarnessRun {
  exitCode: number;
  stdout: string;
  stderr: string;
  /** `key=value` pairs of stdout. */
  fields: Record<string, string>;
}

export async function runHarness(exe: string, args: readonly string[], env: Record<string, string> = {}): Promise<HarnessRun> {
  const result = await execa(exe, args, { reject: false, env, timeout: 120_000 });
  const fields: Record<string, string> = {};
  for (const [, key, value] of String(result.stdout).matchAll(/(\w+)=(\S+)/g)) fields[key] = value;
  return { exitCode: result.exitCode ?? -1, stdout: String(result.stdout), stderr: String(result.stderr), fields };
}

/** The harness's argv for named lengths. */
export function harnessArgs(o: {
  template: "attention" | "decoding";
  batch: number;
  qLen: number;
  kvLen: number;
  partitionSize?: number;
  seed?: number;
  threads?: number;
  layout?: "bhsd" | "bshd";
  ragged?: boolean;
  /** Pages of a paged spec's pool (the harness's default: the spec's pool, or what the batch needs if more). */
  numPages?: number;
}): string[] {
  const args = ["--template", o.template, "--batch", String(o.batch), "--q-len", String(o.qLen), "--kv-len", String(o.kvLen)];
  if (o.layout !== undefined) args.push("--layout", o.layout);
  if (o.ragged) args.push("--ragged");
  if (o.numPages !== undefined) args.push("--num-pages", String(o.numPages));
  if (o.partitionSize !== undefined) args.push("--partition-size", String(o.partitionSize));
  if (o.seed !== undefined) args.push("--seed", String(o.seed));
  if (o.threads !== undefined) args.push("--threads", String(o.threads));
  return args;
}

/** FNV-1a (32-bit) over the bytes of typed arrays in order, as the harness hashes its inputs and outputs. */
export function fnv1a(arrays: readonly ArrayBufferView[]): string {
  let h = 0x811c9dc5;
  for (const a of arrays) {
    const bytes = new Uint8Array(a.buffer, a.byteOffset, a.byteLength);
    for (let i = 0; i < bytes.length; i++) h = Math.imul(h ^ bytes[i], 0x01000193);
  }
  return (h >>> 0).toString(16).padStart(8, "0");
}
