/**
 * Serving: the inputs an inference engine hands over, each against the plain case it must keep up with, timed in
 * one process, interleaved.
 * - Layouts: q/k/v as BSHD views (a paged pool token-major) against contiguous BHSD, the same compiled kernel.
 * - 8-bit KV: int8, float8_e4m3fn and float8_e5m2 keys/values against bf16 ones of the same shape, in decode
 *   (bandwidth: unique K/V bytes with the int8 scales, against the probe's read bandwidth) and in prefill.
 * - Ragged: decode sequences and prefill chunks in one ragged call against one call per template.
 */
import type { QuantizedDType } from "../ir/graph.js";
import type { KernelCaseRequest, ResultOf, TimingSettings, VariantResult } from "./benchCase.js";
import type { BenchContext } from "./benchContext.js";
import type { LayoutRow, QuantizedRow, RaggedRow, ServingRows, TargetCheck } from "./benchResults.js";
import { benchSpec } from "./benchSpecs.js";
import { formatTable, mark, ms, num, pct, ratio, spread } from "./formatTable.js";
import type { MachineProbe } from "./probeCache.js";
import { amxTileFlops, atCaseBandwidth, bf16DotFlops, formatRoofline, int16DotFlops, roofline } from "./roofline.js";
import type { TimingStats } from "./timingStats.js";

const DECODE_TIMING: Record<"quick" | "full", TimingSettings> = {
  quick: { warmup: 2, minRuns: 5, maxRuns: 50, budgetMs: 1_500 },
  full: { warmup: 3, minRuns: 20, maxRuns: 300, budgetMs: 6_000 },
};
const PREFILL_TIMING: Record<"quick" | "full", TimingSettings> = {
  quick: { warmup: 1, minRuns: 3, maxRuns: 10, budgetMs: 3_000 },
  full: { warmup: 1, minRuns: 5, maxRuns: 30, budgetMs: 15_000 },
};

const HKV = 8;
const HEAD_DIM = 128;
const PAGE_SIZE = 16;
const QUANTIZED: readonly QuantizedDType[] = ["int8", "float8_e4m3fn", "float8_e5m2"];
/** Every serving case has a bf16 query; the 8-bit cases time a bf16 cache (the baseline, first) and each 8-bit one. */
const QUERY_DTYPE = "bfloat16";
const KV_VARIANTS = [{ label: "bfloat16" }, ...QUANTIZED.map((kvDtype) => ({ label: kvDtype, kvDtype }))];
const SHORT: Record<string, string> = { bfloat16: "bf16", int8: "int8", float8_e4m3fn: "e4m3fn", float8_e5m2: "e5m2" };

/** The targets: a strided layout within 10% of contiguous; 8-bit decode 1.7x bf16 and 85% of bandwidth; 8-bit
 * prefill (every format) within 15% of bf16; a ragged call at least as fast as the split calls. */
export const SERVING_TARGETS = { layoutRatio: 1.1, quantizedSpeedup: 1.7, quantizedBandwidthPct: 85, prefillRatio: 1.15, raggedRatio: 1.0 } as const;

