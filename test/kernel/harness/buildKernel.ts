import { execFile } from "node:child_process";
import { createHash } from "node:crypto";
import { existsSync, mkdirSync, renameSync, writeFileSync } from "node:fs";
import { availableParallelism, tmpdir } from "node:os";
import { basename, join } from "node:path";
import { promisify } from "node:util";
import type { Expr } from "../../../src/ir/expr.js";
import type { AttentionGraph, TensorDType } from "../../../src/ir/graph.js";
import { renderEngine, renderKernel, renderModLibrary } from "../../../src/codegen/renderKernel.js";
import { compilerInfo } from "../../../src/compile/compilerInfo.js";

const run = promisify(execFile);

/**
 * Test kernels build at -O0 with the helpers left to the compiler's inlining (-DMD_NO_FORCED_INLINE, md_base.h), as
 * the suite's fast builds do (test/helpers/fastBuilds.ts says what that keeps of the default -O3's values): the
 * shapes here are small, and the build is most of a test's time. The default flags themselves are what every test
 * through compile() without explicit flags builds with.
 */
export const TEST_OPT = "-O0";
export const NATIVE_FLAGS = [TEST_OPT, "-march=native"];
const COMMON_FLAGS = ["-DMD_NO_FORCED_INLINE", "-fopenmp", "-shared", "-fPIC", "-std=gnu++17", "-Wall", "-Werror=return-type"];

/** The compile-time description of a test kernel; the mods are hand-written C++ (see mods.ts). */
export interface KernelConfig {
  dtype: TensorDType;
  hq: number;
  hkv: number;
  qDim: number;
  vDim: number;
  blockSize: [number, number];
  pageSize?: number;
  scale?: number;
  /** dtypes of the captured buffers, in order. */
  buffers?: Array<"float32" | "int64">;
}

/** An AttentionGraph for a config. The renderer must not read the mods, so they are placeholders. */
export function graphFor(c: KernelConfig, name = "test"): AttentionGraph {
  const placeholder = null as unknown as Expr;
  return {
    name,
    query: { shape: [1, c.hq, 16, c.qDim], dtype: c.dtype, layout: "bhsd" },
    key: { shape: [1, c.hkv, 16, c.qDim], dtype: c.dtype, layout: "bhsd" },
    value: { shape: [1, c.hkv, 16, c.vDim], dtype: c.dtype, layout: "bhsd" },
    scale: c.scale ?? 1 / Math.sqrt(c.qDim),
    scoreMod: placeholder,
    maskMod: placeholder,
    buffers: (c.buffers ?? []).map((dtype, i) => ({ name: `buf${i}`, shape: [c.hq], dtype })),
    blockSize: c.blockSize,
    kvCache: c.pageSize ? { pageSize: c.pageSize } : undefined,
    returnLse: true,
    raggedQuery: false,
    kernelOptions: {},
  };
}

function cacheDir(): string {
  const dir = join(process.env.MINDUCTOR_CACHE_DIR ?? join(tmpdir(), "minductor-test"), "kernel-tests");
  mkdirSync(dir, { recursive: true });
  return dir;
}

const sha = (...parts: string[]) => createHash("sha256").update(parts.join("\0")).digest("hex").slice(0, 32);

/** Ends the runtime headers a self-contained kernel pastes first (kernel.cpp.njk). */
const HEADERS_END = "/* ==== kernel.h ==== */";
const KERNEL_HEADERS = "md_kernel_headers.h";

/**
 * Compile C++ source into a shared library, content-addressed so reruns and parallel test files share it. A
 * `prelude` the source includes is written beside it; a self-contained kernel's pasted runtime headers become such
 * a header too. Either is precompiled once per text and flags, as compile() does for its prelude: a test kernel then
 * builds in about half the CPU (2.1 s -> 1.0-1.2 at -O0 on an AVX-512 VM, with the linker compile() picks), and the
 * library is the same code. The flags get that linker too (src/compile/compilerInfo.ts).
 */
