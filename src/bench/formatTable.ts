/** Plain-text tables and number formats shared by the bench's reports. */

/** Columns padded to their widest cell; numeric-looking columns (`align` "r") are right-aligned. */
export function formatTable(header: readonly string[], rows: readonly (readonly string[])[], align: readonly ("l" | "r")[] = []): string {
  const widths = header.map((h, c) => Math.max(h.length, ...rows.map((r) => (r[c] ?? "").length)));
  const line = (cells: readonly string[]) =>
    cells.map((cell, c) => (align[c] === "r" ? cell.padStart(widths[c]) : cell.padEnd(widths[c]))).join("  ").trimEnd();
  return [line(header), line(widths.map((w) => "-".repeat(w))), ...rows.map(line)].join("\n");
}

/** Milliseconds with three significant digits at least, so 0.0123 and 1234 both read well. */
export function ms(x: number | null | undefined): string {
  if (x === null || x === undefined || !Number.isFinite(x)) return "-";
  if (x >= 100) return x.toFixed(0);
  if (x >= 10) return x.toFixed(1);
  if (x >= 1) return x.toFixed(2);
  return x.toPrecision(3);
}

export function ratio(x: number | null | undefined): string {
  return x === null || x === undefined || !Number.isFinite(x) ? "-" : `${x.toFixed(2)}x`;
}

export function pct(x: number | null | undefined): string {
  return x === null || x === undefined || !Number.isFinite(x) ? "-" : `${x.toFixed(0)}%`;
}

export function num(x: number | null | undefined, digits = 1): string {
  return x === null || x === undefined || !Number.isFinite(x) ? "-" : x.toFixed(digits);
}

/** Spread of a timing as min..max around the median, e.g. `12.3 (12.1..13.0)`. */
export function spread(s: { medianMs: number; minMs: number; maxMs: number }): string {
  return `${ms(s.medianMs)} (${ms(s.minMs)}..${ms(s.maxMs)})`;
}

export function mark(met: boolean | null): string {
  return met === null ? "n/a" : met ? "met" : "NOT MET";
}
