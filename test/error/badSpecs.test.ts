import { readdirSync, readFileSync } from "node:fs";
import { join } from "node:path";
import { describe, expect, it } from "vitest";
import { main } from "../../src/cli/main.js";
import { SpecError } from "../../src/ir/errors.js";
import { parseSpec } from "../../src/ir/spec.js";

const dir = join(import.meta.dirname, "specs");

/** Each bad spec and the start of the message it must fail with: the field (and column) and the problem. */
const EXPECTED: Record<string, string> = {
  bad_layout: 'SpecError at query.layout: must be one of "bhsd", "bshd"',
  bad_dtype: 'SpecError at query.dtype: must be one of "float32", "bfloat16", "float16"',
  bad_template: 'SpecError at kernelOptions.template: must be one of "flash_attention", "flash_decoding"',
  batch_mismatch: "SpecError at key.shape[0]: batch 3 differs from query's 2 (only a key/value batch of 1 broadcasts over the query's batch)",
  block_not_multiple_16: "SpecError at blockSize[0]: must be a multiple of 16",
  buffer_arity: "SpecError at scoreMod:9: buffer 'bias' has rank 2 but is indexed with 1 index",
  byte_overflow: "SpecError at query.shape: shape [2147483647, 2147483647, 2147483647, 64] is 2.54e+30 bytes, too large to allocate",
  chained_comparison: "SpecError at maskMod:13: comparisons do not chain",
  float_index: "SpecError at scoreMod:18: an index of 'slopes' must be an integer, not float32",
  fractional_size: "SpecError at query.shape[2]: must be an integer",
  head_dim_mismatch: "SpecError at key.shape[3]: head dim 32 differs from query's 64",
  heads_not_multiple: "SpecError at key.shape[1]: query heads (8) must be a multiple of key/value heads (3)",
  hostile_buffer_name: `SpecError at buffers.__asm__("int3"): key "__asm__(\\"int3\\")" buffer names must be identifiers`,
  hostile_name: "SpecError at name: must start with a letter",
  malformed_json: "SpecError at (spec): malformed JSON",
  mask_not_bool: "SpecError at maskMod:7: a mask_mod must produce a bool, but this expression is int64",
  missing_query: "SpecError at query: is required",
  mixed_dtypes: "SpecError at key.dtype: is bfloat16 but query.dtype is float32",
  mixed_quantized: "SpecError at value.dtype: is float8_e4m3fn but key.dtype is int8; key and value share one dtype",
  quantized_query: "SpecError at query.dtype: is int8, but only key and value may be quantized",
  mod_syntax: "SpecError at scoreMod:14: the expression ends too early",
  negative_size: "SpecError at query.shape[2]: must be positive",
  page_size_mismatch: "SpecError at key.shape[2]: with kvCache, key is the page pool",
  partition_not_multiple: "SpecError at kernelOptions.PARTITION_SIZE: 100 is not a multiple of the kv block size 128",
  path_name: "SpecError at name: must start with a letter",
  ragged_broadcast: "SpecError at key.shape[0]: batch 1 differs from query's 2: with raggedQuery, an unpaged key/value is packed per sequence",
  ragged_not_boolean: "SpecError at raggedQuery: Invalid input: expected boolean",
  ragged_query_bhsd: 'SpecError at query.layout: is "bhsd", but a ragged query is packed token-major [totalQ, Hq, D]',
  reserved_buffer_name: 'SpecError at buffers.exp: key "exp" is a reserved name of the mod language',
  scale_not_number: "SpecError at scale: Invalid input: expected number",
  score_in_mask: "SpecError at maskMod:1: 'score' is not available in a mask_mod",
  score_not_numeric: "SpecError at scoreMod:7: a score_mod must produce a number, but this expression is a bool",
  shape_3d: "SpecError at query.shape: must be a 4-D shape [B, H, L, D]",
  unknown_buffer: "SpecError at scoreMod:9: unknown buffer 'slope'",
  unknown_field: "SpecError at (spec): unknown field 'scoreMode'\n  hint: did you mean 'scoreMod'?",
  unknown_name: "SpecError at scoreMod:9: unknown name 'head'",
  unsupported_function: "SpecError at scoreMod:1: unknown function 'erf'",
  zero_size: "SpecError at query.shape[1]: must be positive",
};

describe("every bad spec fails with a message naming the field", () => {
  const files = readdirSync(dir).filter((f) => f.endsWith(".json")).map((f) => f.slice(0, -5)).sort();

  it("the table covers exactly the files in test/error/specs", () => {
    expect(files).toEqual(Object.keys(EXPECTED).sort());
  });

  it.each(files)("%s (API: a typed SpecError)", (name) => {
    const text = readFileSync(join(dir, `${name}.json`), "utf8");
    let error: unknown;
    try {
      parseSpec(text);
    } catch (e) {
      error = e;
    }
    expect(error).toBeInstanceOf(SpecError);
    expect((error as SpecError).message.startsWith(EXPECTED[name])).toBe(true);
  });

  it.each(files)("%s (CLI: exit 1 and the message on stderr)", async (name) => {
    let stderr = "";
    let stdout = "";
    const code = await main(["node", "minductor", "explain", join(dir, `${name}.json`)], {
      out: (s) => void (stdout += s),
      err: (s) => void (stderr += s),
      interactive: false,
    });
    expect(code).toBe(1);
    expect(stdout).toBe("");
    expect(stderr.startsWith(`minductor: ${EXPECTED[name]}`)).toBe(true);
  });
});

describe("expression errors show the source with a caret under the column", () => {
  it("unknown buffer", () => {
    expect(() => parseSpec(readFileSync(join(dir, "unknown_buffer.json"), "utf8"))).toThrow(
      "SpecError at scoreMod:9: unknown buffer 'slope'\n  score + slope[h]\n          ^\n  hint: did you mean 'slopes'?",
    );
  });
});
