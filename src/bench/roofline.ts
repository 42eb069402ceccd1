/**
 * The roofline of a call: the least time the machine can take for it, max(bytes / read bandwidth, FLOPs / FMA
 * peak), from the probe of the same run. Bytes are Q, K, V (each kv head once, an int8 cache's scales included) and
 * the output, each once; FLOPs are 2 * (D + Dv) per computed position. Every path of the kernels multiplies in fp32
 * FMAs today, so the fp32 FMA peak is the compute bound.
 */
import type { MachineProbe } from "./probeCache.js";

export interface Roofline {
  /** The least time, ms. */
  ms: number;
  /** Which bound sets it: the bytes ("memory") or the arithmetic ("compute"). */
  bound: "memory" | "compute";
  /** 100 * roofline time / measured median: how close the call comes to what the machine allows. */
  pct: number;
}

export function roofline(bytes: number, flops: number, medianMs: number, probe: MachineProbe): Roofline {
  const memoryMs = bytes / (probe.readBandwidthGBs.allThreads * 1e6);
  const computeMs = flops / (probe.fmaPeakGflops.allThreads * 1e6);
  const ms = Math.max(memoryMs, computeMs);
  return { ms, bound: memoryMs >= computeMs ? "memory" : "compute", pct: (100 * ms) / medianMs };
}

/** "0.912 mem" / "12.3 fma": the roofline time and its bound, for a table cell. */
export function formatRoofline(r: Roofline, ms: (x: number) => string): string {
  return `${ms(r.ms)} ${r.bound === "memory" ? "mem" : "fma"}`;
}
