import { type FigurePair, type ProbeMeasurement, type ProbeSettings, measureWithLibrary } from "./probeLibrary.js";

/** Above this share of time off the CPU another process was competing for the cores. */
const MAX_OFF_CPU = 0.1;
/** All threads together never do much less than one alone, unless something else held some cores. */
const MIN_SCALING = 0.9;

export function isUndisturbed(m: ProbeMeasurement): boolean {
  return (
    m.offCpu <= MAX_OFF_CPU &&
    m.readBandwidthGBs.allThreads >= MIN_SCALING * m.readBandwidthGBs.oneThread &&
    m.fmaPeakGflops.allThreads >= MIN_SCALING * m.fmaPeakGflops.oneThread
  );
}

/**
 * Measures until an attempt looks undisturbed, at most `settings.attempts` times. Competing work only ever lowers a
 * figure, and each is already the best of several passes, so the best over attempts is the same estimator with
 * more passes. `undisturbed` says whether any attempt was clean.
 */
export async function measureSteadily(soPath: string, settings: ProbeSettings): Promise<ProbeMeasurement & { undisturbed: boolean }> {
  let best = await measureWithLibrary(soPath, settings);
  let undisturbed = isUndisturbed(best);
  for (let attempt = 1; attempt < settings.attempts && !undisturbed; attempt++) {
    const again = await measureWithLibrary(soPath, settings);
    undisturbed = isUndisturbed(again);
    best = {
      ...again,
      readBandwidthGBs: bestPair(best.readBandwidthGBs, again.readBandwidthGBs),
      fmaPeakGflops: bestPair(best.fmaPeakGflops, again.fmaPeakGflops),
      ...(best.bf16DotPeakGflops && again.bf16DotPeakGflops ? { bf16DotPeakGflops: bestPair(best.bf16DotPeakGflops, again.bf16DotPeakGflops) } : {}),
      ...(best.int16DotPeakGflops && again.int16DotPeakGflops ? { int16DotPeakGflops: bestPair(best.int16DotPeakGflops, again.int16DotPeakGflops) } : {}),
      ...(best.amxBf16PeakGflops && again.amxBf16PeakGflops ? { amxBf16PeakGflops: bestPair(best.amxBf16PeakGflops, again.amxBf16PeakGflops) } : {}),
      offCpu: Math.min(best.offCpu, again.offCpu),
    };
  }
  return { ...best, undisturbed };
}

function bestPair(a: FigurePair, b: FigurePair): FigurePair {
  return { oneThread: Math.max(a.oneThread, b.oneThread), allThreads: Math.max(a.allThreads, b.allThreads) };
}
