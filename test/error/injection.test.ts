import { describe, expect, it } from "vitest";
import { generate } from "../../src/index.js";
import { SpecError } from "../../src/ir/errors.js";
import { parseSpec } from "../../src/ir/spec.js";

const base = {
  query: { shape: [1, 4, 16, 64], dtype: "float32" },
  key: { shape: [1, 4, 16, 64], dtype: "float32" },
  value: { shape: [1, 4, 16, 64], dtype: "float32" },
};

describe("nothing from the spec reaches C++ except generated names and exactly printed numbers", () => {
  it("spec and buffer names never appear in the generated source or header", () => {
    const graph = parseSpec({
      ...base,
      name: "evilSpecName-1",
      buffers: { evilBufferName: { shape: [4], dtype: "float32" }, system: { shape: [16], dtype: "int32" } },
      scoreMod: "score * evilBufferName[h] + 0.1",
      maskMod: "system[q_idx] >= system[kv_idx]",
    });
    const { cpp, header } = generate(graph);
    for (const text of [cpp, header]) {
      expect(text).not.toContain("evilSpecName");
      expect(text).not.toContain("evilBufferName");
      expect(text).not.toMatch(/\bsystem\b/);
    }
    // 0.1 is not a float32: the constant is printed as the exact float32 nearest to it, in hex.
    expect(cpp).toContain("0xcccccdp-27f");
    expect(Math.fround(0.1)).toBe(0xcccccd * 2 ** -27);
  });

  it.each([
    ["a spec name with code", { name: 'x;system("id")' }, "SpecError at name"],
    ["a spec name with a path", { name: "../../x" }, "SpecError at name"],
    ["a spec name with a slash", { name: "a/b" }, "SpecError at name"],
    ["a buffer name that is not an identifier", { name: "x", buffers: { "__asm__(\"int3\")": { shape: [4], dtype: "float32" } } }, 'SpecError at buffers.__asm__("int3")'],
    ["a buffer name starting with underscores", { name: "x", buffers: { __asm__: { shape: [4], dtype: "float32" } } }, "SpecError at buffers.__asm__"],
    ["a mod smuggling C++", { name: "x", scoreMod: 'score; system("id")' }, "SpecError at scoreMod:6: unexpected character ';'"],
    ["a mod with a string literal", { name: "x", scoreMod: 'score + "id"' }, "SpecError at scoreMod:9: unexpected character '\"'"],
    ["a mod calling an unknown function", { name: "x", scoreMod: "system(score)" }, "SpecError at scoreMod:1: unknown function 'system'"],
  ])("refuses %s", (_what, over, message) => {
    expect(() => parseSpec({ ...base, ...over })).toThrow(SpecError);
    expect(() => parseSpec({ ...base, ...over })).toThrow(message);
  });
});
