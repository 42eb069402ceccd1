import { chmod, mkdtemp, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import * as koffi from "koffi";

/** The smallest library that proves a compile worked: load it and ask it. */
export const ANSWER_SOURCE = 'extern "C" int md_answer() { return 42; }\n';

export function answerSource(value: number): string {
  return `extern "C" int md_answer() { return ${value}; }\n`;
}

/** Loads a compiled library and calls its md_answer(). */
export function callAnswer(soPath: string): number {
  const library = koffi.load(soPath);
  try {
    return library.func("int md_answer()")() as number;
  } finally {
    library.unload();
  }
}

/** A fresh temp dir per test; returns it and a cleanup. */
export async function freshDir(tag: string): Promise<{ dir: string; cleanup: () => Promise<void> }> {
  const dir = await mkdtemp(join(tmpdir(), `minductor-${tag}-`));
  return { dir, cleanup: () => rm(dir, { recursive: true, force: true }) };
}

/**
 * A stand-in for g++ that forwards to it, and when it is asked to build a library (argv has `-o`) can count the
 * build (MD_TEST_COUNT=file), slow it down (MD_TEST_SLEEP=seconds) or hang forever after recording its pid
 * (MD_TEST_HANG=file), so tests can observe and interrupt builds.
 */
export async function writeCompilerWrapper(dir: string): Promise<string> {
  const path = join(dir, "wrapped-g++");
  await writeFile(
    path,
    `#!/bin/sh
case " $* " in
  *" -o "*)
    if [ -n "$MD_TEST_COUNT" ]; then echo build >> "$MD_TEST_COUNT"; fi
    if [ -n "$MD_TEST_SLEEP" ]; then sleep "$MD_TEST_SLEEP"; fi
    if [ -n "$MD_TEST_HANG" ]; then echo $$ > "$MD_TEST_HANG.tmp"; mv "$MD_TEST_HANG.tmp" "$MD_TEST_HANG"; exec sleep 120; fi
    ;;
esac
exec g++ "$@"
`,
  );
  await chmod(path, 0o755);
  return path;
}
