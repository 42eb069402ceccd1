/** Where a command writes; tests pass their own to capture output. */
export interface CliIO {
  out(text: string): void;
  err(text: string): void;
  /** True when stderr is a terminal: progress lines are shown only then. */
  readonly interactive: boolean;
}

export const processIO: CliIO = {
  out: (text) => void process.stdout.write(text),
  err: (text) => void process.stderr.write(text),
  interactive: Boolean(process.stderr.isTTY) && !process.env.CI,
};

export const printJson = (io: CliIO, value: unknown): void => io.out(`${JSON.stringify(value, jsonReplacer, 2)}\n`);

/** JSON has no -inf/NaN; print them as strings so nothing is silently lost. */
function jsonReplacer(_key: string, value: unknown): unknown {
  if (typeof value === "number" && !Number.isFinite(value)) return String(value);
  if (typeof value === "bigint") return value.toString();
  return value;
}