export async function runServing(ctx: BenchContext): Promise<ServingRows> {
  const kvLen = ctx.quick ? 4096 : 16384;
  const rows: ServingRows = { layouts: [], quantized: [], ragged: [] };
  const probe = ctx.machine.probe;
  let seed = 0;
  // Decode cases time a read pass beside their variants: their bandwidth (src/bench/readPass.ts).
  const kernelCase = (id: string, spec: Record<string, unknown>, call: KernelCaseRequest["call"], variants: KernelCaseRequest["variants"], timing: TimingSettings) =>
    ctx.measure<ResultOf<"kernel">>({ kind: "kernel", id, spec, call, variants, timing, seed: seed++, readPass: call.qLen === 1 });

  const decodeTiming = DECODE_TIMING[ctx.quick ? "quick" : "full"];
  const cases = [1, 4].flatMap((group) => [false, true].map((paged) => ({ group, paged })));
  for (const [i, c] of cases.entries()) {
    const id = `layout bf16 G${c.group} B1 kv${kvLen}${c.paged ? ` paged${PAGE_SIZE}` : ""}`;
    ctx.log(`[serving layouts ${i + 1}/${cases.length}] ${id}`);
    const spec = benchSpec({ dtype: QUERY_DTYPE, hq: HKV * c.group, hkv: HKV, headDim: HEAD_DIM, causal: false }, c.paged ? PAGE_SIZE : undefined);
    const r = await kernelCase(id, spec, { batch: 1, qLen: 1, kvLen }, [{ label: "bhsd" }, { label: "bshd", layout: "bshd" }], decodeTiming);
    rows.layouts.push(layoutRow(r, c.group, c.paged));
  }

  for (const [i, group] of [1, 4].entries()) {
    const id = `8-bit decode G${group} B1 kv${kvLen}`;
    ctx.log(`[serving 8-bit ${i + 1}/3] ${id}`);
    const spec = benchSpec({ dtype: QUERY_DTYPE, hq: HKV * group, hkv: HKV, headDim: HEAD_DIM, causal: false });
    const r = await kernelCase(id, spec, { batch: 1, qLen: 1, kvLen }, KV_VARIANTS, decodeTiming);
    rows.quantized.push(...quantizedRows(r, "decode", group, kvLen, probe));
  }
  {
    const length = ctx.quick ? 512 : 2048;
    const id = `8-bit prefill Hq32/Hkv8 L${length}`;
    ctx.log(`[serving 8-bit 3/3] ${id}`);
    const spec = benchSpec({ dtype: QUERY_DTYPE, hq: 32, hkv: HKV, headDim: HEAD_DIM, causal: false });
    const r = await kernelCase(id, spec, { batch: 1, qLen: length, kvLen: length }, KV_VARIANTS, PREFILL_TIMING[ctx.quick ? "quick" : "full"]);
    rows.quantized.push(...quantizedRows(r, "prefill", 4, length, probe));
  }

  const scale = ctx.quick ? 4 : 1;
  const sequences = [
    ...Array.from({ length: 8 }, (_, b) => ({ qLen: 1, kvLen: (4096 + 512 * b) / scale })),
    { qLen: 128 / scale, kvLen: 1024 / scale },
    { qLen: 64 / scale, kvLen: 2048 / scale },
  ];
  const id = `ragged bf16 Hq32/Hkv8 paged${PAGE_SIZE}: 8 decode + 2 prefill chunks`;
  ctx.log(`[serving ragged 1/1] ${id}`);
  const r = await ctx.measure<ResultOf<"ragged">>({
    kind: "ragged",
    id,
    spec: benchSpec({ dtype: QUERY_DTYPE, hq: 32, hkv: HKV, headDim: HEAD_DIM, causal: false }, PAGE_SIZE),
    sequences,
    timing: decodeTiming,
    seed: seed++,
  });
  rows.ragged.push({
    id: r.id,
    sequences: sequences.map((s) => `${s.qLen}x${s.kvLen}`).join(" "),
    mixedTemplate: r.mixedTemplate,
    splitTemplates: r.splitTemplates,
    mixed: r.mixed.stats,
    split: r.split.stats,
    splitOverMixed: r.split.stats.medianMs / r.mixed.stats.medianMs,
  });
  return rows;
}

function statsOf(result: ResultOf<"kernel">, v: VariantResult): TimingStats {
  if (!v.stats) throw new Error(`${result.id}: variant ${v.label} failed: ${v.error}`);
  return v.stats;
}

