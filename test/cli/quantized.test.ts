/**
 * The CLI with a quantized key/value: generated inputs are quantized from random values, and run --check passes.
 * int8 builds with the default flags (-O3), as users build it: the one shipping build of an 8-bit key/value in
 * `npm test`. The fp8 specs build fast (test/helpers/fastBuilds.ts), as the other files that check 8-bit K/V do:
 * what they add here is the CLI's handling of their codes, not another -O3 engine (about 9 s of g++ each).
 */
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, describe, expect, it } from "vitest";
import { main } from "../../src/cli/main.js";
import { compile } from "../../src/index.js";
import { FAST_BUILD_CXXFLAGS } from "../helpers/fastBuilds.js";

const dir = mkdtempSync(join(tmpdir(), "minductor-cli-quantized-"));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

/** The flags a key/value dtype builds with here: the defaults for int8, fast builds for fp8. */
const flagsFor = (dtype: string): string[] | undefined => (dtype === "int8" ? undefined : [...FAST_BUILD_CXXFLAGS]);

/**
 * Writes the spec and runs `minductor run <spec> --check` with `cxxflags` (MINDUCTOR_CXXFLAGS, as a user of the CLI
 * sets them; absent: the defaults), which must exit 0 with the output checked ok.
 */
async function expectChecked(file: string, spec: Record<string, unknown>, cxxflags: string[] | undefined): Promise<void> {
  const path = join(dir, file);
  writeFileSync(path, JSON.stringify(spec));
  let stdout = "";
  let stderr = "";
  const io = { out: (s: string) => void (stdout += s), err: (s: string) => void (stderr += s), interactive: false };
  const saved = process.env.MINDUCTOR_CXXFLAGS;
  if (cxxflags) process.env.MINDUCTOR_CXXFLAGS = cxxflags.join(" ");
  else delete process.env.MINDUCTOR_CXXFLAGS;
  try {
    expect(await main(["node", "minductor", "run", path, "--check"], io), stderr).toBe(0);
  } finally {
    if (saved === undefined) delete process.env.MINDUCTOR_CXXFLAGS;
    else process.env.MINDUCTOR_CXXFLAGS = saved;
  }
  expect(stdout).toMatch(/check out: .*: ok/);
}

function plainSpec(dtype: string): Record<string, unknown> {
  return {
    name: `q_${dtype}`,
    query: { shape: [1, 4, 3, 32], dtype: "bfloat16" },
    key: { shape: [1, 2, 70, 32], dtype },
    value: { shape: [1, 2, 70, 32], dtype },
    blockSize: [16, 16],
    maskMod: "q_idx + 67 >= kv_idx",
  };
}

function layoutSpec(dtype: string, layout: Record<string, unknown>, extra: Record<string, unknown>): Record<string, unknown> {
  const paged = "kvCache" in extra;
  const kv = paged ? [12, 2, 16, 32] : [1, 2, 70, 32];
  return {
    name: `q_${dtype}_layout`,
    query: { shape: [paged ? 3 : 1, 4, 3, 32], dtype: "bfloat16", ...layout },
    key: { shape: kv, dtype, ...layout },
    value: { shape: kv, dtype, ...layout },
    blockSize: [16, 16],
    ...extra,
  };
}

const PLAIN = ["int8", "float8_e5m2"];
const LAYOUTS: Array<[string, string, Record<string, unknown>, Record<string, unknown>]> = [
  ["int8", "a bshd cache", { layout: "bshd" }, {}],
  ["float8_e4m3fn", "a ragged batch over a paged pool", {}, { raggedQuery: true, kvCache: { pageSize: 16 } }],
];

// The kernels start building at import, side by side (one g++ per core), as `run` would build them: each test's
// `run` then finds its kernel in the compile cache, or waits for the build under way.
for (const [dtype, spec] of [...PLAIN.map((d) => [d, plainSpec(d)] as const), ...LAYOUTS.map(([d, , layout, extra]) => [d, layoutSpec(d, layout, extra)] as const)]) {
  const cxxflags = flagsFor(dtype);
  compile(spec, cxxflags ? { cxxflags } : {}).catch(() => {});
}

describe("minductor run --check with an 8-bit key/value", () => {
  it.each(PLAIN)("%s: the kernel matches the float64 reference on the dequantized cache", async (dtype) => {
    await expectChecked(`${dtype}.json`, plainSpec(dtype), flagsFor(dtype));
  });

  it.each(LAYOUTS)("%s in %s: generated inputs are quantized in the layout, and match the reference", async (dtype, _what, layout, extra) => {
    await expectChecked(`${dtype}_layout.json`, layoutSpec(dtype, layout, extra), flagsFor(dtype));
  });
});
