/** The machine probe could not measure, or measured something it cannot vouch for. */
export class ProbeError extends Error {
  readonly stage = "bench";
  constructor(detail: string) {
    super(`ProbeError: ${detail}`);
    this.name = "ProbeError";
  }
}
