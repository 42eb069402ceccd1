import { fileURLToPath } from "node:url";
import type { CaseRequest, CaseResult } from "./benchCase.js";
import { BenchError } from "./benchError.js";

/** The compiled child entry next to this module (dist/bench/runCase.js). */
export const DEFAULT_RUNNER = fileURLToPath(new URL("./runCase.js", import.meta.url));

export interface SpawnOptions {
  /** The runCase.js to start (tests point it at their own build). */
  runner?: string;
  /** Extra environment, e.g. MINDUCTOR_CACHE_DIR. */
  env?: Record<string, string>;
  /** Kill a case that runs longer than this (default 30 minutes: a naive prefill is slow, not stuck). */
  timeoutMs?: number;
}

/** Measures one case in a fresh Node process and returns what it printed. */
export async function spawnCase<R extends CaseResult = CaseResult>(request: CaseRequest, options: SpawnOptions = {}): Promise<R> {
  // Loaded on first use: execa takes about 100 ms to import, and every CLI command imports this module.
  const { execa } = await import("execa");
  const result = await execa(process.execPath, [options.runner ?? DEFAULT_RUNNER, JSON.stringify(request)], {
    env: options.env,
    reject: false,
    timeout: options.timeoutMs ?? 30 * 60_000,
    stdin: "ignore",
  });
  if (result.failed) {
    const why = result.timedOut ? "timed out" : `exited with ${result.exitCode ?? result.signal}`;
    const stderr = String(result.stderr ?? "").trim().split("\n").slice(-8).join("\n");
    throw new BenchError(`case ${request.id} ${why}${stderr ? `:\n${stderr}` : ""}`);
  }
  const lastLine = String(result.stdout).trim().split("\n").pop() ?? "";
  try {
    return JSON.parse(lastLine) as R;
  } catch {
    throw new BenchError(`case ${request.id} printed no result line (stdout: ${JSON.stringify(lastLine.slice(0, 200))})`);
  }
}
