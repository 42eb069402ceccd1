import { createHash } from "node:crypto";
import { mkdirSync, readFileSync, renameSync, statSync, writeFileSync } from "node:fs";
import { mkdtemp, rm, writeFile } from "node:fs/promises";
import { cpus, tmpdir } from "node:os";
import { delimiter, isAbsolute, join } from "node:path";
import { CompilerNotFoundError, CompilerProbeError } from "./errors.js";
import { defaultCxxflags } from "./options.js";

export interface CompilerInfo {
  /** The full `cxx --version` text, so a compiler upgrade changes every cache key. */
  version: string;
  /** Sorted ISA feature macros the flags enable, e.g. `__AVX2__ __F16C__ __FMA__ ...`. */
  cpuFeatures: string;
  /** From the predefined macros: `__clang__` (clang, Apple clang, icpx), else `__GNUC__` (g++), else other. */
  family: "gcc" | "clang" | "other";
  /**
   * False when the flags ask for `-fopenmp` and a small OpenMP library does not build with them while it builds
   * without `-fopenmp` (clang without libomp, Apple's clang): compileSource then drops the flag. True otherwise,
   * including for flags without `-fopenmp` (nothing to drop).
   */
  openmp: boolean;
  /** Why OpenMP is unusable: the first lines of the compiler's complaint. Only when `openmp` is false. */
  openmpProblem?: string;
  /**
   * The faster linker builds add (`-fuse-ld=gold`), or "" when none links a library with these flags or the flags
   * choose one themselves (compilerArgv).
   */
  linker: string;
}

export const OPENMP_FLAG = "-fopenmp";

/**
 * Linkers tried in order of speed, each with `-fuse-ld=`: the first that links a small library with the kernels'
 * flags is used (probeLinker). GNU ld links an -O0 engine in about 0.15 s of CPU and gold in 0.05, out of about 0.9 s
 * for the whole build with the prelude precompiled (docs/benchmarks.md, "Links by gold"). The same code either way.
 */
const FAST_LINKERS = ["mold", "lld", "gold"];
const LINKER_FLAG = "-fuse-ld=";

/**
 * Macros that name an instruction-set feature or the target architecture. `-march=native` is the same argv on
 * every machine, so these macros are what tells an AVX2 build apart from an AVX-512 one in the cache key.
 */
const FEATURE_MACRO =
  /^__(?:(?:SSE\w*|SSSE3|AVX\w*|FMA4?|F16C|BMI2?|POPCNT|LZCNT|ABM|ADX|AES|PCLMUL|VPCLMULQDQ|VAES|SHA|GFNI|MOVBE|AMX\w*)__|ARM_NEON|ARM_FEATURE_\w+|ARM_ARCH|x86_64__|aarch64__|riscv_\w+)$/;

/** Memoised per (cxx, flags) for the life of the process: a compiler does not change under a running program. */
const infoByCompiler = new Map<string, Promise<CompilerInfo>>();

/**
 * The compiler's version, family, target features and OpenMP support. Asking costs three processes (~60 ms, plus a
 * small OpenMP build when the flags ask for it), which would dominate a
 * cache-hit `compile()` in a fresh process, so with `cacheDir` the answer is also kept on disk, keyed by the
 * compiler binary (path, size, mtime, inode), the flags and the CPU: upgrading or replacing the compiler, or
 * moving the cache to another CPU, asks again.
 */
export function compilerInfo(cxx: string, cxxflags: readonly string[] = defaultCxxflags(), cacheDir?: string): Promise<CompilerInfo> {
  const memoKey = JSON.stringify([cxx, cxxflags]);
  let info = infoByCompiler.get(memoKey);
  if (!info) {
    info = cacheDir ? persistedProbe(cxx, cxxflags, cacheDir) : probeCompiler(cxx, cxxflags);
    // A failed probe (e.g. compiler not installed yet) must not stick for the rest of the process.
    info.catch(() => infoByCompiler.delete(memoKey));
    infoByCompiler.set(memoKey, info);
  }
  return info;
}

