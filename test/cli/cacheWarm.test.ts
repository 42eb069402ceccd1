import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { main } from "../../src/cli/main.js";
import { _resetMemoryCacheForTests, listCache } from "../../src/compile/index.js";
import { compareOutputs, compile, generateInputs, parseSpec, referenceAttention, TOLERANCE, toFloat64 } from "../../src/index.js";
import { useFastBuilds } from "../helpers/fastBuilds.js";

// Plumbing, not arithmetic: its kernels build fast (test/helpers/fastBuilds.ts).
useFastBuilds();

/**
 * `minductor cache warm` and `compile([...])`. The specs are tiny (2 heads, head dim 16, 32 rows): an engine build
 * per configuration (dtype, heads, head dims, block sizes) is the slow part, a few seconds of g++ each.
 */
const shape = (dtype: string) => ({ shape: [1, 2, 32, 16], dtype });
const tensors = (dtype: string) => ({ query: shape(dtype), key: shape(dtype), value: shape(dtype) });
// causal and softcap share a configuration (one engine) and differ in their mods; causal_bf16 needs its own engine.
const SPECS = {
  causal: { name: "warm_causal", ...tensors("float32"), maskMod: "q_idx >= kv_idx", returnLse: true },
  softcap: { name: "warm_softcap", ...tensors("float32"), scoreMod: "20 * tanh(score / 20)" },
  causal_bf16: { name: "warm_causal_bf16", ...tensors("bfloat16"), maskMod: "q_idx >= kv_idx" },
};

interface WarmJson {
  cacheDir: string;
  kernels: Array<{ spec: string; name: string; dtype: string; engine: { key: string; fromCache: string }; mods: { key: string; fromCache: string } }>;
  totals: { kernels: number; engines: number; enginesCompiled: number; modLibraries: number; modLibrariesCompiled: number };
  wallMs: number;
}

function capture() {
  let out = "";
  let err = "";
  return { io: { out: (t: string) => void (out += t), err: (t: string) => void (err += t), interactive: false }, text: () => ({ out, err }) };
}

let dir: string;
let cacheDir: string;
let savedCacheDir: string | undefined;
const specPath = (name: keyof typeof SPECS) => join(dir, `${name}.json`);

beforeAll(() => {
  dir = mkdtempSync(join(tmpdir(), "minductor-warm-"));
  cacheDir = join(dir, "cache");
  for (const [name, spec] of Object.entries(SPECS)) writeFileSync(join(dir, `${name}.json`), JSON.stringify(spec));
  savedCacheDir = process.env.MINDUCTOR_CACHE_DIR;
  process.env.MINDUCTOR_CACHE_DIR = cacheDir;
  _resetMemoryCacheForTests();
});

afterAll(() => {
  if (savedCacheDir === undefined) delete process.env.MINDUCTOR_CACHE_DIR;
  else process.env.MINDUCTOR_CACHE_DIR = savedCacheDir;
  _resetMemoryCacheForTests();
  rmSync(dir, { recursive: true, force: true });
});

