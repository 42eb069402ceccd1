/**
 * Prefill: FLOP-bound, judged in GFLOP/s over the computed blocks against the probe's peak for the path (fp32 FMA, or
 * bf16 dot products for a bf16 prefill where the probe found AVX512-BF16). Each case
 * times the selector's choice, the other template forced and the naive baseline in one process, interleaved.
 */
import type { TensorDType } from "../ir/graph.js";
import type { KernelCaseRequest, ResultOf, TimingSettings, VariantResult } from "./benchCase.js";
import type { BenchContext } from "./benchContext.js";
import type { PrefillRow } from "./benchResults.js";
import { type AttentionShape, DTYPE_SHORT, benchSpec } from "./benchSpecs.js";
import { formatTable, ms, num, pct, ratio, spread } from "./formatTable.js";
import type { MachineProbe } from "./probeCache.js";
import { amxTileFlops, bf16DotFlops, formatRoofline, roofline } from "./roofline.js";

interface PrefillCase {
  shape: AttentionShape;
  batch: number;
  qLen: number;
  kvLen: number;
}

const TIMING: Record<"quick" | "full", TimingSettings> = {
  quick: { warmup: 1, minRuns: 3, maxRuns: 10, budgetMs: 3_000 },
  full: { warmup: 1, minRuns: 5, maxRuns: 30, budgetMs: 20_000 },
};

/** Llama-style GQA (Hq 32, Hkv 8, D 128) at L = 2048 (quick: 512), and the peers' long-context fp16 case. */
export function prefillCases(quick: boolean): PrefillCase[] {
  const length = quick ? 512 : 2048;
  const llama = (dtype: TensorDType, causal: boolean): PrefillCase => ({
    shape: { dtype, hq: 32, hkv: 8, headDim: 128, causal },
    batch: 1,
    qLen: length,
    kvLen: length,
  });
  return [
    llama("float32", true),
    llama("float32", false),
    llama("bfloat16", true),
    llama("bfloat16", false),
    { shape: { dtype: "float16", hq: 32, hkv: 2, headDim: 256, causal: false }, batch: 1, qLen: quick ? 128 : 512, kvLen: quick ? 2500 : 10_000 },
  ];
}

export function prefillCaseId(c: PrefillCase): string {
  const s = c.shape;
  return `prefill ${DTYPE_SHORT[s.dtype]} ${s.causal ? "causal" : "full"} Hq${s.hq}/Hkv${s.hkv} D${s.headDim} B${c.batch} Lq${c.qLen} Lkv${c.kvLen}`;
}

export async function runPrefill(ctx: BenchContext): Promise<PrefillRow[]> {
  const rows: PrefillRow[] = [];
  const cases = prefillCases(ctx.quick);
  for (const [i, c] of cases.entries()) {
    const id = prefillCaseId(c);
    ctx.log(`[prefill ${i + 1}/${cases.length}] ${id}`);
    const request: KernelCaseRequest = {
      kind: "kernel",
      id,
      spec: benchSpec(c.shape),
      call: { batch: c.batch, qLen: c.qLen, kvLen: c.kvLen },
      // The selector picks flash attention for long queries; decoding is "the other template" here.
      variants: [{ label: "auto" }, { label: "flash_decoding", template: "flash_decoding" }, { label: "naive", template: "naive" }],
      timing: TIMING[ctx.quick ? "quick" : "full"],
      seed: i,
    };
    rows.push(prefillRow(c, await ctx.measure<ResultOf<"kernel">>(request), ctx.machine.probe));
  }
  return rows;
}

function prefillRow(c: PrefillCase, result: ResultOf<"kernel">, probe: MachineProbe): PrefillRow {
  const [auto, other, naive] = result.variants;
  if (!auto.stats) throw new Error(`${result.id}: the selector's choice failed: ${auto.error}`);
  const dotFlops = bf16DotFlops(auto.template, c.shape.dtype, c.shape.dtype, result.work.flops);
  const tileFlops = amxTileFlops(auto.template, c.shape.dtype, c.shape.dtype, result.work.flops, c.shape.headDim, probe);
  // The peak of the instructions the selected path uses: AMX tiles or bf16 dot products where it runs on them.
  const peakGflops =
    tileFlops > 0 ? probe.amxBf16PeakGflops!.allThreads : dotFlops > 0 && probe.bf16DotPeakGflops ? probe.bf16DotPeakGflops.allThreads : probe.fmaPeakGflops.allThreads;
  const gflops = result.work.flops / (auto.stats.medianMs * 1e6);
  const vs = (v: VariantResult) => (v.stats ? v.stats.medianMs / auto.stats!.medianMs : null);
  return {
    id: result.id,
    dtype: c.shape.dtype,
    causal: c.shape.causal,
    batch: c.batch,
    hq: c.shape.hq,
    hkv: c.shape.hkv,
    headDim: c.shape.headDim,
    qLen: c.qLen,
    kvLen: c.kvLen,
    template: auto.template,
    stats: auto.stats,
    gflops,
    peakPct: (100 * gflops) / peakGflops,
    computedFraction: result.work.computedPositions / result.work.densePositions,
    otherTemplate: other.template,
    vsOther: vs(other),
    vsNaive: vs(naive),
    roofline: roofline(result.work.minBytes, result.work.flops, auto.stats.medianMs, probe, dotFlops, 0, tileFlops),
    ...(other.error ? { otherError: other.error } : {}),
    ...(naive.error ? { naiveError: naive.error } : {}),
  };
}

