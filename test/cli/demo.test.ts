/**
 * `minductor demo`, what `npm start` runs: one bf16 kernel serves the causal prefill of the prompt and the decode steps
 * (after the untimed warm-up calls), and the demo's own checks of sampled outputs against the float64 reference pass.
 * Built at the default flags, as `npm start` builds it (test/globalSetup.ts starts the build early): at -O0 the run
 * itself took 13-14 s of CPU against 4 at -O3, more than the -O3 build costs over a fast one. No figure of the run is
 * judged here.
 */
import { describe, expect, it } from "vitest";
import { main } from "../../src/cli/main.js";
import { DEMO, demoGraph, prefillPeak } from "../../src/demo/demo.js";

function capture() {
  let out = "";
  let err = "";
  return { io: { out: (t: string) => void (out += t), err: (t: string) => void (err += t), interactive: false }, text: () => ({ out, err }) };
}

interface DemoJson {
  prefill: { ms: number; gflops: number; choice: { template: string } };
  decode: { tokensPerSecond: number; medianMs: number; coldMedianMs: number; gbs: number; choice: { template: string }; compiles: number };
  checks: Array<{ what: string; maxAbs: number; ok: boolean }>;
}

describe("minductor demo", () => {
  it("serves the prefill and every decode call with one kernel, and its sampled outputs match the float64 reference", async () => {
    const run = capture();
    expect(await main(["node", "minductor", "demo", "--no-probe", "--json"], run.io), run.text().err).toBe(0);
    const result = JSON.parse(run.text().out) as DemoJson;
    expect(result.prefill.choice.template).toBe("flash_attention");
    expect(result.decode.choice.template).toBe("flash_decoding");
    expect(result.decode.compiles).toBe(1);
    expect(result.checks.map((c) => c.what)).toEqual([
      "decode step 0",
      `decode step ${DEMO.decodeSteps / 2}`,
      `decode step ${DEMO.decodeSteps - 1}`,
      `prefill rows ${DEMO.promptLen - 16}..${DEMO.promptLen - 1}`,
    ]);
    for (const c of result.checks) expect(c.ok, `${c.what}: max abs error ${c.maxAbs}`).toBe(true);
    for (const figure of [result.decode.medianMs, result.decode.coldMedianMs, result.decode.gbs, result.prefill.ms])
      expect(Number.isFinite(figure) && figure > 0).toBe(true);
  });
});

describe("the demo's prefill figure", () => {
  it("is judged against the bf16 dot-product peak where the machine has it (bf16 K/V run their products there), else the fp32 FMA peak", () => {
    const graph = demoGraph();
    expect(graph.key.dtype).toBe("bfloat16");
    expect(prefillPeak({ readBandwidthGBs: 50, fmaPeakGflops: 400, bf16DotPeakGflops: 800 }, graph)).toEqual({ name: "bf16 dot-product (VDPBF16PS)", gflops: 800 });
    expect(prefillPeak({ readBandwidthGBs: 50, fmaPeakGflops: 400 }, graph)).toEqual({ name: "fp32 FMA", gflops: 400 });
    const fp32 = { ...graph, query: { ...graph.query, dtype: "float32" as const }, key: { ...graph.key, dtype: "float32" as const }, value: { ...graph.value, dtype: "float32" as const } };
    expect(prefillPeak({ readBandwidthGBs: 50, fmaPeakGflops: 400, bf16DotPeakGflops: 800 }, fp32).name).toBe("fp32 FMA");
  });
});
