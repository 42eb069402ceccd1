import { cpSync, mkdtempSync, readFileSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { describe, expect, it } from "vitest";
import { main } from "../../src/cli/main.js";
import { renderEngine } from "../../src/codegen/renderKernel.js";
import { goldenCheck, goldenSource, goldenUpdate } from "../../src/golden/golden.js";
import { parseSpec } from "../../src/ir/spec.js";
import { engineSourceHash } from "../../src/kernelLibrary.js";
import { useFastBuilds } from "../helpers/fastBuilds.js";

// Outputs are compared within the dtype's tolerance, which a fast build meets (test/helpers/fastBuilds.ts): this
// file's kernels build fast, the example specs among them (their default-flag builds are e2e/examples.test.ts's).
useFastBuilds();

const root = join(import.meta.dirname, "..", "..");
const quiet = { out: () => {}, err: () => {}, interactive: false };

describe("golden snapshots of the example specs (test/golden: generated C++ and outputs)", () => {
  it("match what the code generates and computes today", async () => {
    const results = await goldenCheck(join(root, "examples", "specs"), { goldenDir: join(root, "test", "golden") });
    const bad = results.filter((r) => r.status !== "ok");
    // To accept a deliberate change: node bin/minductor.js golden update examples/specs --golden-dir test/golden
    expect(bad.map((r) => `${r.spec}: ${r.status}\n${r.sourceDiff ?? ""}`)).toEqual([]);
    expect(results).toHaveLength(12);
  });
});

describe("minductor golden check catches a changed mod", () => {
  it("reports the source diff and the drift, and exits 1", async () => {
    const dir = mkdtempSync(join(tmpdir(), "minductor-golden-"));
    cpSync(join(root, "examples", "specs", "alibi.json"), join(dir, "alibi.json"));
    await goldenUpdate(dir);
    expect((await goldenCheck(dir)).map((r) => r.status)).toEqual(["ok"]);

    const spec = JSON.parse(readFileSync(join(dir, "alibi.json"), "utf8"));
    spec.scoreMod = "score + slopes[h] * (kv_idx - q_idx) * 1.5";
    writeFileSync(join(dir, "alibi.json"), JSON.stringify(spec));
    const [result] = await goldenCheck(dir);
    expect(result.status).toBe("drift");
    expect(result.sourceDiff).toMatch(/^\+.*0x3p-1f/m); // 1.5, printed exactly
    expect(result.out!.ok).toBe(false);

    let stdout = "";
    let stderr = "";
    const code = await main(["node", "minductor", "golden", "check", dir], { out: (s) => void (stdout += s), err: (s) => void (stderr += s), interactive: false });
    expect(code).toBe(1);
    expect(stdout).toContain("drift   alibi");
    expect(stderr).toContain("1 of 1 golden snapshot(s) differ: alibi (drift)");
    expect(await main(["node", "minductor", "golden", "update", dir], quiet)).toBe(0);
    expect(await main(["node", "minductor", "golden", "check", dir], quiet)).toBe(0);
  });

  it("an engine change is reported once, by its hash, apart from the specs' own C++", async () => {
    const dir = mkdtempSync(join(tmpdir(), "minductor-golden-"));
    for (const spec of ["alibi", "identity"]) cpSync(join(root, "examples", "specs", `${spec}.json`), join(dir, `${spec}.json`));
    await goldenUpdate(dir);
    // Both specs share one configuration, so one engine: pretend they were checked against another one.
    const other = "ab".repeat(32);
    const stored = readFileSync(join(dir, "__golden__", "alibi.engine"), "utf8").match(/^[0-9a-f]{64}$/m)![0];
    for (const spec of ["alibi", "identity"]) writeFileSync(join(dir, "__golden__", `${spec}.engine`), `# edited\n${other}\n`);
    const results = await goldenCheck(dir);
    expect(results.map((r) => [r.status, r.sourceDiff, r.engineChange])).toEqual([
      ["engine-changed", undefined, { stored: other.slice(0, 12), now: stored.slice(0, 12) }],
      ["engine-changed", undefined, { stored: other.slice(0, 12), now: stored.slice(0, 12) }],
    ]);

    let stdout = "";
    let stderr = "";
    const code = await main(["node", "minductor", "golden", "check", dir], { out: (s) => void (stdout += s), err: (s) => void (stderr += s), interactive: false });
    expect(code).toBe(1);
    const engineLines = stdout.split("\n").filter((l) => l.startsWith("engine changed"));
    expect(engineLines).toEqual([expect.stringContaining(`${other.slice(0, 12)} -> ${stored.slice(0, 12)}`)]);
    expect(engineLines[0]).toContain("run by alibi, identity");
    expect(stderr).toContain("2 of 2 golden snapshot(s) differ: alibi (engine-changed), identity (engine-changed)");
    expect(await main(["node", "minductor", "golden", "update", dir], quiet)).toBe(0);
    expect(await main(["node", "minductor", "golden", "check", dir], quiet)).toBe(0);
  });

  it("names the engine by its source and the prelude it includes: a header change is an engine change", () => {
    const graph = parseSpec(JSON.parse(readFileSync(join(root, "examples", "specs", "alibi.json"), "utf8")));
    const engine = renderEngine(graph);
    expect(engine.prelude?.text).toContain("md_axpy_rows");
    const editedPrelude = { ...engine, prelude: { ...engine.prelude!, text: `${engine.prelude!.text}\n/* edited */\n` } };
    expect(engineSourceHash(editedPrelude)).not.toBe(engineSourceHash(engine));
    expect(engineSourceHash({ ...engine, cpp: `${engine.cpp}\n` })).not.toBe(engineSourceHash(engine));
    expect(goldenSource(graph).engineHash).toBe(engineSourceHash(engine));
  });

  it("stores only what depends on the spec: no pasted runtime header, no engine hash", () => {
    const cpp = readFileSync(join(root, "test", "golden", "alibi.cpp"), "utf8");
    expect(cpp.length).toBeLessThan(20_000);
    expect(cpp).not.toMatch(/[0-9a-f]{64}/);
    expect(cpp).not.toContain("md_flash_attention_task");
    expect(cpp).not.toContain("namespace mdm");
    expect(cpp).toContain('#include "md_prelude.h"');
    expect(readFileSync(join(root, "test", "golden", "alibi.engine"), "utf8")).toMatch(/^[0-9a-f]{64}$/m);
  });

  it("a spec without snapshots is reported missing", async () => {
    const dir = mkdtempSync(join(tmpdir(), "minductor-golden-"));
    cpSync(join(root, "examples", "specs", "causal.json"), join(dir, "causal.json"));
    expect((await goldenCheck(dir)).map((r) => r.status)).toEqual(["missing"]);
  });
});
