import type { Command } from "commander";
import { clearCache, defaultCacheDir, listCache } from "../../compile/index.js";
import { type CliIO, printJson } from "../io.js";

export function registerCache(program: Command, io: CliIO): void {
  const cache = program.command("cache").description("inspect or clear the compiled-kernel cache ($MINDUCTOR_CACHE_DIR or ~/.cache/minductor)");
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
}
