/** Where in the spec a problem is: a field path (`query.shape[1]`, `scoreMod`) and, for expressions, a column. */
export interface Location {
  readonly field: string;
  readonly column?: number;
  readonly source?: string;
}

/** A problem with the user's spec or mod, reported with its field and, for expressions, a caret under the column. */
export class SpecError extends Error {
  readonly stage = "spec";
  constructor(readonly problem: string, readonly location: Location, readonly hint?: string) {
    super(formatSpecError(problem, location, hint));
    this.name = "SpecError";
  }
}

function formatSpecError(problem: string, loc: Location, hint?: string): string {
  const where = loc.column !== undefined ? `${loc.field}:${loc.column + 1}` : loc.field;
  let text = `SpecError at ${where}: ${problem}`;
  if (loc.source !== undefined && loc.column !== undefined && loc.column >= 0) {
    text += `\n  ${loc.source}\n  ${" ".repeat(loc.column)}^`;
  }
  if (hint) text += `\n  hint: ${hint}`;
  return text;
}

/** The first line of an error message, for one-line CLI output. */
export function firstLine(message: string): string {
  return message.split("\n", 1)[0];
}
