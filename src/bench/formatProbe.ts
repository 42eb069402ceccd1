import type { MachineProbe } from "./probeCache.js";

/** A short table for `minductor probe`. */
export function formatProbe(p: MachineProbe): string {
  const all = `${p.threads} thread${p.threads === 1 ? "" : "s"}`;
  const rows: [string, string, string][] = [
    ["", "1 thread", all],
    ["read bandwidth (GB/s)", figure(p.readBandwidthGBs.oneThread), figure(p.readBandwidthGBs.allThreads)],
    ["fp32 FMA peak (GFLOP/s)", figure(p.fmaPeakGflops.oneThread), figure(p.fmaPeakGflops.allThreads)],
  ];
  if (p.bf16DotPeakGflops) {
    rows.push(["bf16 dot-product peak (GFLOP/s)", figure(p.bf16DotPeakGflops.oneThread), figure(p.bf16DotPeakGflops.allThreads)]);
  }
  if (p.amxBf16PeakGflops) {
    rows.push(["AMX-BF16 tile peak (GFLOP/s)", figure(p.amxBf16PeakGflops.oneThread), figure(p.amxBf16PeakGflops.allThreads)]);
  }
  if (p.int16DotPeakGflops) {
    rows.push(["int16 dot-product peak (GOP/s)", figure(p.int16DotPeakGflops.oneThread), figure(p.int16DotPeakGflops.allThreads)]);
  }
  const widths = [0, 1, 2].map((column) => Math.max(...rows.map((row) => row[column].length)));
  const table = rows.map(([label, one, many]) =>
    `${label.padEnd(widths[0])}  ${one.padStart(widths[1])}  ${many.padStart(widths[2])}`.trimEnd(),
  );
  return [`cpu: ${p.cpu} (${p.isa}), measured ${p.measuredAt}`, ...table].join("\n");
}

/** One decimal: the figures vary by more than that from run to run. */
export function figure(value: number): string {
  return value.toFixed(1);
}
