import { readdirSync, readFileSync } from "node:fs";
import { join } from "node:path";
import { describe, expect, it } from "vitest";
import { main } from "../../src/cli/main.js";
import { parseSpec } from "../../src/ir/spec.js";

const dir = join(import.meta.dirname, "..", "..", "examples", "specs");
const specs = readdirSync(dir).filter((f) => f.endsWith(".json")).sort();

describe("example specs", () => {
  it("include the documented set", () => {
    for (const name of ["identity", "causal", "sliding_window", "alibi", "softcap", "document_mask", "prefix_lm", "relative_bias", "gqa_decode", "paged_decode"]) {
      expect(specs).toContain(`${name}.json`);
    }
  });

  it.each(specs)("%s validates and its name matches its file", (file) => {
    const graph = parseSpec(readFileSync(join(dir, file), "utf8"));
    expect(`${graph.name}.json`).toBe(file);
    expect(graph.scoreMod.dtype).toBe("float32");
    expect(graph.maskMod.dtype).toBe("bool");
  });

  it.each(specs)("minductor explain %s prints the IR and hashes", async (file) => {
    let out = "";
    const code = await main(["node", "minductor", "explain", join(dir, file)], { out: (s) => void (out += s), err: () => {}, interactive: false });
    expect(code).toBe(0);
    expect(out).toMatch(/^score_mod {2}/m);
    expect(out).toMatch(/^mask_mod {2}/m);
    expect(out.match(/hash [0-9a-f]{64}/g)).toHaveLength(2);
  });
});
