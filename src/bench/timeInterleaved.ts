import type { TimingSettings } from "./benchCase.js";

/** Timings of one runner: the untimed first call and the timed ones, or why it failed. */
export type Samples = { firstMs: number | null; times: number[] } | { error: string };

/**
 * Warms every runner up, fits the runs per runner into the time budget from the warm-up times, then times the
 * runners in interleaved rounds. Each round starts with the next runner: the first call after another one finds
 * OpenMP's threads in a different state (spinning or asleep), and rotating spreads that over all runners alike.
 * A runner that throws is dropped with its error; the others go on.
 */
export function timeInterleaved(runners: readonly (() => void)[], timing: TimingSettings): Samples[] {
  const samples: Samples[] = runners.map(() => ({ firstMs: null, times: [] }));
  const timeOne = (i: number): number | undefined => {
    const s = samples[i];
    if ("error" in s) return undefined;
    const started = performance.now();
    try {
      runners[i]();
    } catch (e) {
      samples[i] = { error: e instanceof Error ? e.message : String(e) };
      return undefined;
    }
    return performance.now() - started;
  };
  const estimate = runners.map(() => Infinity);
  for (let i = 0; i < runners.length; i++) {
    for (let w = 0; w < timing.warmup; w++) {
      const ms = timeOne(i);
      if (ms === undefined) break;
      const s = samples[i] as { firstMs: number | null };
      if (w === 0) s.firstMs = ms;
      // The fastest warm-up call: the first one also faults pages in and fills caches.
      estimate[i] = Math.min(estimate[i], ms);
    }
  }
  const share = timing.budgetMs / runners.length;
  const wanted = estimate.map((ms) => Math.min(timing.maxRuns, Math.max(timing.minRuns, Number.isFinite(ms) && ms > 0 ? Math.floor(share / ms) : timing.minRuns)));
  for (let round = 0; round < Math.max(...wanted); round++) {
    for (let k = 0; k < runners.length; k++) {
      const i = (round + k) % runners.length;
      if (round >= wanted[i]) continue;
      const ms = timeOne(i);
      if (ms !== undefined) (samples[i] as { times: number[] }).times.push(ms);
    }
  }
  return samples;
}
