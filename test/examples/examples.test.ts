import { readdirSync } from "node:fs";
import { join } from "node:path";
import { describe, expect, it } from "vitest";
import { useFastBuilds } from "../helpers/fastBuilds.js";
import { sweepPart } from "../helpers/sweeps.js";

const dir = join(import.meta.dirname, "..", "..", "examples", "ts");
const examples = readdirSync(dir).filter((f) => f.endsWith(".ts") && f !== "checkOutput.ts").sort();

/*
 * A sweep over the flags (test/helpers/sweeps.ts): `npm test` builds the examples' kernels fast (every example still
 * runs and checks itself; the shipping -O3 build of the same templates is checked by the example specs of
 * SHIPPING_SAMPLE, the demo and the CLI's kernels), and `npm run test:sweeps` runs them all again at the default flags,
 * as a user's first run builds them.
 */
const fast = sweepPart() === "sample";
if (fast) useFastBuilds();

describe("the runnable TypeScript examples", () => {
  it("include the documented set", () => {
    for (const name of ["causal_prefill", "decode_loop", "engine_decode_loop", "alibi", "sliding_window", "document_mask", "softcap", "custom_table"]) {
      expect(examples).toContain(`${name}.ts`);
    }
  });

  // Each example checks itself against the float64 reference, within its dtype's tolerance. They run side by side,
  // so their kernels compile together (one g++ per core).
  it.concurrent.each(examples)(`%s runs and matches the reference (${fast ? "built fast" : "at the default flags"})`, async (file) => {
    const { main } = (await import(join(dir, file))) as { main: () => Promise<boolean> };
    expect(await main()).toBe(true);
  });
});
