/**
 * `minductor bench <spec>`: the user's own kernel at the shapes they name, each shape one case in a fresh process:
 * the selector's choice, both templates forced and (optionally) the naive baseline, interleaved.
 */
import type { AttentionGraph } from "../ir/graph.js";
import { parseSpec } from "../ir/spec.js";
import { specFeatures } from "../kernel.js";
import type { KernelCaseRequest, ResultOf, TimingSettings, VariantRequest } from "./benchCase.js";
import type { BenchCall } from "./benchInputs.js";
import type { BenchContext } from "./benchContext.js";
import { formatTable, num, pct, ratio, spread } from "./formatTable.js";
import type { TimingStats } from "./timingStats.js";

export interface SpecCallRow {
  id: string;
  call: BenchCall;
  template: string;
  partitionSize: number | null;
  policy: string;
  stats: TimingStats;
  gflops: number;
  peakPct: number;
  gbs: number;
  bandwidthPct: number;
  /** Each forced alternative: its time over the chosen template's, or why it failed. */
  alternatives: { label: string; ratio: number | null; error?: string }[];
}

const TIMING: Record<"quick" | "full", TimingSettings> = {
  quick: { warmup: 1, minRuns: 3, maxRuns: 20, budgetMs: 1_000 },
  full: { warmup: 2, minRuns: 5, maxRuns: 200, budgetMs: 8_000 },
};

/** The spec's own call: its batch, query length and kv length (paged: the pool shared out over the batch). */
export function defaultCall(graph: AttentionGraph): BenchCall {
  const f = specFeatures(graph);
  return { batch: f.batch, qLen: f.qLen, kvLen: f.kvLen };
}

export async function benchSpecCalls(
  spec: Record<string, unknown>,
  calls: readonly BenchCall[],
  ctx: BenchContext,
  options: { naive: boolean },
): Promise<SpecCallRow[]> {
  const graph = parseSpec(spec);
  const rows: SpecCallRow[] = [];
  for (const [i, call] of (calls.length > 0 ? calls : [defaultCall(graph)]).entries()) {
    const id = `${graph.name} B${call.batch} Lq${call.qLen} Lkv${call.kvLen}`;
    ctx.log(`[${i + 1}/${Math.max(1, calls.length)}] ${id}`);
    const variants: VariantRequest[] = [
      { label: "auto" },
      { label: "flash_attention", template: "flash_attention" },
      { label: "flash_decoding", template: "flash_decoding" },
      ...(options.naive ? [{ label: "naive", template: "naive" } as const] : []),
    ];
    const request: KernelCaseRequest = { kind: "kernel", id, spec, call, variants, timing: TIMING[ctx.quick ? "quick" : "full"], seed: i };
    const result = await ctx.measure<ResultOf<"kernel">>(request);
    const [auto, ...others] = result.variants;
    if (!auto.stats) throw new Error(`${id}: the selector's choice failed: ${auto.error}`);
    const seconds = auto.stats.medianMs / 1000;
    const gflops = result.work.flops / seconds / 1e9;
    const gbs = result.work.kvBytes / seconds / 1e9;
    rows.push({
      id,
      call,
      template: auto.template,
      partitionSize: auto.partitionSize,
      policy: auto.policy,
      stats: auto.stats,
      gflops,
      peakPct: (100 * gflops) / ctx.machine.probe.fmaPeakGflops.allThreads,
      gbs,
      bandwidthPct: (100 * gbs) / ctx.machine.probe.readBandwidthGBs.allThreads,
      alternatives: others.map((v) => ({ label: v.label, ratio: v.stats ? v.stats.medianMs / auto.stats!.medianMs : null, ...(v.error ? { error: v.error } : {}) })),
    });
  }
  return rows;
}

export function formatSpecCalls(rows: readonly SpecCallRow[]): string {
  const labels = [...new Set(rows.flatMap((r) => r.alternatives.map((a) => a.label)))];
  return formatTable(
    ["call", "chosen", "ms median (min..max)", "GFLOP/s", "% FMA peak", "K/V GB/s", "% bandwidth", ...labels.map((l) => `${l}/chosen`)],
    rows.map((r) => [
      r.id,
      `${r.template}${r.partitionSize !== null ? ` p${r.partitionSize}` : ""} (${r.policy})`,
      spread(r.stats),
      num(r.gflops),
      pct(r.peakPct),
      num(r.gbs),
      pct(r.bandwidthPct),
      ...labels.map((l) => {
        const a = r.alternatives.find((x) => x.label === l);
        return a?.ratio != null ? ratio(a.ratio) : a?.error ? "failed" : "-";
      }),
    ]),
    ["l", "l", "r", "r", "r", "r", "r", ...labels.map(() => "r" as const)],
  );
}
