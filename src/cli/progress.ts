import type { CliIO } from "./io.js";

/**
 * A one-line status on an interactive terminal (a spinner while something runs), nothing at all in a pipe or
 * under CI, so piped output stays clean.
 */
export async function withProgress<T>(io: CliIO, label: string, work: () => Promise<T>): Promise<T> {
  if (!io.interactive) return work();
  const frames = ["|", "/", "-", "\\"];
  let i = 0;
  const started = Date.now();
  const draw = () => io.err(`\r${frames[i++ % frames.length]} ${label} ${((Date.now() - started) / 1000).toFixed(1)}s`);
  draw();
  const timer = setInterval(draw, 120);
  try {
    return await work();
  } finally {
    clearInterval(timer);
    io.err(`\r\x1b[2K`);
  }
}
