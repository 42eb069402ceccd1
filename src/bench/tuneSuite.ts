/**
 * Where tuning beats the heuristic: tunes a few calls (nothing is stored), then times the heuristic's choice and
 * the tuned one again in a fresh process, interleaved, so the comparison does not trust the tuner's own figures.
 */
import type { TensorDType } from "../ir/graph.js";
import { parseSpec } from "../ir/spec.js";
import type { KernelCaseRequest, ResultOf } from "./benchCase.js";
import type { BenchCall } from "./benchInputs.js";
import type { BenchContext } from "./benchContext.js";
import type { TuneRow } from "./benchResults.js";
import { type AttentionShape, DTYPE_SHORT, benchSpec } from "./benchSpecs.js";
import { formatTable, ms, ratio } from "./formatTable.js";
import type { TuneCandidates } from "./tuneCandidates.js";
import { tuneKernel } from "./tuneKernel.js";

interface TuneCase {
  shape: AttentionShape;
  call: BenchCall;
  candidates?: Partial<TuneCandidates>;
}

const decode = (dtype: TensorDType, group: number, kvLen: number): TuneCase => ({
  shape: { dtype, hq: 8 * group, hkv: 8, headDim: 128, causal: false },
  call: { batch: 1, qLen: 1, kvLen },
});

/** Quick: one decode call and one extra block size. Full: two decode calls and a causal prefill. */
export function tuneCases(quick: boolean): TuneCase[] {
  if (quick) return [{ ...decode("bfloat16", 4, 4096), candidates: { blockSizes: [[128, 128], [128, 64]] } }];
  return [
    decode("bfloat16", 4, 4096),
    decode("float32", 1, 16384),
    { shape: { dtype: "float32", hq: 32, hkv: 8, headDim: 128, causal: true }, call: { batch: 1, qLen: 1024, kvLen: 1024 } },
  ];
}

export async function runTune(ctx: BenchContext): Promise<TuneRow[]> {
  const rows: TuneRow[] = [];
  const cases = tuneCases(ctx.quick);
  for (const [i, c] of cases.entries()) {
    const id = `tune ${DTYPE_SHORT[c.shape.dtype]} G${c.shape.hq / c.shape.hkv}${c.shape.causal ? " causal" : ""} B${c.call.batch} q${c.call.qLen} kv${c.call.kvLen}`;
    ctx.log(`[tune ${i + 1}/${cases.length}] ${id}`);
    const spec = benchSpec(c.shape);
    const tuned = await tuneKernel(parseSpec(spec), { call: c.call, candidates: c.candidates, runs: ctx.quick ? 3 : 5, onProgress: (line) => ctx.log(`  ${line}`) });
    const best = tuned.best;
    const request: KernelCaseRequest = {
      kind: "kernel",
      id,
      spec,
      call: c.call,
      variants: [
        { label: "heuristic" },
        {
          label: "tuned",
          template: best.template,
          numThreads: best.numThreads,
          blockSize: [best.qBlock, best.kvBlock],
          ...(best.template === "flash_decoding" ? { partitionSize: best.partitionSize } : {}),
        },
      ],
      timing: ctx.quick ? { warmup: 2, minRuns: 5, maxRuns: 50, budgetMs: 1_000 } : { warmup: 2, minRuns: 10, maxRuns: 200, budgetMs: 6_000 },
      seed: 100 + i,
    };
    const result = await ctx.measure<ResultOf<"kernel">>(request);
    const [h, t] = result.variants;
    const describe = (v: { template: string; qBlock: number; kvBlock: number; partitionSize: number | null; numThreads: number }) =>
      `${v.template} ${v.qBlock}x${v.kvBlock}${v.partitionSize !== null ? ` p${v.partitionSize}` : ""}${v.numThreads ? ` t${v.numThreads}` : ""}`;
    rows.push({
      id,
      call: c.call,
      heuristic: describe(h),
      tuned: describe(t),
      heuristicMs: h.stats?.medianMs ?? null,
      tunedMs: t.stats?.medianMs ?? null,
      speedup: h.stats && t.stats ? h.stats.medianMs / t.stats.medianMs : null,
      trials: tuned.trials.length,
    });
  }
  return rows;
}

export function formatTune(rows: readonly TuneRow[]): string {
  if (rows.length === 0) return "";
  const table = formatTable(
    ["case", "heuristic", "tuned", "heuristic ms", "tuned ms", "speedup", "trials"],
    rows.map((r) => [r.id, r.heuristic, r.tuned, ms(r.heuristicMs), ms(r.tunedMs), ratio(r.speedup), String(r.trials)]),
    ["l", "l", "l", "r", "r", "r", "r"],
  );
  return ["Tuning (minductor tune's pick against the heuristic, re-measured in a fresh process)", table].join("\n");
}
