/**
 * A compact unified-style diff of two texts (longest common subsequence over lines), enough to show a reviewer
 * what changed in generated C++. Large inputs fall back to the first differing region.
 */
export function diffLines(before: string, after: string, opts: { context: number; maxLines: number }): string {
  const a = before.split("\n");
  const b = after.split("\n");
  // Trim the common prefix and suffix first: generated sources usually differ in a small region.
  let start = 0;
  while (start < a.length && start < b.length && a[start] === b[start]) start++;
  let endA = a.length;
  let endB = b.length;
  while (endA > start && endB > start && a[endA - 1] === b[endB - 1]) {
    endA--;
    endB--;
  }
  const midA = a.slice(start, endA);
  const midB = b.slice(start, endB);
  const ops = midA.length * midB.length <= 4_000_000 ? lcsDiff(midA, midB) : [...midA.map((l) => `-${l}`), ...midB.map((l) => `+${l}`)];
  const from = Math.max(0, start - opts.context);
  const lines = [
    `@@ line ${start + 1} @@`,
    ...a.slice(from, start).map((l) => ` ${l}`),
    ...ops,
    ...a.slice(endA, endA + opts.context).map((l) => ` ${l}`),
  ];
  return (lines.length > opts.maxLines ? [...lines.slice(0, opts.maxLines), `... (${lines.length - opts.maxLines} more lines)`] : lines).join("\n");
}

function lcsDiff(a: string[], b: string[]): string[] {
  const n = a.length;
  const m = b.length;
  const table = Array.from({ length: n + 1 }, () => new Uint32Array(m + 1));
  for (let i = n - 1; i >= 0; i--) {
    for (let j = m - 1; j >= 0; j--) table[i][j] = a[i] === b[j] ? table[i + 1][j + 1] + 1 : Math.max(table[i + 1][j], table[i][j + 1]);
  }
  const out: string[] = [];
  let i = 0;
  let j = 0;
  while (i < n && j < m) {
    if (a[i] === b[j]) {
      out.push(` ${a[i]}`);
      i++;
      j++;
    } else if (table[i + 1][j] >= table[i][j + 1]) out.push(`-${a[i++]}`);
    else out.push(`+${b[j++]}`);
  }
  while (i < n) out.push(`-${a[i++]}`);
  while (j < m) out.push(`+${b[j++]}`);
  return out;
}
