/**
 * Decode: bandwidth-bound, judged in GB/s of unique K/V bytes (each kv head once) against the probe's read
 * bandwidth. Each case times the selector's choice and flash attention forced, in one process, interleaved.
 */
import type { TensorDType } from "../ir/graph.js";
import type { KernelCaseRequest, ResultOf, TimingSettings } from "./benchCase.js";
import type { BenchContext } from "./benchContext.js";
import type { DecodeRow } from "./benchResults.js";
import { type AttentionShape, DTYPE_SHORT, benchSpec } from "./benchSpecs.js";
import { formatTable, ms, num, pct, ratio, spread } from "./formatTable.js";
import type { MachineProbe } from "./probeCache.js";
import { atCaseBandwidth, bf16DotFlops, formatRoofline, roofline } from "./roofline.js";

interface DecodeCase {
  shape: AttentionShape;
  batch: number;
  kvLen: number;
}

const TIMING: Record<"quick" | "full", TimingSettings> = {
  quick: { warmup: 2, minRuns: 5, maxRuns: 50, budgetMs: 1_000 },
  full: { warmup: 3, minRuns: 10, maxRuns: 200, budgetMs: 4_000 },
};

const HKV = 8;
const HEAD_DIM = 128;

/** q_len 1, D 128, Hkv 8, G in {1, 4}, B in {1, 4}, kv_len in {4096, 16384}; quick: B 1 and kv 4096 only. */
export function decodeCases(quick: boolean): DecodeCase[] {
  const dtypes: TensorDType[] = quick ? ["float32", "bfloat16"] : ["float32", "bfloat16", "float16"];
  const cases: DecodeCase[] = [];
  for (const dtype of dtypes) {
    for (const group of [1, 4]) {
      for (const batch of quick ? [1] : [1, 4]) {
        for (const kvLen of quick ? [4096] : [4096, 16384]) {
          cases.push({ shape: { dtype, hq: HKV * group, hkv: HKV, headDim: HEAD_DIM, causal: false }, batch, kvLen });
        }
      }
    }
  }
  return cases;
}

export function decodeCaseId(c: DecodeCase): string {
  return `decode ${DTYPE_SHORT[c.shape.dtype]} G${c.shape.hq / c.shape.hkv} B${c.batch} kv${c.kvLen}`;
}

export async function runDecode(ctx: BenchContext): Promise<DecodeRow[]> {
  const rows: DecodeRow[] = [];
  const cases = decodeCases(ctx.quick);
  for (const [i, c] of cases.entries()) {
    const id = decodeCaseId(c);
    ctx.log(`[decode ${i + 1}/${cases.length}] ${id}`);
    const request: KernelCaseRequest = {
      kind: "kernel",
      id,
      spec: benchSpec(c.shape),
      call: { batch: c.batch, qLen: 1, kvLen: c.kvLen },
      variants: [{ label: "auto" }, { label: "flash_attention", template: "flash_attention" }],
      timing: TIMING[ctx.quick ? "quick" : "full"],
      seed: i,
      readPass: true,
    };
    rows.push(decodeRow(c, await ctx.measure<ResultOf<"kernel">>(request), ctx.machine.probe));
  }
  return rows;
}

function decodeRow(c: DecodeCase, result: ResultOf<"kernel">, runProbe: MachineProbe): DecodeRow {
  const [auto, attention] = result.variants;
  if (!auto.stats) throw new Error(`${result.id}: the selector's choice failed: ${auto.error}`);
  const gbs = result.work.kvBytes / (auto.stats.medianMs * 1e6);
  const probe = atCaseBandwidth(runProbe, result.read?.gbs);
  const bandwidthGBs = probe.readBandwidthGBs.allThreads;
  return {
    id: result.id,
    dtype: c.shape.dtype,
    group: c.shape.hq / c.shape.hkv,
    batch: c.batch,
    hkv: c.shape.hkv,
    headDim: c.shape.headDim,
    qLen: 1,
    kvLen: c.kvLen,
    template: auto.template,
    partitionSize: auto.partitionSize,
    stats: auto.stats,
    gbs,
    readGBs: result.read?.gbs ?? null,
    bandwidthPct: (100 * gbs) / bandwidthGBs,
    vsFlashAttention: attention.stats ? attention.stats.medianMs / auto.stats.medianMs : null,
    roofline: roofline(result.work.minBytes, result.work.flops, auto.stats.medianMs, probe,
      bf16DotFlops(auto.template, c.shape.dtype, c.shape.dtype, result.work.flops, {
        byteLookups: probe.bf16ByteLookups === true,
        gqaOnFma: probe.amxBf16PeakGflops !== undefined,
        g: c.shape.hq / c.shape.hkv,
        qDim: c.shape.headDim,
        vDim: c.shape.headDim,
      })),
  };
}

/** The bandwidth target of a decode row: 90% at G = 1, 80% with GQA packing (G = 4). */
export function bandwidthTarget(group: number): number {
  return group === 1 ? 90 : 80;
}

export function formatDecode(rows: readonly DecodeRow[]): string {
  if (rows.length === 0) return "";
  const table = formatTable(
    ["case", "template", "partition", "ms median (min..max)", "GB/s", "read GB/s", "% bandwidth", "target", "roofline ms", "% roofline", "flash_attention/chosen"],
    rows.map((r) => [
      r.id,
      r.template,
      r.partitionSize === null ? "-" : String(r.partitionSize),
      spread(r.stats),
      num(r.gbs),
      r.readGBs === null ? "-" : num(r.readGBs),
      pct(r.bandwidthPct),
      `>= ${bandwidthTarget(r.group)}%${r.bandwidthPct >= bandwidthTarget(r.group) ? "" : " (not met)"}`,
      formatRoofline(r.roofline, ms),
      pct(r.roofline.pct),
      ratio(r.vsFlashAttention),
    ]),
    ["l", "l", "r", "r", "r", "r", "r", "l", "r", "r", "r"],
  );
  return [
    "Decode (q_len 1; GB/s of unique K/V bytes, each kv head once, from input sets that together span 512 MiB; read GB/s: a 256 MiB read pass on all threads timed in the same rounds as the case, the bandwidth the % columns divide by; roofline: the least time for Q, K, V and the output at that bandwidth, or for the FLOPs at the fp32 FMA peak (bf16 K/V at the bf16 dot-product peak where the probe found one), whichever is longer)",
    table,
  ].join("\n");
}