async function persistedProbe(cxx: string, cxxflags: readonly string[], cacheDir: string): Promise<CompilerInfo> {
  const identity = compilerIdentity(cxx, cxxflags);
  if (!identity) return probeCompiler(cxx, cxxflags);
  const path = join(cacheDir, "compilers", `${identity}.json`);
  try {
    const stored = JSON.parse(readFileSync(path, "utf8")) as CompilerInfo;
    // A file written before a field existed lacks it: ask again and overwrite.
    if (
      typeof stored.version === "string" &&
      typeof stored.cpuFeatures === "string" &&
      typeof stored.family === "string" &&
      typeof stored.openmp === "boolean" &&
      typeof stored.linker === "string"
    ) {
      return stored;
    }
  } catch {
    // absent or unreadable: ask the compiler
  }
  const info = await probeCompiler(cxx, cxxflags);
  try {
    mkdirSync(join(cacheDir, "compilers"), { recursive: true });
    const temp = `${path}.${process.pid}.tmp`;
    writeFileSync(temp, JSON.stringify(info));
    renameSync(temp, path);
  } catch {
    // A read-only cache only costs the probe next time.
  }
  return info;
}

/** A hash naming this compiler binary, these flags and this CPU; undefined when the binary cannot be found. */
function compilerIdentity(cxx: string, cxxflags: readonly string[]): string | undefined {
  const exe = isAbsolute(cxx) || cxx.includes("/") ? cxx : (process.env.PATH ?? "").split(delimiter).map((d) => join(d, cxx)).find(isFile);
  if (!exe || !isFile(exe)) return undefined;
  const st = statSync(exe);
  let cpu = cpus()[0]?.model ?? "";
  try {
    cpu += readFileSync("/proc/cpuinfo", "utf8").split("\n").find((l) => l.startsWith("flags")) ?? "";
  } catch {
    // not Linux: the model name stands for the CPU
  }
  return createHash("sha256").update(JSON.stringify([exe, st.size, st.mtimeMs, st.ino, cxxflags, cpu])).digest("hex").slice(0, 32);
}

function isFile(path: string): boolean {
  try {
    return statSync(path).isFile();
  } catch {
    return false;
  }
}

async function probeCompiler(cxx: string, cxxflags: readonly string[]): Promise<CompilerInfo> {
  const [version, macros, openmp, linker] = await Promise.all([
    runProbe(cxx, ["--version"]),
    runProbe(cxx, [...macroProbeFlags(cxxflags), "-dM", "-E", "-x", "c++", "/dev/null"]),
    probeOpenmp(cxx, cxxflags),
    probeLinker(cxx, cxxflags),
  ]);
  return { version: version.trim(), cpuFeatures: featureMacros(macros).join(" "), family: compilerFamily(macros), ...openmp, linker };
}

/**
 * Output and link flags make no sense for `-E`; everything else (notably -m*, -march) can change the macros.
 * `-fopenmp` only adds `_OPENMP`, and a compiler without OpenMP may reject it outright (Apple's clang does).
 */
function macroProbeFlags(cxxflags: readonly string[]): string[] {
  return cxxflags.filter((flag) => flag !== "-shared" && flag !== OPENMP_FLAG && !flag.startsWith("-Wl,"));
}