export async function compileShared(cpp: string, flags: string[] = NATIVE_FLAGS, prelude?: { name: string; text: string }): Promise<string> {
  const argv = [...flags, ...COMMON_FLAGS];
  const so = join(cacheDir(), `${sha(cpp, argv.join(" "), prelude?.text ?? "")}.so`);
  if (existsSync(so)) return so;
  let source = cpp;
  let header = prelude;
  const end = cpp.indexOf(HEADERS_END);
  if (!prelude && end > 0) {
    header = { name: KERNEL_HEADERS, text: cpp.slice(0, end) };
    source = `#include "${KERNEL_HEADERS}"\n${cpp.slice(end)}`;
  }
  const dir = header ? await headerDir(header, argv) : cacheDir();
  const { linker } = await compilerInfo("g++", argv, process.env.MINDUCTOR_CACHE_DIR);
  const tag = `${process.pid}-${Math.random().toString(36).slice(2)}`;
  const src = join(dir, `${basename(so, ".so")}.${tag}.cpp`);
  const tmp = `${so}.${tag}`;
  writeFileSync(src, source);
  await withSlot(() => run("g++", [...argv, ...(linker ? [linker] : []), src, "-o", tmp]));
  renameSync(tmp, so);
  return so;
}

const headerDirs = new Map<string, Promise<string>>();

/**
 * A dir holding the header and, where g++ could make it, its .gch for these flags (g++ reads it in place of the header
 * only when the flags match, so each flag set has its own dir). Without the .gch a build parses the header.
 */
function headerDir(header: { name: string; text: string }, argv: readonly string[]): Promise<string> {
  const dir = join(cacheDir(), "headers", sha(header.name, header.text, argv.join(" ")));
  let made = headerDirs.get(dir);
  if (!made) {
    made = (async () => {
      mkdirSync(dir, { recursive: true });
      const path = join(dir, header.name);
      const tag = `${process.pid}-${Math.random().toString(36).slice(2)}`;
      if (!existsSync(path)) {
        writeFileSync(`${path}.${tag}`, header.text);
        renameSync(`${path}.${tag}`, path);
      }
      if (!existsSync(`${path}.gch`)) {
        const gch = `${path}.${tag}.gch`;
        await withSlot(() => run("g++", [...argv, "-x", "c++-header", path, "-o", gch])).then(
          () => renameSync(gch, `${path}.gch`),
          () => undefined,
        );
      }
      return dir;
    })();
    headerDirs.set(dir, made);
  }
  return made;
}

/** At most one g++ per core: a file may start all its builds at once (see `prebuildKernels`). */
const slots = { free: availableParallelism(), waiting: [] as Array<() => void> };
async function withSlot<T>(job: () => Promise<T>): Promise<T> {
  if (slots.free === 0) await new Promise<void>((resolve) => slots.waiting.push(resolve));
  else slots.free--;
  try {
    return await job();
  } finally {
    const next = slots.waiting.shift();
    if (next) next();
    else slots.free++;
  }
}

/** A built test kernel: one self-contained library, or an engine and a mod library built for it. */
export type BuiltKernel = { selfContained: string } | { engine: string; mods: string; engineHash: string };

/**
 * Render and compile the kernel of a config with the given mods: as `--emit cpp` writes it, engine and mods in one
 * source; or, with `split`, as `compile()` builds it, an engine per config and a mod library that the engine calls
 * through md_args.mods. The test kernels' configs all differ, so the split would only add a build per kernel;
 * flashAttention.test.ts runs its kernels split, the other files self-contained.
 */
export async function buildKernel(c: KernelConfig, modsCpp: string, flags?: string[], options: { split?: boolean } = {}): Promise<BuiltKernel> {
  const graph = graphFor(c);
  if (!options.split) return { selfContained: await compileShared(renderKernel(graph, modsCpp).cpp, flags) };
  const engine = renderEngine(graph);
  const engineHash = createHash("sha256").update(engine.cpp).digest("hex");
  const mods = renderModLibrary(graph, modsCpp, engineHash);
  const [enginePath, modsPath] = await Promise.all([compileShared(engine.cpp, flags, engine.prelude), compileShared(mods.cpp, flags, mods.prelude)]);
  return { engine: enginePath, mods: modsPath, engineHash };
}
