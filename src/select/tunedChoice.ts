import type { TemplateName } from "../ir/graph.js";
import type { CallFeatures, Choice, Clause } from "./features.js";

/** The choice `minductor tune` measured fastest on this machine for one shape bucket of one graph. */
export interface TunedChoice {
  readonly template: TemplateName;
  /** Block sizes are compile-time: a tuned choice with other blocks runs a variant library of the graph. */
  readonly qBlock: number;
  readonly kvBlock: number;
  readonly partitionSize: number;
  readonly numThreads: number;
  /** Medians of the tuned choice and of the heuristic's own choice, measured in the same tuning run. */
  readonly tunedMs: number;
  readonly heuristicMs: number;
  /** ISO 8601 time of the tuning run. */
  readonly measuredAt: string;
  /** The call the tuning measured; the choice serves its whole bucket. */
  readonly shape: { readonly batch: number; readonly qLen: number; readonly kvLen: number };
}

const pow2Ceil = (n: number): number => 2 ** Math.ceil(Math.log2(Math.max(1, n)));

/**
 * Calls in one bucket share a tuned choice: B, q_len and kv_len rounded up to powers of two, and the thread
 * budget exactly. Rounding keeps a decode loop in one bucket between powers of two, where the best tiles and
 * partitions change little; the thread budget changes what is fastest, so it is never rounded.
 */
export function shapeBucket(f: Pick<CallFeatures, "batch" | "qLen" | "kvLen" | "threads">): string {
  return `B${pow2Ceil(f.batch)}.q${pow2Ceil(f.qLen)}.kv${pow2Ceil(f.kvLen)}.t${f.threads}`;
}

/** The Choice of a tuned entry, with the measurements that justify it as its reason. */
export function tunedPolicy(f: CallFeatures, tuned: TunedChoice): Choice {
  const speedup = tuned.heuristicMs / tuned.tunedMs;
  const clauses: Clause[] = [
    { name: "tuned choice for this shape bucket", value: `${shapeBucket(f)} (tuned at B = ${tuned.shape.batch}, q_len = ${tuned.shape.qLen}, kv_len = ${tuned.shape.kvLen})`, holds: true },
  ];
  return {
    template: tuned.template,
    policy: "tuned",
    qBlock: tuned.qBlock,
    kvBlock: tuned.kvBlock,
    partitionSize: tuned.partitionSize,
    numThreads: tuned.numThreads,
    clauses,
    reasons: [
      `measured fastest on this machine by \`minductor tune\` (${tuned.measuredAt}): ${ms(tuned.tunedMs)} vs ${ms(tuned.heuristicMs)} for the heuristic's choice (${speedup.toFixed(2)}x)`,
    ],
  };
}

const ms = (x: number): string => `${x < 10 ? x.toFixed(3) : x.toFixed(1)} ms`;
