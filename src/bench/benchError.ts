/** A bench case could not be measured, or the bench was asked for something it cannot do. */
export class BenchError extends Error {
  readonly stage = "bench";
  constructor(detail: string) {
    super(`BenchError: ${detail}`);
    this.name = "BenchError";
  }
}