describe("minductor cache warm", () => {
  it("fails on a bad spec, naming the file and the field, before anything compiles", async () => {
    const bad = join(dir, "bad.json");
    writeFileSync(bad, JSON.stringify({ ...SPECS.causal, query: { shape: [1, 2, 32], dtype: "float32" } }));
    const run = capture();
    expect(await main(["node", "minductor", "cache", "warm", specPath("causal"), bad], run.io)).toBe(1);
    expect(run.text().err).toContain(bad);
    expect(run.text().err).toContain("query.shape");
    expect(await listCache(cacheDir)).toEqual([]);

    const badDtype = capture();
    expect(await main(["node", "minductor", "cache", "warm", specPath("causal"), "--dtype", "float32,int8"], badDtype.io)).toBe(1);
    expect(badDtype.text().err).toContain("--dtype must be one of");
    expect(await listCache(cacheDir)).toEqual([]);
  });

  it("compiles each distinct engine and mod library once, then finds them all in the cache", async () => {
    const args = ["node", "minductor", "cache", "warm", specPath("causal"), specPath("softcap"), specPath("causal_bf16"), "--json"];
    const cold = capture();
    expect(await main(args, cold.io), cold.text().err).toBe(0);
    const first = JSON.parse(cold.text().out) as WarmJson;
    expect(first.cacheDir).toBe(cacheDir);
    expect(first.totals).toEqual({ kernels: 3, engines: 2, enginesCompiled: 2, modLibraries: 3, modLibrariesCompiled: 3 });
    expect(first.kernels.map((k) => [k.name, k.dtype])).toEqual([
      ["warm_causal", "float32"],
      ["warm_softcap", "float32"],
      ["warm_causal_bf16", "bfloat16"],
    ]);
    for (const k of first.kernels) {
      expect(k.engine.key).toMatch(/^[0-9a-f]{12}$/);
      expect(k.mods.key).toMatch(/^[0-9a-f]{12}$/);
      expect(k.mods.fromCache).toBe("compiled");
    }
    const [causal, softcap, bf16] = first.kernels;
    expect(softcap.engine.key).toBe(causal.engine.key);
    expect(bf16.engine.key).not.toBe(causal.engine.key);
    // One of the two float32 graphs built the shared engine; the other waited for that same build.
    expect([causal.engine.fromCache, softcap.engine.fromCache].sort()).toEqual(["compiled", "memory"]);
    expect(bf16.engine.fromCache).toBe("compiled");
    expect(await listCache(cacheDir)).toHaveLength(5);

    // A new process would know nothing of these builds: forget them, so the libraries must come from the disk.
    _resetMemoryCacheForTests();
    const warm = capture();
    expect(await main(args, warm.io), warm.text().err).toBe(0);
    const second = JSON.parse(warm.text().out) as WarmJson;
    expect(second.totals).toEqual({ kernels: 3, engines: 2, enginesCompiled: 0, modLibraries: 3, modLibrariesCompiled: 0 });
    expect(second.kernels.map((k) => [k.engine.key, k.mods.key])).toEqual(first.kernels.map((k) => [k.engine.key, k.mods.key]));
    for (const k of second.kernels) {
      expect(k.mods.fromCache).toBe("disk");
      expect(["disk", "memory"]).toContain(k.engine.fromCache);
    }

    // The text form: one line per kernel, then the totals.
    const text = capture();
    expect(await main(args.slice(0, -1), text.io), text.text().err).toBe(0);
    const lines = text.text().out.trimEnd().split("\n");
    expect(lines).toHaveLength(4);
    expect(lines[0]).toMatch(new RegExp(`^warm_causal +float32 +engine ${causal.engine.key} cached +mods ${causal.mods.key} cached$`));
    expect(lines[1]).toMatch(new RegExp(`^warm_softcap +float32 +engine ${causal.engine.key} shared +mods ${softcap.mods.key} cached$`));
    expect(lines[3]).toMatch(/^warmed 3 kernel\(s\) in \d+\.\d s: 2 engine\(s\), 0 compiled; 3 mod libraries, 0 compiled/);
  });

  it("warms one spec in several dtypes with --dtype", async () => {
    const run = capture();
    const code = await main(["node", "minductor", "cache", "warm", specPath("softcap"), "--dtype", "float32,bfloat16", "--json"], run.io);
    expect(code, run.text().err).toBe(0);
    const report = JSON.parse(run.text().out) as WarmJson;
    expect(report.kernels.map((k) => [k.name, k.dtype])).toEqual([
      ["warm_softcap", "float32"],
      ["warm_softcap", "bfloat16"],
    ]);
    // Both engines were warmed above; only softcap's bfloat16 mod library is new.
    expect(report.totals).toEqual({ kernels: 2, engines: 2, enginesCompiled: 0, modLibraries: 2, modLibrariesCompiled: 1 });
  });
});

describe("compile([...]) with several specs", () => {
  it("returns one kernel per spec, sharing the engine of their configuration, each computing its own attention", async () => {
    const graphs = [parseSpec(SPECS.causal), parseSpec(SPECS.softcap)];
    const kernels = await compile(graphs, { tuning: false });
    expect(kernels).toHaveLength(2);
    const [a, b] = kernels;
    expect(a.library.engine.key).toBe(b.library.engine.key);
    expect(a.library.mods.key).not.toBe(b.library.mods.key);
    for (const [i, kernel] of kernels.entries()) {
      expect(kernel.graph.name).toBe(graphs[i].name);
      const inputs = generateInputs(graphs[i], 1);
      const got = kernel.run(inputs);
      const want = referenceAttention(graphs[i], inputs);
      const cmp = compareOutputs(toFloat64(got.out), want.out, TOLERANCE[graphs[i].query.dtype]);
      expect(cmp.ok, `${graphs[i].name}: ${JSON.stringify(cmp)}`).toBe(true);
    }
    // Each really runs its own mods: causal masks the future, softcap does not.
    expect(compareOutputs(toFloat64(a.run(generateInputs(graphs[0], 1)).out), toFloat64(b.run(generateInputs(graphs[1], 1)).out), TOLERANCE.float32).ok).toBe(false);
  });
});
