import { execFile } from "node:child_process";
import { createHash } from "node:crypto";
import { existsSync, mkdirSync, renameSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { promisify } from "node:util";
import type { Expr } from "../../../src/ir/expr.js";
import type { AttentionGraph, TensorDType } from "../../../src/ir/graph.js";
import { renderKernel } from "../../../src/codegen/renderKernel.js";

const run = promisify(execFile);

export const NATIVE_FLAGS = ["-O2", "-march=native"];
const COMMON_FLAGS = ["-fopenmp", "-shared", "-fPIC", "-std=gnu++17", "-Wall", "-Werror=return-type"];

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
    query: { shape: [1, c.hq, 16, c.qDim], dtype: c.dtype },
    key: { shape: [1, c.hkv, 16, c.qDim], dtype: c.dtype },
    value: { shape: [1, c.hkv, 16, c.vDim], dtype: c.dtype },
    scale: c.scale ?? 1 / Math.sqrt(c.qDim),
    scoreMod: placeholder,
    maskMod: placeholder,
    buffers: (c.buffers ?? []).map((dtype, i) => ({ name: `buf${i}`, shape: [c.hq], dtype })),
    blockSize: c.blockSize,
    kvCache: c.pageSize ? { pageSize: c.pageSize } : undefined,
    returnLse: true,
    kernelOptions: {},
  };
}

function cacheDir(): string {
  const dir = join(process.env.MINDUCTOR_CACHE_DIR ?? join(tmpdir(), "minductor-test"), "kernel-tests");
  mkdirSync(dir, { recursive: true });
  return dir;
}

/** Compile C++ source into a shared library, content-addressed so reruns and parallel test files share it. */
export async function compileShared(cpp: string, flags: string[] = NATIVE_FLAGS): Promise<string> {
  const argv = [...flags, ...COMMON_FLAGS];
  const key = createHash("sha256").update(cpp).update("\0").update(argv.join(" ")).digest("hex").slice(0, 32);
  const dir = cacheDir();
  const so = join(dir, `${key}.so`);
  if (existsSync(so)) return so;
  const tag = `${process.pid}-${Math.random().toString(36).slice(2)}`;
  const src = join(dir, `${key}.${tag}.cpp`);
  const tmp = join(dir, `${key}.${tag}.so`);
  writeFileSync(src, cpp);
  await run("g++", [...argv, src, "-o", tmp]);
  renameSync(tmp, so);
  return so;
}

/** Render and compile the kernel of a config with the given mods. */
export async function buildKernel(c: KernelConfig, modsCpp: string, flags?: string[]): Promise<string> {
  return compileShared(renderKernel(graphFor(c), modsCpp).cpp, flags);
}
