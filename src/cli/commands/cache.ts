import { type Command, InvalidArgumentError } from "commander";
import { pruneCache } from "../../compile/cacheMaintenance.js";
import { clearCache, defaultCacheDir, listCache } from "../../compile/index.js";
import { type CliIO, printJson } from "../io.js";

export function registerCache(program: Command, io: CliIO): void {
  const cache = program.command("cache").description("inspect, prune or clear the compiled-kernel cache ($MINDUCTOR_CACHE_DIR or ~/.cache/minductor)");
  cache
    .command("path")
    .description("print the cache directory")
    .option("--json", "print machine-readable JSON")
    .action((opts: { json?: boolean }) => (opts.json ? printJson(io, { path: defaultCacheDir() }) : io.out(`${defaultCacheDir()}\n`)));
  cache
    .command("ls")
    .description("list cached kernels, newest first")
    .option("--json", "print machine-readable JSON")
    .action(async (opts: { json?: boolean }) => {
      const entries = await listCache();
      if (opts.json) return printJson(io, entries);
      for (const e of entries) io.out(`${e.key}  ${(e.bytes / 1024).toFixed(0).padStart(6)} KiB  ${e.mtime.toISOString()}\n`);
      io.out(`${entries.length} kernel(s) in ${defaultCacheDir()}\n`);
    });
  cache
    .command("clear")
    .description("remove every cached kernel")
    .option("--json", "print machine-readable JSON")
    .action(async (opts: { json?: boolean }) => {
      const removed = await clearCache();
      if (opts.json) printJson(io, { removed });
      else io.out(`removed ${removed} cached kernel(s) from ${defaultCacheDir()}\n`);
    });
  cache
    .command("prune")
    .description("remove least-recently-used kernels until the cache fits in a size (kernels in use by a running process stay)")
    .requiredOption("--max-size <size>", "the size to fit in: bytes, or a number with K, M or G (powers of 1024), e.g. 500M", parseByteSize)
    .option("--json", "print machine-readable JSON")
    .action(async (opts: { maxSize: number; json?: boolean }) => {
      const result = await pruneCache(opts.maxSize);
      if (opts.json) return printJson(io, result);
      for (const e of result.removed) io.out(`removed ${e.key}  ${formatBytes(e.bytes).padStart(9)}  last used ${e.lastUsed.toISOString()}\n`);
      for (const e of result.kept) io.out(`kept    ${e.key}  ${formatBytes(e.bytes).padStart(9)}  ${e.reason}\n`);
      const removedBytes = result.bytesBefore - result.bytesAfter;
      io.out(
        `removed ${result.removed.length} cached kernel(s) (${formatBytes(removedBytes)}) from ${defaultCacheDir()}; ` +
          `${formatBytes(result.bytesAfter)} left of at most ${formatBytes(result.maxBytes)}\n`,
      );
      if (result.bytesAfter > result.maxBytes) {
        io.err(`minductor: the cache is still over --max-size: ${result.kept.length} kernel(s) that running processes use were kept\n`);
      }
    });
}

const SIZE_UNITS: Readonly<Record<string, number>> = { "": 1, K: 1024, M: 1024 ** 2, G: 1024 ** 3 };

/** `--max-size`: bytes, or a number with a K/M/G suffix (powers of 1024, as du and sort -h), an optional B or iB. */
export function parseByteSize(text: string): number {
  const match = /^\s*(\d+(?:\.\d+)?)\s*(?:([KMG])(?:i?B)?|B)?\s*$/i.exec(text);
  const bytes = match ? Math.floor(Number(match[1]) * SIZE_UNITS[(match[2] ?? "").toUpperCase()]) : NaN;
  if (!Number.isSafeInteger(bytes)) {
    throw new InvalidArgumentError(`expected a size such as 500000, 800K, 10M or 2G, got '${text}'`);
  }
  return bytes;
}

function formatBytes(bytes: number): string {
  if (bytes < 1024) return `${bytes} B`;
  const [value, unit] = bytes < 1024 ** 2 ? [bytes / 1024, "KiB"] : bytes < 1024 ** 3 ? [bytes / 1024 ** 2, "MiB"] : [bytes / 1024 ** 3, "GiB"];
  return `${value.toFixed(1)} ${unit}`;
}
