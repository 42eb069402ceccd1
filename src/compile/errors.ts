/** g++ rejected a generated source; the source is kept so the failure can be reproduced by hand. */
export class CompileError extends Error {
  readonly stage = "compile";
  constructor(
    readonly stderr: string,
    readonly sourcePath: string,
    readonly argv: readonly string[],
    readonly exitCode: number | undefined,
  ) {
    super(formatCompileError(stderr, sourcePath, argv, exitCode));
    this.name = "CompileError";
  }
}

/** The configured C++ compiler is not on PATH (or not executable). */
export class CompilerNotFoundError extends Error {
  readonly stage = "compile";
  constructor(readonly cxx: string) {
    super(
      `CompilerNotFoundError: C++ compiler '${cxx}' was not found; install g++ ` +
        "(e.g. `apt-get install g++` or `dnf install gcc-c++`) or set MINDUCTOR_CXX to a compiler's path",
    );
    this.name = "CompilerNotFoundError";
  }
}

/** The compiler exists but failed to report its version or predefined macros (often a bad flag). */
export class CompilerProbeError extends Error {
  readonly stage = "compile";
  constructor(readonly argv: readonly string[], readonly stderr: string) {
    super(`CompilerProbeError: '${argv.join(" ")}' failed while probing the compiler: ${stderr.trim()}`);
    this.name = "CompilerProbeError";
  }
}

/** Neither the configured cache directory nor the temp-dir fallback can be written. */
export class CacheDirError extends Error {
  readonly stage = "compile";
  constructor(readonly cacheDir: string, readonly fallbackDir: string, readonly reason: string) {
    super(`CacheDirError: cannot write the kernel cache at '${cacheDir}' nor at the fallback '${fallbackDir}': ${reason}`);
    this.name = "CacheDirError";
  }
}

/** Another live process held a cache key's lock for longer than we are willing to wait. */
export class CacheLockTimeoutError extends Error {
  readonly stage = "compile";
  constructor(readonly lockPath: string, readonly waitedMs: number) {
    super(`CacheLockTimeoutError: lock '${lockPath}' is still held by a live process after ${Math.round(waitedMs)} ms`);
    this.name = "CacheLockTimeoutError";
  }
}

/** Keeps the message readable: the head of the compiler's output, the full text stays on `.stderr`. */
const STDERR_LINES_IN_MESSAGE = 30;

function formatCompileError(stderr: string, sourcePath: string, argv: readonly string[], exitCode?: number): string {
  const lines = stderr.trimEnd().split("\n");
  const head = lines.slice(0, STDERR_LINES_IN_MESSAGE).join("\n");
  const more = lines.length > STDERR_LINES_IN_MESSAGE ? `\n... (${lines.length - STDERR_LINES_IN_MESSAGE} more lines)` : "";
  const status = exitCode === undefined ? "failed" : `exited with status ${exitCode}`;
  return `CompileError: '${argv.join(" ")}' ${status}; source kept at ${sourcePath}\n${head}${more}`;
}
