import { execFile } from "node:child_process";
import { mkdtempSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { promisify } from "node:util";
import { describe, expect, it } from "vitest";
import { KERNEL_ABI_VERSION } from "../../src/codegen/kernelAbi.js";
import { kernelConstants } from "../../src/codegen/kernelConstants.js";
import { KernelRenderError } from "../../src/codegen/kernelRenderError.js";
import { renderEngine, renderKernel, renderModLibrary } from "../../src/codegen/renderKernel.js";
import { sha256 } from "../../src/compile/index.js";
import { templatesDir } from "../../src/codegen/templatesDir.js";
import { graphFor, type KernelConfig } from "./harness/buildKernel.js";
import { causalMods, identityMods } from "./harness/mods.js";

const run = promisify(execFile);

const base: KernelConfig = { dtype: "float32", hq: 8, hkv: 2, qDim: 64, vDim: 72, blockSize: [64, 128] };

/** Value of a float literal as the C++ compiler reads it: decimal, or hex `0x<hex>[.<hex>]p<exp>f`. */
function parseFloatLiteral(text: string): number {
  const t = text.replace(/[()]/g, "");
  const neg = t.startsWith("-");
  const body = neg ? t.slice(1) : t;
  const hex = /^0x([0-9a-f]+)(?:\.([0-9a-f]*))?p([+-]?\d+)f$/i.exec(body);
  let v: number;
  if (hex) {
    const frac = hex[2] ?? "";
    v = Number.parseInt(hex[1] + frac, 16) * 2 ** (Number(hex[3]) - 4 * frac.length);
  } else {
    v = Number(body.replace(/f$/, ""));
  }
  return neg ? -v : v;
}

/** The scale field of the source's md_mods table (the third initializer). */
function scaleLiteral(cpp: string): string {
  const m = /static const md_mods md_linked_mods = \{\n\s*MD_ABI_VERSION,\n\s*MD_NUM_BUFFERS,\n\s*(.+),\n/.exec(cpp);
  if (!m) throw new Error("no md_mods table in the kernel");
  return m[1];
}

describe("renderKernel", () => {
  it("is deterministic and never pastes the spec's name", () => {
    const a = renderKernel(graphFor(base, "a_name_that_must_not_appear"), causalMods.cpp);
    const b = renderKernel(graphFor(base, "another_name"), causalMods.cpp);
    expect(a.cpp).toBe(b.cpp);
    expect(a.header).toBe(b.header);
    expect(a.cpp).not.toContain("a_name_that_must_not_appear");
    expect(a.header).not.toContain("a_name_that_must_not_appear");
  });

  it("puts the mods between md_args and the templates, and the compile-time constants in the header", () => {
    const { cpp, header } = renderKernel(graphFor({ ...base, pageSize: 16 }), causalMods.cpp);
    const mods = cpp.indexOf(causalMods.cpp);
    expect(mods).toBeGreaterThan(cpp.indexOf("} md_args;"));
    expect(mods).toBeLessThan(cpp.indexOf("md_flash_attention_task"));
    for (const line of ["#define MD_HQ 8", "#define MD_HKV 2", "#define MD_Q_DIM 64", "#define MD_V_DIM 72",
      "#define MD_SPARSE_Q_BLOCK_SIZE 64", "#define MD_SPARSE_KV_BLOCK_SIZE 128", "#define MD_PAGE_SIZE 16",
      `#define MD_ABI_VERSION ${KERNEL_ABI_VERSION}`]) expect(header).toContain(line);
    expect(cpp).toContain(header);
    expect(cpp).toContain("static constexpr int64_t MD_G = 4;");
    expect(cpp).toContain("a->page_table[");
    expect(renderKernel(graphFor(base), causalMods.cpp).cpp).not.toContain("a->page_table[");
  });

  it("prints the scale as an exact float32 literal", () => {
    for (const scale of [1 / Math.sqrt(72), 0.125, 1 / 3, -2.5, 1e-40, 3e38, 1, 12345.678]) {
      const literal = scaleLiteral(renderKernel(graphFor({ ...base, scale }), identityMods.cpp).cpp);
      expect(parseFloatLiteral(literal), `${scale} -> ${literal}`).toBe(Math.fround(scale));
    }
  });

  it("renders one engine per configuration: the same bytes whatever the mods, buffers and name", () => {
    const engine = renderEngine(graphFor(base, "first"));
    for (const other of [graphFor(base, "second"), graphFor({ ...base, buffers: ["float32", "int64"] }, "third")]) {
      expect(renderEngine(other)).toEqual(engine);
    }
    // The scale is part of the configuration (a constant of the engine's softmax).
    for (const config of [{ ...base, dtype: "bfloat16" as const }, { ...base, hq: 4 }, { ...base, vDim: 64 }, { ...base, blockSize: [64, 64] as [number, number] }, { ...base, pageSize: 16 }, { ...base, scale: 0.5 }]) {
      expect(renderEngine(graphFor(config)).cpp, JSON.stringify(config)).not.toBe(engine.cpp);
    }
    // The engine reaches the mods only through md_args.mods.
    expect(engine.cpp).toContain("#define MD_MODS_LINKED 0");
    expect(engine.cpp).not.toContain("md_mods_row");
    expect(engine.header).not.toContain("MD_NUM_BUFFERS");
  });

  it("renders a mod library that names its engine and holds only the graph's part", () => {
    const graph = graphFor({ ...base, scale: 0.25, buffers: ["float32"] });
    const hash = sha256(renderEngine(graph).cpp);
    const { cpp, header } = renderModLibrary(graph, causalMods.cpp, hash);
    expect(cpp).toContain(`"${hash}",`);
    expect(cpp).toContain(causalMods.cpp);
    expect(parseFloatLiteral(scaleLiteral(cpp))).toBe(0.25);
    expect(header).toContain("#define MD_NUM_BUFFERS 1");
    expect(cpp).not.toContain("md_flash_attention_task");
    expect(cpp.length).toBeLessThan(renderKernel(graph, causalMods.cpp).cpp.length / 2);
    expect(() => renderModLibrary(graph, causalMods.cpp, "not a hash")).toThrow(/engineHash/);
  });

  it("chooses tiles no larger than the blocks", () => {
    expect(kernelConstants(graphFor({ ...base, blockSize: [32, 512] }))).toMatchObject({ q_tile: 32, kv_tile: 128 });
    expect(kernelConstants(graphFor({ ...base, dtype: "bfloat16" }))).toMatchObject({ elem_type: "uint16_t", dtype_enum: "MD_BFLOAT16" });
  });

  it("rejects graphs the templates cannot serve with a KernelRenderError naming the field", () => {
    const bad: Array<[KernelConfig & { scale?: number }, string]> = [
      [{ ...base, hq: 6, hkv: 4 }, "query.shape[1]"],
      [{ ...base, blockSize: [0, 64] }, "blockSize[0]"],
      [{ ...base, pageSize: 0.5 }, "kvCache.pageSize"],
      [{ ...base, scale: Number.POSITIVE_INFINITY }, "scale"],
      [{ ...base, scale: 1e39 }, "scale"],
    ];
    for (const [config, field] of bad) {
      const err = (() => {
        try {
          renderKernel(graphFor(config), identityMods.cpp);
        } catch (e) {
          return e;
        }
        return undefined;
      })();
      expect(err, field).toBeInstanceOf(KernelRenderError);
      expect((err as KernelRenderError).field).toBe(field);
      expect((err as Error).message).toContain(field);
    }
    const mixed = { ...graphFor(base), key: { shape: [1, 2, 16, 64], dtype: "float16", layout: "bhsd" } } as const;
    expect(() => renderKernel(mixed, identityMods.cpp)).toThrow(/key\.dtype/);
  });
});

describe("the C/C++ sources compile on their own", () => {
  const dir = mkdtempSync(join(tmpdir(), "md-render-"));

  it("minductor.h and md_base.h are standalone headers for AVX-512 (with AMX too), AVX2, AVX2 without F16C and scalar targets", async () => {
    const header = join(templatesDir(), "minductor.h");
    for (const march of [["-march=native"], ["-march=skylake-avx512"], ["-march=sapphirerapids"], ["-march=haswell", "-mno-f16c"], ["-march=x86-64"]])
      await run("g++", ["-std=gnu++17", "-fopenmp", "-Wall", "-Wextra", "-Werror", "-fsyntax-only", "-x", "c++", ...march, header]);
    await run("g++", ["-std=gnu++17", "-Wall", "-Wextra", "-Werror", "-fsyntax-only", "-x", "c++", join(templatesDir(), "md_base.h")]);
  });

  it("the public header is plain C", async () => {
    const path = join(dir, "kernel.h");
    writeFileSync(path, renderKernel(graphFor(base), identityMods.cpp).header);
    await run("gcc", ["-std=c99", "-pedantic", "-Wall", "-Wextra", "-Werror", "-fsyntax-only", "-x", "c", path]);
  });

  it("the kernel, the engine and the mod library compile warning-free for every target, including AVX-512", async () => {
    const graph = graphFor({ ...base, dtype: "bfloat16", pageSize: 16 });
    const engine = renderEngine(graph);
    const modLibrary = renderModLibrary(graph, causalMods.cpp, sha256(engine.cpp));
    writeFileSync(join(dir, modLibrary.prelude!.name), modLibrary.prelude!.text);
    const sources = {
      kernel: renderKernel(graph, causalMods.cpp).cpp,
      engine: engine.cpp,
      mods: modLibrary.cpp,
    };
    const jobs: Array<Promise<unknown>> = [];
    for (const [name, cpp] of Object.entries(sources)) {
      const path = join(dir, `${name}.cpp`);
      writeFileSync(path, cpp);
      // The self-contained kernel is the engine and the mods in one unit: its AVX-512 build covers how they link, and
      // the engine's whole AVX-512 code. An engine also compiles as its two units (the cache builds them at once where
      // cores are free), and whole for the baseline x86-64. Sapphire Rapids adds AVX512-BF16, AVX512-FP16 and the AMX
      // tiles of bf16 prefill, whatever this machine has.
      const engineUnits = [["-march=skylake-avx512", "-DMD_UNIT=1"], ["-march=skylake-avx512", "-DMD_UNIT=2"]];
      const targets = {
        kernel: [["-march=skylake-avx512"], ["-march=sapphirerapids"]],
        engine: [["-march=x86-64"], ...engineUnits],
        mods: [["-march=skylake-avx512"], ["-march=haswell"], ["-march=x86-64"]],
      }[name]!;
      for (const flags of targets)
        jobs.push(run("g++", ["-std=gnu++17", "-O2", "-fopenmp", "-fPIC", "-Wall", "-Wextra", "-Werror", "-c", ...flags, path, "-o", `${path}${flags.join("")}.o`]));
    }
    await Promise.all(jobs);
  });
});
