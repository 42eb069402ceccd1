import { Command, CommanderError } from "commander";
import { firstLine } from "../ir/errors.js";
import { registerBench } from "./commands/bench.js";
import { registerCache } from "./commands/cache.js";
import { registerCompile } from "./commands/compile.js";
import { registerDemo } from "./commands/demo.js";
import { registerExplain } from "./commands/explain.js";
import { registerGolden } from "./commands/golden.js";
import { registerProbe } from "./commands/probe.js";
import { registerReference } from "./commands/reference.js";
import { registerRun } from "./commands/run.js";
import { registerTune } from "./commands/tune.js";
import { isUserError, UserError } from "./errors.js";
import { type CliIO, processIO } from "./io.js";

/** Exit codes: 0 ok, 1 a problem the user can fix (message on stderr), 2 an internal error. */
export const EXIT = { ok: 0, user: 1, internal: 2 } as const;

export function buildProgram(io: CliIO): Command {
  const program = new Command()
    .name("minductor")
    .description("Compile FlexAttention specs into fused C++ CPU kernels, run them, and check them against a float64 reference.")
    .version("0.1.0")
    .exitOverride()
    .configureOutput({ writeOut: (s) => io.out(s), writeErr: (s) => io.err(s) })
    .showHelpAfterError("(run with --help for usage)");
  registerExplain(program, io);
  registerReference(program, io);
  registerCompile(program, io);
  registerRun(program, io);
  registerCache(program, io);
  registerGolden(program, io);
  registerDemo(program, io);
  registerProbe(program, io);
  registerBench(program, io);
  registerTune(program, io);
  return program;
}

/** Runs the CLI and returns its exit code. */
export async function main(argv: string[], io: CliIO = processIO): Promise<number> {
  try {
    await buildProgram(io).parseAsync(argv);
    return EXIT.ok;
  } catch (e) {
    if (e instanceof CommanderError) return e.exitCode === 0 ? EXIT.ok : EXIT.user;
    if (isUserError(e)) {
      io.err(`minductor: ${process.env.MINDUCTOR_ONE_LINE_ERRORS ? firstLine(e.message) : e.message}\n`);
      if (e instanceof UserError && e.hint) io.err(`  hint: ${e.hint}\n`);
      return EXIT.user;
    }
    io.err(`minductor: internal error: ${e instanceof Error ? (e.stack ?? e.message) : String(e)}\n`);
    io.err("  this is a bug in minductor; please report it with the spec that triggered it\n");
    return EXIT.internal;
  }
}
