import { readdirSync } from "node:fs";
import { join } from "node:path";
import { describe, expect, it } from "vitest";

const dir = join(import.meta.dirname, "..", "..", "examples", "ts");
const examples = readdirSync(dir).filter((f) => f.endsWith(".ts") && f !== "checkOutput.ts").sort();

describe("the runnable TypeScript examples", () => {
  it("include the documented set", () => {
    for (const name of ["causal_prefill", "decode_loop", "engine_decode_loop", "alibi", "sliding_window", "document_mask", "softcap", "custom_table"]) {
      expect(examples).toContain(`${name}.ts`);
    }
  });

  // Each example checks itself against the float64 reference, within its dtype's tolerance. They run side by side,
  // so their kernels compile together (one g++ per core).
  it.concurrent.each(examples)("%s runs and matches the reference", async (file) => {
    const { main } = (await import(join(dir, file))) as { main: () => Promise<boolean> };
    expect(await main()).toBe(true);
  });
});
