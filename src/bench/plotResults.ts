/**
 * `--plot FILE.svg`: the run as charts, drawn by vega-lite (compiled to vega, rendered to SVG in Node without a
 * canvas): a roofline against the probe's bandwidth and FMA peak, the template comparisons, the decode sweep and
 * the tuning results. Only the views with data in this run are drawn.
 */
import { writeFile } from "node:fs/promises";
import type { TopLevelSpec } from "vega-lite";
import type { CaseResult } from "./benchCase.js";
import type { BenchResults } from "./benchResults.js";
import { decodingSpeedup } from "./sweepSuite.js";

type Kernel = Extract<CaseResult, { kind: "kernel" }>;
/** One chart of the column: a vega-lite unit, layer or facet spec. */
type View_ = Extract<TopLevelSpec, { vconcat: unknown }>["vconcat"][number];

const WIDTH = 560;

/** Log-spaced arithmetic intensities (FLOP/byte) for drawing the roof. */
function intensities(from: number, to: number, n = 80): number[] {
  return Array.from({ length: n }, (_, i) => from * (to / from) ** (i / (n - 1)));
}

function suiteOf(id: string): string {
  return id.split(" ")[0];
}

/** Kernel cases of the prefill and decode suites, or of `minductor bench <spec>`: everything but the sweep and tuning. */
function measuredKernels(r: BenchResults): Kernel[] {
  return r.cases.filter((c): c is Kernel => c.kind === "kernel" && !["sweep", "tune"].includes(suiteOf(c.id)));
}

function rooflineView(r: BenchResults): View_ | undefined {
  const kernels = measuredKernels(r);
  const points = kernels.flatMap((c) =>
    c.variants.filter((v) => v.stats).map((v) => ({
      case: c.id,
      series: `${suiteOf(c.id)} ${v.label === "auto" ? `(chosen: ${v.template})` : v.label}`,
      intensity: c.work.flops / c.work.minBytes,
      gflops: c.work.flops / (v.stats!.medianMs * 1e6),
      gbs: c.work.minBytes / (v.stats!.medianMs * 1e6),
    })),
  );
  if (points.length === 0) return undefined;
  const { readBandwidthGBs, fmaPeakGflops } = r.machine.probe;
  const bw = readBandwidthGBs.allThreads;
  const peak = fmaPeakGflops.allThreads;
  const lo = Math.min(0.05, ...points.map((p) => p.intensity / 2));
  const hi = Math.max(2000, ...points.map((p) => p.intensity * 2));
  const roof = intensities(lo, hi).map((x) => ({ intensity: x, gflops: Math.min(peak, bw * x), series: `roofline: ${bw.toFixed(1)} GB/s, ${peak.toFixed(0)} GFLOP/s` }));
  const x = { field: "intensity", type: "quantitative", scale: { type: "log" }, title: "arithmetic intensity (FLOP per byte of Q, K, V and output)" } as const;
  const y = { field: "gflops", type: "quantitative", scale: { type: "log" }, title: "GFLOP/s (computed blocks)" } as const;
  return {
    title: "Roofline: achieved GFLOP/s against the probe's read bandwidth and fp32 FMA peak",
    width: WIDTH,
    height: 320,
    layer: [
      { data: { values: roof }, mark: { type: "line", strokeDash: [6, 3], color: "#555" }, encoding: { x, y, detail: { field: "series" } } },
      {
        data: { values: roof.slice(-1) },
        mark: { type: "text", align: "right", dy: -8, color: "#555" },
        encoding: { x, y, text: { field: "series" } },
      },
      {
        data: { values: points },
        mark: { type: "point", filled: true, size: 70 },
        encoding: {
          x,
          y,
          color: { field: "series", type: "nominal", title: "measured" },
          shape: { field: "series", type: "nominal", title: "measured" },
        },
      },
    ],
    resolve: { scale: { color: "independent", shape: "independent" } },
  };
}

