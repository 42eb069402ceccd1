import { existsSync } from "node:fs";
import { chmod, mkdir, mkdtemp, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { delimiter, join } from "node:path";
import { pathToFileURL } from "node:url";
import { execa } from "execa";
import * as koffi from "koffi";

/**
 * The `-fuse-ld=` flag compile() should add on this machine, found independently of its probe: the first of mold, lld
 * and gold whose `ld.<name>` is on PATH (the compiler drivers look for it there), else none.
 */
export function expectedLinkerFlags(): string[] {
  const dirs = (process.env.PATH ?? "").split(delimiter).filter(Boolean);
  const name = ["mold", "lld", "gold"].find((linker) => dirs.some((dir) => existsSync(join(dir, `ld.${linker}`))));
  return name ? [`-fuse-ld=${name}`] : [];
}

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
 * (MD_TEST_HANG=file; only a run whose argv contains MD_TEST_HANG_ON, when set), so tests can observe and
 * interrupt builds.
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
    case " $* " in *"$MD_TEST_HANG_ON"*) hang=1 ;; *) hang= ;; esac
    if [ -n "$MD_TEST_HANG" ] && [ -n "$hang" ]; then echo $$ > "$MD_TEST_HANG.tmp"; mv "$MD_TEST_HANG.tmp" "$MD_TEST_HANG"; exec sleep 120; fi
    ;;
esac
exec g++ "$@"
`,
  );
  await chmod(path, 0o755);
  return path;
}

/**
 * The compile stage as plain JavaScript for child processes, built once from the current sources into a private
 * dir inside the checkout (so `execa` resolves from the project's node_modules, and a stale or missing dist/
 * cannot decide a test), plus `child.mjs`: `node child.mjs <moduleUrl> <cacheDir> <cxx> <source> [<prelude JSON>]`
 * compiles and prints the CompiledLibrary as JSON. Remove `buildDir` when done.
 */
export async function buildCompileStageForChildren(tag: string): Promise<{ buildDir: string; moduleUrl: string }> {
  const repoRoot = join(import.meta.dirname, "..", "..");
  const buildDir = join(repoRoot, ".cache", `${tag}-build-${process.pid}`);
  await mkdir(buildDir, { recursive: true });
  const tsconfig = {
    extends: "../../tsconfig.json",
    compilerOptions: { rootDir: "../../src", outDir: "out", declaration: false, sourceMap: false },
    include: ["../../src/compile/**/*.ts"],
  };
  await writeFile(join(buildDir, "tsconfig.json"), JSON.stringify(tsconfig));
  await execa(join(repoRoot, "node_modules", ".bin", "tsc"), ["-p", join(buildDir, "tsconfig.json")]);
  await writeFile(
    join(buildDir, "child.mjs"),
    `const [moduleUrl, cacheDir, cxx, source, prelude] = process.argv.slice(2);
const { compileSource } = await import(moduleUrl);
process.stdout.write(JSON.stringify(await compileSource(source, { cacheDir, cxx, prelude: prelude ? JSON.parse(prelude) : undefined })));
`,
  );
  return { buildDir, moduleUrl: pathToFileURL(join(buildDir, "out", "compile", "index.js")).href };
}