function layoutRow(result: ResultOf<"kernel">, group: number, paged: boolean): LayoutRow {
  const [contiguous, strided] = result.variants;
  const a = statsOf(result, contiguous), b = statsOf(result, strided);
  return {
    id: result.id,
    group,
    paged,
    layout: paged ? "token-major pool [pages, pageSize, Hkv, D], q BSHD" : "BSHD views",
    template: strided.template,
    contiguous: a,
    strided: b,
    stridedOverContiguous: b.medianMs / a.medianMs,
  };
}

function quantizedRows(result: ResultOf<"kernel">, kind: "decode" | "prefill", group: number, kvLen: number, runProbe: MachineProbe): QuantizedRow[] {
  const baseline = statsOf(result, result.variants[0]);
  const probe = atCaseBandwidth(runProbe, result.read?.gbs);
  return result.variants.map((v) => {
    const stats = statsOf(result, v);
    const gbs = v.kvBytes / (stats.medianMs * 1e6);
    // The variant's bytes: the case's Q and output with this variant's K/V.
    const bytes = result.work.minBytes - result.work.kvBytes + v.kvBytes;
    return {
      id: result.id,
      kind,
      group,
      kvLen,
      kvDtype: v.label,
      template: v.template,
      stats,
      kvBytes: v.kvBytes,
      gbs,
      readGBs: result.read?.gbs ?? null,
      bandwidthPct: (100 * gbs) / probe.readBandwidthGBs.allThreads,
      speedupVsBf16: baseline.medianMs / stats.medianMs,
      roofline: roofline(bytes, result.work.flops, stats.medianMs, probe,
        bf16DotFlops(v.template, QUERY_DTYPE, v.label, result.work.flops, { byteLookups: probe.bf16ByteLookups === true, gqaOnFma: probe.amxBf16PeakGflops !== undefined, g: group, qDim: HEAD_DIM, vDim: HEAD_DIM }),
        int16DotFlops(v.template, QUERY_DTYPE, v.label, result.work.flops, HEAD_DIM, HEAD_DIM),
        amxTileFlops(v.template, QUERY_DTYPE, v.label, result.work.flops, HEAD_DIM, probe)),
    };
  });
}

export function checkServingTargets(rows: ServingRows | null): TargetCheck[] {
  const t = SERVING_TARGETS;
  const worst = <T>(items: readonly T[], value: (x: T) => number): T | undefined => items.reduce<T | undefined>((w, x) => (w === undefined || value(x) > value(w) ? x : w), undefined);
  const best = <T>(items: readonly T[], value: (x: T) => number): T | undefined => worst(items, (x) => -value(x));
  const layouts = rows?.layouts ?? [];
  const wl = worst(layouts, (r) => r.stridedOverContiguous);
  const q8 = (rows?.quantized ?? []).filter((r) => r.kind === "decode" && r.kvDtype !== "bfloat16");
  const ws = best(q8, (r) => r.speedupVsBf16);
  const wb = best(q8, (r) => r.bandwidthPct);
  const prefill = (rows?.quantized ?? []).filter((r) => r.kind === "prefill" && r.kvDtype !== "bfloat16");
  const wp = best(prefill, (r) => r.speedupVsBf16);
  const ragged = rows?.ragged ?? [];
  const wr = best(ragged, (r) => r.splitOverMixed);
  return [
    {
      name: "strided layouts vs contiguous (decode)",
      target: `<= ${t.layoutRatio.toFixed(2)}x the contiguous time`,
      measured: wl ? `worst ${ratio(wl.stridedOverContiguous)} (${wl.id})` : "-",
      met: wl ? layouts.every((r) => r.stridedOverContiguous <= t.layoutRatio) : null,
    },
    {
      name: "8-bit KV decode vs bf16",
      target: `>= ${t.quantizedSpeedup.toFixed(2)}x faster`,
      measured: ws ? `worst ${ratio(ws.speedupVsBf16)} (${SHORT[ws.kvDtype] ?? ws.kvDtype}, ${ws.id})` : "-",
      met: ws ? q8.every((r) => r.speedupVsBf16 >= t.quantizedSpeedup) : null,
    },
    {
      name: "8-bit KV decode bandwidth",
      target: `>= ${t.quantizedBandwidthPct}% of read bandwidth`,
      measured: wb ? `worst ${pct(wb.bandwidthPct)} (${SHORT[wb.kvDtype] ?? wb.kvDtype}, ${wb.id})` : "-",
      met: wb ? q8.every((r) => r.bandwidthPct >= t.quantizedBandwidthPct) : null,
    },
    {
      name: "8-bit KV prefill vs bf16",
      target: `<= ${t.prefillRatio.toFixed(2)}x the bf16 time`,
      measured: wp ? `worst ${ratio(1 / wp.speedupVsBf16)} (${SHORT[wp.kvDtype] ?? wp.kvDtype}, ${wp.id})` : "-",
      met: wp ? prefill.every((r) => 1 / r.speedupVsBf16 <= t.prefillRatio) : null,
    },
    {
      name: "ragged call vs one call per template",
      target: `split time / ragged time >= ${t.raggedRatio.toFixed(2)}`,
      measured: wr ? `${ratio(wr.splitOverMixed)} (${wr.id})` : "-",
      met: wr ? ragged.every((r) => r.splitOverMixed >= t.raggedRatio) : null,
    },
  ];
}