export function compilerFamily(dump: string): CompilerInfo["family"] {
  if (/^#define __clang__ /m.test(dump)) return "clang";
  if (/^#define __GNUC__ /m.test(dump)) return "gcc";
  return "other";
}

/** Uses the OpenMP runtime the way the kernels do (header, a parallel region, a runtime call), so it must link. */
const OPENMP_PROBE_SOURCE = `#include <omp.h>
extern "C" int md_openmp_probe(void) {
  int n = 0;
#pragma omp parallel reduction(+ : n)
  n += 1;
  return n + omp_get_max_threads();
}
`;

/**
 * Builds a small OpenMP library with the kernels' own flags. A failure counts against OpenMP only when a library
 * without OpenMP builds with the same flags minus `-fopenmp`: any other problem (a bad flag) is left for the real
 * build to report.
 */
async function probeOpenmp(cxx: string, cxxflags: readonly string[]): Promise<Pick<CompilerInfo, "openmp" | "openmpProblem">> {
  if (!cxxflags.includes(OPENMP_FLAG)) return { openmp: true };
  const dir = await mkdtemp(join(tmpdir(), "minductor-openmp-probe-"));
  try {
    await writeFile(join(dir, "openmp.cpp"), OPENMP_PROBE_SOURCE);
    await writeFile(join(dir, "plain.cpp"), 'extern "C" int md_plain_probe(void) { return 1; }\n');
    const { execa } = await import("execa");
    // No `-o`: the output is the compiler's default a.out in this private dir.
    const build = (flags: readonly string[], source: string) => execa(cxx, [...flags, `${source}.cpp`], { cwd: dir, reject: false, stdin: "ignore" });
    const withOpenmp = await build(cxxflags, "openmp");
    if (withOpenmp.code === "ENOENT" || withOpenmp.code === "EACCES") throw new CompilerNotFoundError(cxx);
    if (!withOpenmp.failed) return { openmp: true };
    const plain = await build(withoutOpenmp(cxxflags), "plain");
    if (plain.failed) return { openmp: true };
    const complaint = (withOpenmp.stderr || withOpenmp.message || "").trim().split("\n").slice(0, 3).join("\n");
    return { openmp: false, openmpProblem: complaint || `exit status ${withOpenmp.exitCode}` };
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
}

/**
 * The first of FAST_LINKERS with which a small shared library builds under these flags (without `-fopenmp`, which
 * probeOpenmp judges), as `-fuse-ld=<name>`; "" when none does, when the flags name a linker themselves or build no
 * shared library. A linker the driver cannot find fails `-Wl,--version` in a few milliseconds, so only one that is
 * there links the library.
 */
async function probeLinker(cxx: string, cxxflags: readonly string[]): Promise<string> {
  if (!cxxflags.includes("-shared") || cxxflags.some((flag) => flag.startsWith(LINKER_FLAG))) return "";
  const { execa } = await import("execa");
  const dir = await mkdtemp(join(tmpdir(), "minductor-linker-probe-"));
  try {
    await writeFile(join(dir, "plain.cpp"), 'extern "C" int md_plain_probe(void) { return 1; }\n');
    for (const name of FAST_LINKERS) {
      const flag = `${LINKER_FLAG}${name}`;
      const found = await execa(cxx, [flag, "-Wl,--version"], { cwd: dir, reject: false, stdin: "ignore" });
      if (found.failed) continue;
      // No `-o`, as in probeOpenmp: the output is the default a.out in this private dir.
      const link = await execa(cxx, [...withoutOpenmp(cxxflags), flag, "plain.cpp"], { cwd: dir, reject: false, stdin: "ignore" });
      if (!link.failed) return flag;
    }
    return "";
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
}

export function withoutOpenmp(cxxflags: readonly string[]): string[] {
  return cxxflags.filter((flag) => flag !== OPENMP_FLAG);
}

/** The feature macro names defined by a `-dM -E` dump, sorted so the string is stable. */
export function featureMacros(dump: string): string[] {
  const names = new Set<string>();
  for (const line of dump.split("\n")) {
    const match = /^#define\s+(\S+)/.exec(line);
    if (match && FEATURE_MACRO.test(match[1])) names.add(match[1]);
  }
  return [...names].sort();
}

async function runProbe(cxx: string, args: string[]): Promise<string> {
  // Loaded on first use: execa takes about 100 ms to import, and a cache hit never runs the compiler.
  const { execa } = await import("execa");
  const result = await execa(cxx, args, { reject: false, stdin: "ignore" });
  if (result.code === "ENOENT" || result.code === "EACCES") throw new CompilerNotFoundError(cxx);
  if (result.failed) {
    throw new CompilerProbeError([cxx, ...args], result.stderr || result.message || "");
  }
  return result.stdout;
}
