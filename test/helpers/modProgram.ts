import { execFile } from "node:child_process";
import { mkdtemp, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { promisify } from "node:util";
import type { AttentionGraph } from "../../src/ir/graph.js";
import { renderMods } from "../../src/codegen/renderMods.js";

/**
 * A minimal md_args with the fields the mods read, so the generated mods compile without a template; the headers
 * mod_helpers.h includes come first, since each case's mods are pasted into a namespace.
 */
const ARGS_STRUCT = `
#include <cstdint>
#include <cstdio>
#include <cmath>
#include <cstring>
#include <initializer_list>
#include <type_traits>
#include <immintrin.h>
struct md_args { const void* const* buffers; const int64_t* buffer_dims; int32_t status; };
`;

export interface ModProbe {
  /** Values of the buffers, as the C++ side reads them (row-major). */
  buffers: Array<{ data: number[]; dims: [number, number]; ctype: "float" | "int32_t" | "int64_t" | "uint8_t" }>;
  /** Points at which to evaluate: [b, h, q_idx, kv_idx, score]. */
  points: Array<[number, number, number, number, number]>;
}

/**
 * Compiles the graphs' mods into one program (each in its own namespace) that evaluates score_mod via
 * md_mods_row<false>, mask_mod via md_mask_mod, and the masked row via md_mods_row<true> at the given points,
 * and returns, per graph, per point: [score_mod, mask (0/1), masked row value, status].
 */
export async function evaluateModsNatively(cases: Array<{ graph: AttentionGraph; probe: ModProbe }>): Promise<number[][][]> {
  let program = ARGS_STRUCT;
  cases.forEach(({ graph, probe }, c) => {
    program += `namespace case${c} {\n${renderMods(graph)}\n`;
    probe.buffers.forEach((b, k) => {
      program += `static const ${b.ctype} buf${k}[] = {${b.data.length ? b.data.map((v) => (Number.isNaN(v) ? "NAN" : v === Infinity ? "INFINITY" : v === -Infinity ? "-INFINITY" : String(v))).join(", ") : "0"}};\n`;
    });
    program += `static void run() {\n  const void* ptrs[] = {${probe.buffers.map((_, k) => `buf${k}`).join(", ") || "nullptr"}};\n`;
    program += `  const int64_t dims[] = {${probe.buffers.flatMap((b) => b.dims).join(", ") || "0"}};\n`;
    program += `  static const double pts[][5] = {${probe.points.map((p) => `{${p.join(", ")}}`).join(", ")}};\n`;
    program += `  for (const auto& p : pts) {\n    md_args a{ptrs, dims, 0};\n`;
    program += `    float s = (float)p[4], t = (float)p[4];\n    md_mods_row<false>(&s, 1, (int64_t)p[0], (int64_t)p[1], (int64_t)p[2], (int64_t)p[3], &a);\n`;
    program += `    bool m = md_mask_mod((int64_t)p[0], (int64_t)p[1], (int64_t)p[2], (int64_t)p[3], &a);\n`;
    program += `    md_mods_row<true>(&t, 1, (int64_t)p[0], (int64_t)p[1], (int64_t)p[2], (int64_t)p[3], &a);\n`;
    program += `    std::printf("%.9g %d %.9g %d\\n", (double)s, (int)m, (double)t, (int)a.status);\n  }\n}\n}\n`;
  });
  program += `int main() {\n${cases.map((_, c) => `  std::printf("case\\n"); case${c}::run();\n`).join("")}  return 0;\n}\n`;
  const out = await compileAndRun(program, ["-O1"]);
  return out.split("case\n").slice(1).map((block) =>
    block.trim().split("\n").filter(Boolean).map((line) => line.split(" ").map((v) => (v === "nan" || v === "-nan" ? NaN : v === "inf" ? Infinity : v === "-inf" ? -Infinity : Number(v)))),
  );
}

export interface FormComparison {
  /** Rows evaluated in both forms. */
  rows: number;
  /** Rows where some position's bits (any NaN equals any NaN) or the load status differ. */
  mismatches: number;
  /** The first few differing positions, for the failure message. */
  details: string[];
}

/**
 * Compiles the graphs' mods with `flags` (the kernel's own by default: -O3 -march=native) and runs
 * md_mods_row<MASK> both ways, the vector loop with its scalar tail against the scalar loop alone, over rows of
 * consecutive kv positions: every row length from 1 to 40 (so every split between vector body and tail), several
 * (b, h, q_idx), with and without mask_mod, on scores that mix the special values (signed zeros, infinities,
 * NaN, subnormals, the edges of exp's and tanh's ranges) into values in [-32, 32).
 */
export async function compareModFormsNatively(
  cases: Array<{ graph: AttentionGraph; buffers: ModProbe["buffers"] }>,
  flags: readonly string[] = ["-O3", "-march=native"],
): Promise<FormComparison[]> {
  let program = ARGS_STRUCT;
  cases.forEach(({ graph, buffers }, c) => {
    program += `namespace case${c} {\n${renderMods(graph)}\n`;
    buffers.forEach((b, k) => {
      program += `static const ${b.ctype} buf${k}[] = {${b.data.length ? b.data.join(", ") : "0"}};\n`;
    });
    program += `static void check() {
  const void* ptrs[] = {${buffers.map((_, k) => `buf${k}`).join(", ") || "nullptr"}};
  const int64_t dims[] = {${buffers.flatMap((b) => b.dims).join(", ") || "0"}};
  static const float specials[] = {0.0f, -0.0f, INFINITY, -INFINITY, NAN, 1e30f, -1e30f, 3e38f, 1e-40f, -1e-40f,
                                   0.625f, -0.625f, 0.62499994f, 88.72f, 89.5f, -103.9f, -110.5f, 9.0f, -9.0f, 0.5f};
  uint32_t state = 12345u;
  long rows = 0, bad = 0;
  float in[40], scalar[40], vector[40];
  for (int64_t h = 0; h < 4; ++h)
    for (const int64_t q_idx : {0, 5, 299})
      for (int64_t n = 1; n <= 40; ++n)
        for (const bool mask : {false, true}) {
          const int64_t b = (h + n) % 3, kv0 = (n * 37 + q_idx) % 260;
          for (int64_t j = 0; j < n; ++j) {
            state = state * 1664525u + 1013904223u;
            const uint32_t r = state >> 8;
            in[j] = r % 4 == 0 ? specials[(r >> 2) % 20] : ((float)(r & 0xffff) - 32768.0f) / 1024.0f;
          }
          std::memcpy(scalar, in, sizeof in);
          std::memcpy(vector, in, sizeof in);
          md_args sa{ptrs, dims, 0}, va{ptrs, dims, 0};
          if (mask) { md_mods_row<true, false>(scalar, n, b, h, q_idx, kv0, &sa); md_mods_row<true, true>(vector, n, b, h, q_idx, kv0, &va); }
          else { md_mods_row<false, false>(scalar, n, b, h, q_idx, kv0, &sa); md_mods_row<false, true>(vector, n, b, h, q_idx, kv0, &va); }
          ++rows;
          bool same = sa.status == va.status;
          for (int64_t j = 0; j < n; ++j) {
            uint32_t x, y;
            std::memcpy(&x, scalar + j, 4);
            std::memcpy(&y, vector + j, 4);
            if (x == y || (scalar[j] != scalar[j] && vector[j] != vector[j])) continue;
            if (same && bad < 3)
              std::printf("detail b=%ld h=%ld q_idx=%ld kv_idx=%ld n=%ld mask=%d score=%a scalar=%a vector=%a\\n", (long)b,
                          (long)h, (long)q_idx, (long)(kv0 + j), (long)n, (int)mask, (double)in[j], (double)scalar[j], (double)vector[j]);
            same = false;
          }
          if (!same) ++bad;
        }
  std::printf("%ld %ld\\n", rows, bad);
}
}
`;
  });
  program += `int main() {\n${cases.map((_, c) => `  std::printf("case\\n"); case${c}::check();\n`).join("")}  return 0;\n}\n`;
  const out = await compileAndRun(program, flags);
  return out.split("case\n").slice(1).map((block) => {
    const lines = block.trim().split("\n");
    const [rows, mismatches] = lines[lines.length - 1].split(" ").map(Number);
    return { rows, mismatches, details: lines.filter((l) => l.startsWith("detail ")) };
  });
}

const run = promisify(execFile);

/**
 * Builds one C++ program with g++ and `flags` in a scratch directory and returns what it prints. Asynchronous, so a
 * file can build its programs side by side.
 */
async function compileAndRun(program: string, flags: readonly string[]): Promise<string> {
  const dir = await mkdtemp(join(tmpdir(), "minductor-mods-"));
  try {
    await writeFile(join(dir, "mods.cpp"), program);
    await run("g++", ["-std=gnu++17", ...flags, "-Wno-unused", "-o", join(dir, "mods"), join(dir, "mods.cpp")]);
    return (await run(join(dir, "mods"), [], { encoding: "utf8", maxBuffer: 64 * 1024 * 1024 })).stdout;
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
}