/** Non-causal time / causal time for each causal row with a non-causal twin. */
export function causalSpeedups(rows: readonly PrefillRow[]): { row: PrefillRow; speedup: number }[] {
  return rows.filter((r) => r.causal).flatMap((r) => {
    const twin = rows.find((t) => !t.causal && t.dtype === r.dtype && t.hq === r.hq && t.hkv === r.hkv && t.headDim === r.headDim && t.qLen === r.qLen && t.kvLen === r.kvLen);
    return twin ? [{ row: r, speedup: twin.stats.medianMs / r.stats.medianMs }] : [];
  });
}

/** fp32 time / bf16 time for each bf16 row with an fp32 twin. */
/**
 * fp32 at least 70% of the FMA peak; bf16 at least 1.7x the fp32 speed where it runs on the bf16 dot products
 * (elsewhere it only has to beat fp32); causal at least 1.85x the speed of no mask on the same shape.
 */
export const PREFILL_TARGETS = { fp32PeakPct: 70, bf16DotSpeedup: 1.7, causalSpeedup: 1.85 } as const;

export function bf16Speedups(rows: readonly PrefillRow[]): { row: PrefillRow; speedup: number }[] {
  return rows.filter((r) => r.dtype === "bfloat16").flatMap((r) => {
    const twin = rows.find((t) => t.dtype === "float32" && t.causal === r.causal && t.hq === r.hq && t.hkv === r.hkv && t.headDim === r.headDim && t.qLen === r.qLen && t.kvLen === r.kvLen);
    return twin ? [{ row: r, speedup: twin.stats.medianMs / r.stats.medianMs }] : [];
  });
}

export function formatPrefill(rows: readonly PrefillRow[]): string {
  if (rows.length === 0) return "";
  const table = formatTable(
    ["case", "template", "ms median (min..max)", "GFLOP/s", "% peak", "roofline ms", "% roofline", "computed", "other/chosen", "naive/chosen"],
    rows.map((r) => [
      r.id,
      r.template,
      spread(r.stats),
      num(r.gflops),
      pct(r.peakPct),
      formatRoofline(r.roofline, ms),
      pct(r.roofline.pct),
      pct(100 * r.computedFraction),
      r.vsOther === null ? `failed: ${r.otherError ?? "?"}` : ratio(r.vsOther),
      r.vsNaive === null ? `failed: ${r.naiveError ?? "?"}` : ratio(r.vsNaive),
    ]),
    ["l", "l", "r", "r", "r", "r", "r", "r", "r", "r"],
  );
  const pairs = [
    ...causalSpeedups(rows).map(({ row, speedup }) => `causal vs full, ${DTYPE_SHORT[row.dtype as TensorDType]} L${row.qLen}: causal ${ratio(speedup)} faster (target >= ${PREFILL_TARGETS.causalSpeedup.toFixed(2)}x)`),
    ...bf16Speedups(rows).map(({ row, speedup }) => `bf16 vs fp32, ${row.causal ? "causal" : "full"} L${row.qLen}: bf16 ${ratio(speedup)} ${speedup >= 1 ? "faster" : "as fast (slower)"} (target ${row.roofline.dot || row.roofline.tile ? `>= ${PREFILL_TARGETS.bf16DotSpeedup.toFixed(2)}x` : "> 1.00x"})`),
  ];
  return [
    "Prefill (GFLOP/s over the computed blocks; % of the probe's peak for the path, all threads: fp32 FMA, or for bf16 AMX-BF16 tiles or else bf16 dot products where the probe found them; x/chosen: time of x over time of the chosen template, same process, interleaved)",
    table,
    ...pairs.map((p) => `  ${p}`),
  ].join("\n");
}
