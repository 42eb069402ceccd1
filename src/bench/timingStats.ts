/** Summary of repeated timings: the median is the figure, min/max and the quartiles show the spread. */
export interface TimingStats {
  runs: number;
  medianMs: number;
  minMs: number;
  maxMs: number;
  /** First and third quartiles (linear interpolation). */
  q1Ms: number;
  q3Ms: number;
}

export function timingStats(samplesMs: readonly number[]): TimingStats {
  if (samplesMs.length === 0) throw new RangeError("timingStats needs at least one sample");
  const sorted = [...samplesMs].sort((a, b) => a - b);
  return {
    runs: sorted.length,
    medianMs: quantile(sorted, 0.5),
    minMs: sorted[0],
    maxMs: sorted[sorted.length - 1],
    q1Ms: quantile(sorted, 0.25),
    q3Ms: quantile(sorted, 0.75),
  };
}

/** The q-quantile of ascending `sorted`, interpolating between neighbours. */
export function quantile(sorted: readonly number[], q: number): number {
  const at = (sorted.length - 1) * q;
  const lo = Math.floor(at);
  const hi = Math.ceil(at);
  return sorted[lo] + (sorted[hi] - sorted[lo]) * (at - lo);
}