export function formatServing(rows: ServingRows | null): string {
  if (!rows || rows.layouts.length + rows.quantized.length + rows.ragged.length === 0) return "";
  const t = SERVING_TARGETS;
  const parts: string[] = [];
  if (rows.layouts.length > 0) {
    parts.push(
      "Layouts (decode, bf16; the same kernel on views of another storage order; strided/contiguous: medians, same process, interleaved)",
      formatTable(
        ["case", "strided layout", "template", "contiguous ms", "strided ms", "strided/contiguous", `<= ${t.layoutRatio.toFixed(2)}x`],
        rows.layouts.map((r) => [r.id, r.layout, r.template, spread(r.contiguous), spread(r.strided), ratio(r.stridedOverContiguous), mark(r.stridedOverContiguous <= t.layoutRatio)]),
        ["l", "l", "l", "r", "r", "r", "l"],
      ),
    );
  }
  if (rows.quantized.length > 0) {
    parts.push(
      "8-bit KV (query bf16; GB/s of unique K/V bytes with the int8 scales; read GB/s: a 256 MiB read pass timed in the same rounds as a decode case, the bandwidth its % columns divide by (the probe's for prefill); vs bf16: bf16 time / this time)",
      formatTable(
        ["case", "K/V", "template", "ms median (min..max)", "MB read", "GB/s", "read GB/s", "% bandwidth", "roofline ms", "% roofline", "vs bf16"],
        rows.quantized.map((r) => [
          r.id,
          SHORT[r.kvDtype] ?? r.kvDtype,
          r.template,
          spread(r.stats),
          num(r.kvBytes / 1e6),
          num(r.gbs),
          r.readGBs === null ? "-" : num(r.readGBs),
          r.kind === "decode" ? pct(r.bandwidthPct) : "-",
          formatRoofline(r.roofline, ms),
          pct(r.roofline.pct),
          ratio(r.speedupVsBf16),
        ]),
        ["l", "l", "l", "r", "r", "r", "r", "r", "r", "r", "r"],
      ),
    );
  }
  if (rows.ragged.length > 0) {
    parts.push(
      "Ragged batch (one call with every sequence, against one call per template timed as one step; same process, interleaved)",
      formatTable(
        ["case", "templates (ragged; split)", "ragged ms", "split ms", "split/ragged"],
        rows.ragged.map((r) => [r.id, `${r.mixedTemplate}; ${r.splitTemplates.join(" + ")}`, spread(r.mixed), spread(r.split), ratio(r.splitOverMixed)]),
        ["l", "l", "r", "r", "r"],
      ),
    );
  }
  return parts.join("\n");
}
