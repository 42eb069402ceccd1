import { execFileSync } from "node:child_process";
import { mkdtempSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import type { AttentionGraph } from "../../src/ir/graph.js";
import { renderMods } from "../../src/codegen/renderMods.js";

/** A minimal md_args with the fields the mods read, so the generated mods compile without a template. */
const ARGS_STRUCT = `
#include <cstdint>
#include <cstdio>
#include <cmath>
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
export function evaluateModsNatively(cases: Array<{ graph: AttentionGraph; probe: ModProbe }>): number[][][] {
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
  const dir = mkdtempSync(join(tmpdir(), "minductor-mods-"));
  writeFileSync(join(dir, "mods.cpp"), program);
  execFileSync("g++", ["-std=gnu++17", "-O1", "-Wno-unused", "-o", join(dir, "mods"), join(dir, "mods.cpp")], { stdio: "pipe" });
  const out = execFileSync(join(dir, "mods"), { encoding: "utf8" });
  return out.split("case\n").slice(1).map((block) =>
    block.trim().split("\n").filter(Boolean).map((line) => line.split(" ").map((v) => (v === "nan" || v === "-nan" ? NaN : v === "inf" ? Infinity : v === "-inf" ? -Infinity : Number(v)))),
  );
}
