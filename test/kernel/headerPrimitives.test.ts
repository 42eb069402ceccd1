import { execFile } from "node:child_process";
import { mkdtempSync, readFileSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { promisify } from "node:util";
import { beforeAll, describe, expect, it } from "vitest";
import { templatesDir } from "../../src/codegen/templatesDir.js";
import { parsePrimitives, PRIMITIVES_DRIVER, primitivesTests } from "./harness/primitivesDriver.js";

const run = promisify(execFile);

async function runDriver(march: string[]): Promise<Record<string, number>> {
  const dir = mkdtempSync(join(tmpdir(), "md-prims-"));
  const src = join(dir, "driver.cpp");
  const exe = join(dir, "driver");
  writeFileSync(src, PRIMITIVES_DRIVER);
  await run("g++", ["-std=gnu++17", "-O2", ...march, "-fopenmp", "-I", templatesDir(), src, "-o", exe]);
  const { stdout } = await run(exe);
  return parsePrimitives(stdout);
}

const CPU_FLAGS = new Set(readFileSync("/proc/cpuinfo", "utf8").match(/^flags\s*:(.*)$/m)?.[1].trim().split(/\s+/) ?? []);
const HAS_VBMI = CPU_FLAGS.has("avx512f") && CPU_FLAGS.has("avx512vbmi");
const HAS_CODE_LOOKUPS = HAS_VBMI && CPU_FLAGS.has("avx512_bf16");

describe.each([
  ["this machine", ["-march=native"]],
  ["the scalar fallback", ["-march=x86-64"]],
])("minductor.h primitives on %s", (name, march) => {
  let r: Record<string, number>;
  beforeAll(async () => {
    r = await runDriver(march);
  });
  primitivesTests(() => r);

  // The check above holds either way; this says which way was checked.
  it.skipIf(name === "this machine" && !HAS_VBMI)(
    `converts e4m3fn codes ${name === "this machine" ? "by byte lookups (this CPU has AVX512-VBMI)" : "one vector at a time"}`,
    () => {
      expect(r.vload_batch_e4m3fn).toBe(name === "this machine" ? 4 : 1);
    },
  );

  it.skipIf(name === "this machine" && !HAS_CODE_LOOKUPS)(
    `${name === "this machine" ? "makes every 8-bit code bf16 by byte lookups (this CPU has AVX512-BF16 and AVX512-VBMI)" : "builds no byte lookups to bf16"}`,
    () => {
      expect(r.codes_bf16_checked).toBe(name === "this machine" ? 3 * 256 : 0);
    },
  );

  it.skipIf(name === "this machine" && !CPU_FLAGS.has("avx2"))(
    `${name === "this machine" ? "checks int8 decode's int16 query rows (this CPU has AVX2)" : "builds no int16 query rows (no AVX2)"}`,
    () => {
      expect(r.quantize_i16_checked).toBe(name === "this machine" ? 4005 : 0);
    },
  );
});
