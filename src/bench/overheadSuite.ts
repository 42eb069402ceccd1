/**
 * What surrounds the kernel: code generation, a cold g++ build, a cache hit in a fresh process (what every new
 * process pays to get a kernel), and the per-call cost of `run()` on a call too small to measure the kernel.
 */
import { existsSync, readFileSync, readdirSync } from "node:fs";
import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { templatesDir } from "../codegen/templatesDir.js";
import { compile } from "../index.js";
import type { ResultOf } from "./benchCase.js";
import type { BenchContext } from "./benchContext.js";
import type { OverheadFigures } from "./benchResults.js";
import { benchSpec } from "./benchSpecs.js";
import { formatTable, mark, ms, num } from "./formatTable.js";
import { timingStats } from "./timingStats.js";

const PREFILL = benchSpec({ dtype: "float32", hq: 32, hkv: 8, headDim: 128, causal: true });
const DECODE = benchSpec({ dtype: "bfloat16", hq: 32, hkv: 8, headDim: 128, causal: false });
const PEERS = benchSpec({ dtype: "float16", hq: 32, hkv: 2, headDim: 256, causal: false });
/** One head of 16 x 16: the kernel's own time is a few microseconds, the rest is the call's overhead. */
const TINY = { name: "bench_tiny", query: { shape: [1, 1, 16, 16], dtype: "float32" }, key: { shape: [1, 1, 16, 16], dtype: "float32" }, value: { shape: [1, 1, 16, 16], dtype: "float32" } };

export const OVERHEAD_TARGETS = { codegenMs: 20, cacheHitMs: 50, callUs: 50 } as const;

/** The example specs shipped with the package: kernels with buffers, paging and heavier mods. */
function exampleSpecs(): Record<string, unknown>[] {
  const dir = join(templatesDir(), "..", "..", "examples", "specs");
  if (!existsSync(dir)) return [];
  return readdirSync(dir).filter((f) => f.endsWith(".json")).sort().map((f) => JSON.parse(readFileSync(join(dir, f), "utf8")) as Record<string, unknown>);
}

export async function runOverhead(ctx: BenchContext): Promise<OverheadFigures> {
  const figures: OverheadFigures = { codegen: [], coldCompile: [], cacheHit: [], call: null };
  const codegenSpecs = [PREFILL, DECODE, PEERS, ...exampleSpecs()];
  for (const [i, spec] of codegenSpecs.entries()) {
    ctx.log(`[overhead codegen ${i + 1}/${codegenSpecs.length}] ${spec.name}`);
    const r = await ctx.measure<ResultOf<"codegen">>({ kind: "codegen", id: `codegen ${spec.name}`, spec, runs: ctx.quick ? 10 : 30 });
    figures.codegen.push({ spec: String(spec.name), firstMs: r.firstMs, medianMs: r.stats.medianMs });
  }

  const compileSpecs = ctx.quick ? [PREFILL] : [PREFILL, DECODE];
  for (const spec of compileSpecs) {
    ctx.log(`[overhead cold compile] ${spec.name} (fresh cache dir, g++ runs)`);
    const fresh = await mkdtemp(join(tmpdir(), "minductor-bench-cold-"));
    try {
      const r = await ctx.measure<ResultOf<"compile">>({ kind: "compile", id: `cold compile ${spec.name}`, spec, cacheDir: fresh });
      figures.coldCompile.push({ spec: String(spec.name), ms: r.ms, compilerProbeMs: r.compilerProbeMs });
    } finally {
      await rm(fresh, { recursive: true, force: true });
    }
  }

  const processes = ctx.quick ? 3 : 7;
  for (const spec of compileSpecs) {
    // Makes sure the shared cache holds it, so every child below is a hit.
    await compile(spec, { tuning: false });
    const hits: ResultOf<"compile">[] = [];
    for (let p = 0; p < processes; p++) {
      ctx.log(`[overhead cache hit ${p + 1}/${processes}] ${spec.name}`);
      hits.push(await ctx.measure<ResultOf<"compile">>({ kind: "compile", id: `cache hit ${spec.name}`, spec }));
    }
    const stats = timingStats(hits.map((h) => h.ms));
    figures.cacheHit.push({
      spec: String(spec.name),
      medianMs: stats.medianMs,
      minMs: stats.minMs,
      maxMs: stats.maxMs,
      compilerProbeMs: timingStats(hits.map((h) => h.compilerProbeMs)).medianMs,
      processes,
    });
  }

  ctx.log("[overhead run()] tiny call");
  const call = await ctx.measure<ResultOf<"call">>({
    kind: "call",
    id: "run() overhead",
    spec: TINY,
    call: { batch: 1, qLen: 16, kvLen: 16 },
    warmup: 200,
    runs: ctx.quick ? 1_000 : 5_000,
  });
  figures.call = { spec: TINY.name, shape: "B 1, Hq 1, Hkv 1, q_len 16, kv_len 16, D 16, fp32", template: call.template, stats: call.stats };
  return figures;
}

export function formatOverhead(o: OverheadFigures | null): string {
  if (!o) return "";
  const t = OVERHEAD_TARGETS;
  const rows: string[][] = [
    ...o.codegen.map((c) => [`codegen ${c.spec}`, `${ms(c.firstMs)} ms first, ${ms(c.medianMs)} ms warm`, `< ${t.codegenMs} ms`, mark(c.firstMs < t.codegenMs)]),
    ...o.coldCompile.map((c) => [`cold compile ${c.spec}`, `${num(c.ms / 1000, 2)} s (compiler probe ${ms(c.compilerProbeMs)} ms)`, "-", ""]),
    ...o.cacheHit.map((c) => [
      `cache-hit compile() ${c.spec}`,
      `${ms(c.medianMs)} ms (${ms(c.minMs)}..${ms(c.maxMs)}, ${c.processes} fresh processes; compiler probe ${ms(c.compilerProbeMs)} ms)`,
      `< ${t.cacheHitMs} ms`,
      mark(c.medianMs < t.cacheHitMs),
    ]),
  ];
  if (o.call) {
    const us = (x: number) => `${(x * 1000).toFixed(1)}`;
    rows.push([
      `run() ${o.call.shape}`,
      `${us(o.call.stats.medianMs)} us median (q1 ${us(o.call.stats.q1Ms)}, q3 ${us(o.call.stats.q3Ms)}, ${o.call.stats.runs} calls; kernel included)`,
      `< ${t.callUs} us`,
      mark(o.call.stats.medianMs * 1000 < t.callUs),
    ]);
  }
  return ["Overhead (codegen: generate(graph) in a fresh process, first call and warm median)", formatTable(["what", "measured", "target", ""], rows)].join("\n");
}