function comparisonView(r: BenchResults): View_ | undefined {
  const kernels = measuredKernels(r).filter((c) => c.variants.length > 1);
  const bars = kernels.flatMap((c) => {
    const chosen = c.variants[0].stats;
    if (!chosen) return [];
    return c.variants.slice(1).filter((v) => v.stats).map((v) => ({
      case: c.id,
      variant: v.label,
      ratio: v.stats!.medianMs / chosen.medianMs,
    }));
  });
  if (bars.length === 0) return undefined;
  return {
    title: "Templates: time of each alternative / time of the selector's choice (same process, interleaved; > 1: the choice is faster)",
    width: WIDTH,
    data: { values: bars },
    layer: [
      {
        mark: "bar",
        encoding: {
          y: { field: "case", type: "nominal", title: null, sort: null },
          yOffset: { field: "variant", type: "nominal" },
          // Bars grow from 1 (as fast as the choice), so a log scale shows slower and faster alike.
          x: { field: "ratio", type: "quantitative", scale: { type: "log" }, title: "time / time of the chosen template (log)" },
          x2: { datum: 1 },
          color: { field: "variant", type: "nominal", title: "alternative" },
        },
      },
      { mark: { type: "rule", color: "#333" }, encoding: { x: { datum: 1 } } },
    ],
  };
}

function sweepView(r: BenchResults): View_ | undefined {
  const values = r.sweep.flatMap((p) => {
    const s = decodingSpeedup(p);
    return s === null ? [] : [{ panel: `G ${p.group}, B ${p.batch}`, qLen: `q_len ${p.qLen}`, kvLen: p.kvLen, speedup: s }];
  });
  if (values.length === 0) return undefined;
  return {
    title: "flash_decoding vs flash_attention: time of attention / time of decoding (> 1: decoding wins)",
    data: { values },
    facet: { column: { field: "panel", type: "nominal", title: null } },
    spec: {
      width: Math.floor(WIDTH / 2),
      height: 220,
      layer: [
        {
          mark: { type: "line", point: true },
          encoding: {
            x: { field: "kvLen", type: "quantitative", scale: { type: "log", base: 2 }, title: "kv_len" },
            y: { field: "speedup", type: "quantitative", scale: { type: "log" }, title: "attention ms / decoding ms" },
            color: { field: "qLen", type: "nominal", title: "query rows", sort: null },
          },
        },
        { mark: { type: "rule", strokeDash: [4, 4], color: "#555" }, encoding: { y: { datum: 1 } } },
      ],
    },
  };
}

function tuneView(r: BenchResults): View_ | undefined {
  const values = r.tune.flatMap((t) => [
    ...(t.heuristicMs === null ? [] : [{ case: t.id, choice: "heuristic", ms: t.heuristicMs }]),
    ...(t.tunedMs === null ? [] : [{ case: t.id, choice: "tuned", ms: t.tunedMs }]),
  ]);
  if (values.length === 0) return undefined;
  return {
    title: "Tuning: the heuristic's choice against minductor tune's (re-measured in a fresh process)",
    width: WIDTH,
    data: { values },
    mark: "bar",
    encoding: {
      y: { field: "case", type: "nominal", title: null },
      yOffset: { field: "choice", type: "nominal" },
      x: { field: "ms", type: "quantitative", title: "median ms" },
      color: { field: "choice", type: "nominal", title: "choice" },
    },
  };
}

/** The vega-lite spec of a run's charts. */
export function plotSpec(r: BenchResults): TopLevelSpec {
  const views = [rooflineView(r), comparisonView(r), sweepView(r), tuneView(r)].filter((v): v is View_ => v !== undefined);
  if (views.length === 0) views.push({ title: "no kernel measurements in this run", mark: "text", data: { values: [{}] } });
  return {
    $schema: "https://vega.github.io/schema/vega-lite/v6.json",
    title: { text: `minductor bench ${r.startedAt}`, subtitle: `${r.machine.probe.cpu}, ${r.machine.threads} thread(s), ${r.machine.probe.isa}, load average ${(r.machine.loadAverage ?? 0).toFixed(1)} at the start` },
    // Case names are long and say what was measured, so they are never cut short (without a canvas, vega
    // estimates text width at 0.8 em per character, well above the real width).
    config: { font: "sans-serif", axis: { labelLimit: 640 }, legend: { labelLimit: 640 } },
    vconcat: views,
    resolve: { scale: { color: "independent", shape: "independent" } },
  };
}

/** The charts as SVG text. */
export async function renderPlot(r: BenchResults): Promise<string> {
  // Loaded only to draw: vega and vega-lite take hundreds of ms to import, and every CLI command imports this module.
  const [{ View, parse }, { compile: compileVegaLite }] = await Promise.all([import("vega"), import("vega-lite")]);
  const vega = compileVegaLite(plotSpec(r)).spec;
  const view = new View(parse(vega), { renderer: "none" });
  try {
    return await view.toSVG();
  } finally {
    view.finalize();
  }
}

export async function writePlot(path: string, r: BenchResults): Promise<void> {
  await writeFile(path, await renderPlot(r));
}
