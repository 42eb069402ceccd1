import type { CaseRequest, CaseResult } from "./benchCase.js";
import type { MachineSummary } from "./benchResults.js";

/** What a suite needs from the run: the machine's figures, a way to measure a case, and somewhere to report. */
export interface BenchContext {
  readonly quick: boolean;
  readonly machine: MachineSummary;
  /** Measures one case in a fresh process (and keeps its raw result for the results file). */
  measure<R extends CaseResult>(request: CaseRequest): Promise<R>;
  /** Progress for the person waiting (stderr). */
  log(line: string): void;
}
