/**
 * The measurements behind the `auto` policy's thresholds: flash decoding against flash attention over kv_len,
 * q_len, the GQA group and the batch, both forced, and where decoding wins.
 */
import { parseSpec } from "../ir/spec.js";
import { callFeatures } from "../select/features.js";
import { AUTO, DECODE_MAX_Q_LEN, selectTemplate } from "../select/selectTemplate.js";
import type { KernelCaseRequest, ResultOf, TimingSettings } from "./benchCase.js";
import type { BenchContext } from "./benchContext.js";
import type { SweepPoint } from "./benchResults.js";
import { benchSpec } from "./benchSpecs.js";
import { formatTable } from "./formatTable.js";

const TIMING: Record<"quick" | "full", TimingSettings> = {
  quick: { warmup: 1, minRuns: 5, maxRuns: 30, budgetMs: 300 },
  full: { warmup: 2, minRuns: 7, maxRuns: 100, budgetMs: 1_500 },
};

export interface SweepGrid {
  groups: number[];
  batches: number[];
  qLens: number[];
  kvLens: number[];
}

/** Full: kv_len 64..16384, q_len 1..16, G 1/4, B 1/8 (bf16, D 128, Hkv 8). Quick: a corner of it. */
export function sweepGrid(quick: boolean): SweepGrid {
  return quick
    ? { groups: [1, 4], batches: [1], qLens: [1, 16], kvLens: [128, 512, 2048] }
    : { groups: [1, 4], batches: [1, 8], qLens: [1, 2, 4, 8, 16], kvLens: [64, 128, 256, 512, 1024, 2048, 4096, 8192, 16384] };
}

export async function runSweep(ctx: BenchContext): Promise<SweepPoint[]> {
  const grid = sweepGrid(ctx.quick);
  const total = grid.groups.length * grid.batches.length * grid.qLens.length * grid.kvLens.length;
  const points: SweepPoint[] = [];
  for (const group of grid.groups) {
    const spec = benchSpec({ dtype: "bfloat16", hq: 8 * group, hkv: 8, headDim: 128, causal: false });
    const graph = parseSpec(spec);
    for (const batch of grid.batches) {
      for (const qLen of grid.qLens) {
        for (const kvLen of grid.kvLens) {
          const id = `sweep bf16 G${group} B${batch} q${qLen} kv${kvLen}`;
          ctx.log(`[sweep ${points.length + 1}/${total}] ${id}`);
          const request: KernelCaseRequest = {
            kind: "kernel",
            id,
            spec,
            call: { batch, qLen, kvLen },
            // Forced decoding still takes the auto policy's partition size for the call.
            variants: [{ label: "flash_decoding", template: "flash_decoding" }, { label: "flash_attention", template: "flash_attention" }],
            timing: TIMING[ctx.quick ? "quick" : "full"],
            seed: points.length,
          };
          const result = await ctx.measure<ResultOf<"kernel">>(request);
          const [decoding, attention] = result.variants;
          const auto = selectTemplate(callFeatures(graph, { batch, qLen, kvLen, threads: ctx.machine.threads }), "auto");
          points.push({
            group,
            batch,
            qLen,
            kvLen,
            decodingMs: decoding.stats?.medianMs ?? null,
            attentionMs: attention.stats?.medianMs ?? null,
            autoTemplate: auto.template,
          });
        }
      }
    }
  }
  return points;
}

/** flash attention time / flash decoding time: above 1 decoding wins. */
export function decodingSpeedup(p: SweepPoint): number | null {
  return p.decodingMs !== null && p.attentionMs !== null ? p.attentionMs / p.decodingMs : null;
}

/** Points where `auto` picks the slower template by more than `tolerance` (ties within it are no miss). */
export function autoMisses(points: readonly SweepPoint[], tolerance = 0.05): SweepPoint[] {
  return points.filter((p) => {
    const s = decodingSpeedup(p);
    if (s === null) return false;
    return p.autoTemplate === "flash_decoding" ? s < 1 - tolerance : s > 1 + tolerance;
  });
}

export function formatSweep(points: readonly SweepPoint[]): string {
  if (points.length === 0) return "";
  const kvLens = [...new Set(points.map((p) => p.kvLen))].sort((a, b) => a - b);
  const keys = [...new Set(points.map((p) => `${p.group}/${p.batch}/${p.qLen}`))];
  const rows = keys.map((key) => {
    const [group, batch, qLen] = key.split("/").map(Number);
    const line = kvLens.map((kv) => {
      const p = points.find((q) => q.group === group && q.batch === batch && q.qLen === qLen && q.kvLen === kv);
      const s = p ? decodingSpeedup(p) : null;
      return s === null ? "-" : `${s.toFixed(2)}${p!.autoTemplate === "flash_decoding" ? "*" : " "}`;
    });
    const from = winsFrom(points.filter((q) => q.group === group && q.batch === batch && q.qLen === qLen));
    return [String(group), String(batch), String(qLen), ...line, from === null ? "never" : `kv >= ${from}`];
  });
  const table = formatTable(["G", "B", "q_len", ...kvLens.map((kv) => `kv ${kv}`), "decoding wins"], rows, ["r", "r", "r", ...kvLens.map(() => "r" as const), "l"]);
  const misses = autoMisses(points);
  const verdict = misses.length === 0
    ? `auto (q_len <= ${DECODE_MAX_Q_LEN}, kv_len >= ${AUTO.MIN_KV_LEN} or q_len == 1) picks the faster template at every point (ties within 5% count as either)`
    : `auto (q_len <= ${DECODE_MAX_Q_LEN}, kv_len >= ${AUTO.MIN_KV_LEN} or q_len == 1) picks the slower template (by > 5%) at ${misses.length} of ${points.length} points: ${misses.map((p) => `G${p.group} B${p.batch} q${p.qLen} kv${p.kvLen}`).join(", ")}`;
  return [
    "Template choice sweep (bf16, D 128, Hkv 8): flash_attention time / flash_decoding time; above 1 decoding wins; * = auto picks decoding",
    table,
    `  ${verdict}`,
  ].join("\n");
}

/** The shortest kv_len from which decoding wins at every longer kv_len measured, or null. */
function winsFrom(points: readonly SweepPoint[]): number | null {
  const sorted = [...points].sort((a, b) => a.kvLen - b.kvLen);
  let from: number | null = null;
  for (const p of sorted) {
    const s = decodingSpeedup(p);
    if (s !== null && s > 1) from ??= p.kvLen;
    else from = null;
  }
  return from;
}
