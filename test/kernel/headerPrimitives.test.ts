import { execFile } from "node:child_process";
import { mkdtempSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { promisify } from "node:util";
import { beforeAll, describe } from "vitest";
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

describe.each([
  ["this machine", ["-march=native"]],
  ["the scalar fallback", ["-march=x86-64"]],
])("minductor.h primitives on %s", (_name, march) => {
  let r: Record<string, number>;
  beforeAll(async () => {
    r = await runDriver(march);
  });
  primitivesTests(() => r);
});
