import { describe, expect, it } from "vitest";
import { renderKernel } from "../../src/codegen/renderKernel.js";
import { renderMods } from "../../src/codegen/renderMods.js";
import { SpecError } from "../../src/ir/errors.js";
import { flexAttention } from "../../src/ir/flexAttention.js";
import { parseSpec } from "../../src/ir/spec.js";
import { tuningKey } from "../../src/tune/tuningStore.js";

type Json = Record<string, any>;

/** A small GQA spec; `edit` changes a fresh copy. */
function spec(edit: (s: Json) => void = () => {}): Json {
  const s: Json = {
    name: "layout_spec",
    query: { shape: [3, 4, 16, 32], dtype: "float32" },
    key: { shape: [3, 2, 16, 32], dtype: "float32" },
    value: { shape: [3, 2, 16, 32], dtype: "float32" },
    maskMod: "q_idx >= kv_idx",
  };
  edit(s);
  return s;
}

const paged = (s: Json) => {
  s.key.shape = [8, 2, 16, 32];
  s.value.shape = [8, 2, 16, 32];
  s.kvCache = { pageSize: 16 };
};

describe("spec: layout, raggedQuery, key/value broadcast", () => {
  it("defaults: every tensor bhsd, not ragged", () => {
    const g = parseSpec(spec());
    expect([g.query.layout, g.key.layout, g.value.layout, g.raggedQuery]).toEqual(["bhsd", "bhsd", "bhsd", false]);
  });

  it("takes a layout per tensor and keeps the logical shape", () => {
    const g = parseSpec(spec((s) => { s.query.layout = "bshd"; s.value.layout = "bshd"; }));
    expect([g.query.layout, g.key.layout, g.value.layout]).toEqual(["bshd", "bhsd", "bshd"]);
    expect(g.query.shape).toEqual([3, 4, 16, 32]);
  });

  it("a ragged query is token-major (bshd), and so is an unpaged key/value beside it", () => {
    const g = parseSpec(spec((s) => { s.raggedQuery = true; }));
    expect([g.raggedQuery, g.query.layout, g.key.layout, g.value.layout]).toEqual([true, "bshd", "bshd", "bshd"]);
    expect(parseSpec(spec((s) => { s.raggedQuery = true; s.query.layout = "bshd"; })).query.layout).toBe("bshd");
  });

  it("a ragged query over a page pool keeps the pool's layout (head-major or token-major)", () => {
    const headMajor = parseSpec(spec((s) => { paged(s); s.raggedQuery = true; }));
    expect([headMajor.query.layout, headMajor.key.layout]).toEqual(["bshd", "bhsd"]);
    const tokenMajor = parseSpec(spec((s) => { paged(s); s.raggedQuery = true; s.key.layout = "bshd"; s.value.layout = "bshd"; }));
    expect([tokenMajor.key.layout, tokenMajor.value.layout]).toEqual(["bshd", "bshd"]);
  });

  it("a key/value batch of 1 broadcasts over a larger query batch; a pool's dim 0 is its page count", () => {
    expect(parseSpec(spec((s) => { s.key.shape[0] = 1; s.value.shape[0] = 1; })).key.shape[0]).toBe(1);
    expect(parseSpec(spec((s) => { paged(s); s.key.shape[0] = 1; s.value.shape[0] = 1; })).key.shape[0]).toBe(1);
  });

  it.each([
    ["an unknown layout", (s: Json) => (s.key.layout = "BSHD"), 'SpecError at key.layout: must be one of "bhsd", "bshd"'],
    ["a misspelt layout field", (s: Json) => (s.value.layuot = "bshd"), "SpecError at value: unknown field 'layuot'\n  hint: did you mean 'layout'?"],
    ["a key batch other than 1 or the query's", (s: Json) => { s.key.shape[0] = 2; s.value.shape[0] = 2; }, "SpecError at key.shape[0]: batch 2 differs from query's 3 (only a key/value batch of 1 broadcasts over the query's batch)"],
    ["a value batch other than the key's", (s: Json) => { s.key.shape[0] = 1; }, "SpecError at value.shape[0]: is 3 but key.shape[0] is 1"],
    ["a ragged query that broadcasts an unpaged key/value", (s: Json) => { s.raggedQuery = true; s.key.shape[0] = 1; s.value.shape[0] = 1; }, "SpecError at key.shape[0]: batch 1 differs from query's 3: with raggedQuery, an unpaged key/value is packed per sequence ([totalKv, Hkv, D] with kvStartLoc) and does not broadcast\n  hint: give key and value the query's batch, or use a kvCache"],
    ["a ragged query said to be bhsd", (s: Json) => { s.raggedQuery = true; s.query.layout = "bhsd"; }, 'SpecError at query.layout: is "bhsd", but a ragged query is packed token-major [totalQ, Hq, D]\n  hint: leave query.layout out (or say "bshd")'],
    ["a packed key said to be bhsd", (s: Json) => { s.raggedQuery = true; s.key.layout = "bhsd"; }, 'SpecError at key.layout: is "bhsd", but with raggedQuery and no kvCache, key is packed token-major [totalKv, Hkv, D]\n  hint: leave key.layout out (or say "bshd")'],
    ["raggedQuery that is not a boolean", (s: Json) => (s.raggedQuery = 1), "SpecError at raggedQuery: Invalid input: expected boolean, received number"],
  ])("refuses %s", (_name, edit, message) => {
    const run = () => parseSpec(spec(edit));
    expect(run).toThrow(SpecError);
    expect(run).toThrow(message);
  });

  it("the TypeScript builder takes the same fields", () => {
    const s = spec((x) => { x.raggedQuery = true; paged(x); x.key.layout = "bshd"; x.value.layout = "bshd"; });
    const g = flexAttention(s as Parameters<typeof flexAttention>[0]);
    expect([g.raggedQuery, g.key.layout]).toEqual([true, "bshd"]);
  });

  it("layouts and raggedQuery change neither the generated C++ nor the tuning key", () => {
    for (const [plain, laidOut] of [
      [spec(), spec((s) => { s.query.layout = "bshd"; s.key.layout = "bshd"; s.value.layout = "bshd"; })],
      [spec(), spec((s) => { s.raggedQuery = true; })],
      [spec(paged), spec((s) => { paged(s); s.raggedQuery = true; s.key.layout = "bshd"; s.value.layout = "bshd"; })],
    ]) {
      const [a, b] = [parseSpec(plain), parseSpec(laidOut)];
      const [ca, cb] = [renderKernel(a, renderMods(a)), renderKernel(b, renderMods(b))];
      expect(cb.cpp === ca.cpp && cb.header === ca.header, "kernel source differs").toBe(true);
      expect(tuningKey(b)).toBe(tuningKey(a));
    }
  });
});
