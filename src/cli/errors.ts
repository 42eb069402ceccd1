import { SpecError } from "../ir/errors.js";

/** A problem the user can fix (bad spec, bad inputs, missing file, missing compiler): exit code 1. */
export class UserError extends Error {
  constructor(message: string, readonly hint?: string) {
    super(message);
    this.name = "UserError";
  }
}

/** Errors that are the user's to fix, by class name, so the CLI need not import every later stage. */
const USER_ERRORS = new Set(["SpecError", "UserError", "InputError", "NpyError", "CompilerNotFoundError", "CompileError", "KernelRuntimeError", "BufferIndexError", "BenchError", "ProbeError"]);

export function isUserError(e: unknown): e is Error {
  if (e instanceof SpecError || e instanceof UserError) return true;
  if (e instanceof Error && USER_ERRORS.has(e.name)) return true;
  return e instanceof Error && (e as NodeJS.ErrnoException).code !== undefined && ["ENOENT", "EACCES", "EISDIR", "ENOTDIR"].includes((e as NodeJS.ErrnoException).code!);
}
