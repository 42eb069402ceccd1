/**
 * The CLI with layouts and ragged batches: `run --check` on BSHD and ragged specs, the files' shapes, out.npy in the
 * query's layout, and a BSHD file giving the same bits as the same values stored BHSD. Two small kernels (the
 * bshd_prefill and ragged_paged example specs); the other specs here only change layouts, so they share those builds.
 */
import { copyFileSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { main } from "../../src/cli/main.js";
import { readNpy } from "../../src/io/npy.js";
import { compareOutputs, TOLERANCE } from "../../src/reference/compareOutputs.js";
import { toFloat64 } from "../../src/runtime/tensor.js";

const examples = join(import.meta.dirname, "..", "..", "examples", "specs");
let dir: string;

function cli(...args: string[]) {
  let out = "";
  let err = "";
  const io = { out: (t: string) => void (out += t), err: (t: string) => void (err += t), interactive: false };
  return main(["node", "minductor", ...args], io).then((code) => ({ code, out, err }));
}
const npy = (...path: string[]) => readNpy(join(dir, ...path));
const bits = (...path: string[]) => Array.from(toFloat64(npy(...path)));
/** Row-major [d0, d1, d2, d3] values with dims 1 and 2 swapped ([B, H, L, D] <-> [B, L, H, D]). */
function swap12(v: number[], [d0, d1, d2, d3]: number[]): number[] {
  const out = new Array<number>(v.length);
  for (let a = 0; a < d0; a++) for (let b = 0; b < d1; b++) for (let c = 0; c < d2; c++) for (let d = 0; d < d3; d++) {
    out[((a * d2 + c) * d1 + b) * d3 + d] = v[((a * d1 + b) * d2 + c) * d3 + d];
  }
  return out;
}
/** A variant of an example spec, written to the scratch dir. */
function variant(example: string, name: string, edit: (s: Record<string, any>) => void): string {
  const spec = JSON.parse(readFileSync(join(examples, `${example}.json`), "utf8"));
  spec.name = name;
  edit(spec);
  const path = join(dir, `${name}.json`);
  writeFileSync(path, JSON.stringify(spec));
  return path;
}
const noLayouts = (s: Record<string, any>) => ["query", "key", "value"].forEach((f) => delete s[f].layout);

const SMALL = ["--q-len", "12", "--kv-len", "20", "--seed", "3"];
let bshd: string;
let bhsd: string;
let ragged: string;

beforeAll(() => {
  dir = mkdtempSync(join(tmpdir(), "minductor-cli-layouts-"));
  bshd = join(dir, "bshd_prefill.json");
  copyFileSync(join(examples, "bshd_prefill.json"), bshd);
  bhsd = variant("bshd_prefill", "bhsd_twin", noLayouts);
  ragged = join(dir, "ragged_paged.json");
  copyFileSync(join(examples, "ragged_paged.json"), ragged);
});
afterAll(() => rmSync(dir, { recursive: true, force: true }));

describe("minductor run with layouts", () => {
  it("bshd: --check passes; the files are [B, L, H, D], out.npy too, lse.npy [B, Hq, Lq]", async () => {
    const r = await cli("run", bshd, ...SMALL, "--check", "--json", "--out", join(dir, "bshd"));
    expect(r.code, r.err).toBe(0);
    const report = JSON.parse(r.out);
    expect(report.check.out.ok).toBe(true);
    expect(report.check.lse.ok).toBe(true);
    expect(report.layout).toEqual({ query: "bshd", key: "bshd", value: "bshd", out: "bshd" });
    expect(report.shape.out).toEqual([2, 8, 12, 64]); // logical
    expect(npy("bshd", "query.npy").shape).toEqual([2, 12, 8, 64]);
    expect(npy("bshd", "key.npy").shape).toEqual([2, 20, 2, 64]);
    expect(npy("bshd", "value.npy").shape).toEqual([2, 20, 2, 64]);
    expect(npy("bshd", "out.npy").shape).toEqual([2, 12, 8, 64]);
    expect(npy("bshd", "lse.npy").shape).toEqual([2, 8, 12]);
  });

  it("reading BSHD files gives the bits of the same values stored BHSD (out.npy transposed, lse.npy equal)", async () => {
    expect((await cli("run", bshd, ...SMALL, "--out", join(dir, "bshd_gen"))).code).toBe(0);
    expect((await cli("run", bhsd, ...SMALL, "--out", join(dir, "bhsd"))).code).toBe(0);
    // The generated inputs hold the same logical values in both layouts: the files are transposes of each other.
    expect(bits("bshd_gen", "query.npy")).toEqual(swap12(bits("bhsd", "query.npy"), [2, 8, 12, 64]));
    expect(bits("bshd_gen", "key.npy")).toEqual(swap12(bits("bhsd", "key.npy"), [2, 2, 20, 64]));
    // Now read the BSHD files back (permuted views of the file's data) and compare with the BHSD run, bit for bit.
    const r = await cli("run", bshd, "--inputs", join(dir, "bshd_gen"), "--out", join(dir, "bshd_read"));
    expect(r.code, r.err).toBe(0);
    expect(bits("bshd_read", "out.npy")).toEqual(swap12(bits("bhsd", "out.npy"), [2, 8, 12, 64]));
    expect(bits("bshd_read", "lse.npy")).toEqual(bits("bhsd", "lse.npy"));
  });

  it("reference follows the same layouts: out.npy [B, L, H, D] within the bf16 tolerance of the kernel's", async () => {
    const r = await cli("reference", bshd, "--inputs", join(dir, "bshd"), "--out", join(dir, "bshd_ref"));
    expect(r.code, r.err).toBe(0);
    expect(npy("bshd_ref", "out.npy").shape).toEqual([2, 12, 8, 64]);
    const out = compareOutputs(toFloat64(npy("bshd", "out.npy")), toFloat64(npy("bshd_ref", "out.npy")), TOLERANCE.bfloat16);
    expect(out.ok, JSON.stringify(out)).toBe(true);
  });

  it("a file in the wrong layout is refused, naming the file and the dims it should have", async () => {
    const r = await cli("run", bshd, "--inputs", join(dir, "bhsd"));
    expect(r.code).toBe(1);
    expect(r.err).toContain("--inputs: query.npy has shape [2, 8, 12, 64], expected [B, L, Hq=8, D=64] (layout bshd)");
  });

  it("a key/value batch of 1 broadcasts over the query's batch: --check passes, key.npy has batch 1", async () => {
    const spec = variant("bshd_prefill", "broadcast", (s) => {
      s.key.shape[0] = 1;
      s.value.shape[0] = 1;
    });
    const r = await cli("run", spec, ...SMALL, "--check", "--out", join(dir, "broadcast"));
    expect(r.code, r.err).toBe(0);
    expect(r.out).toMatch(/check out: .*: ok/);
    expect(npy("broadcast", "query.npy").shape).toEqual([2, 12, 8, 64]);
    expect(npy("broadcast", "key.npy").shape).toEqual([1, 20, 2, 64]);
  });
});

describe("minductor run with ragged batches", () => {
  it("over a token-major pool: --check passes; query.npy [totalQ, Hq, D] with qStartLoc.npy, out.npy [totalQ, Hq, Dv], lse.npy [totalQ, Hq]", async () => {
    const r = await cli("run", ragged, "--q-len", "6", "--kv-len", "40", "--check", "--out", join(dir, "ragged"));
    expect(r.code, r.err).toBe(0);
    expect(r.out).toMatch(/check out: .*: ok/);
    expect(r.out).toMatch(/check lse: .*: ok/);
    expect(r.out).toContain("ragged   4 sequences, query rows [6, 1, 2, 1], kv lengths [40, 33, 36, 39]");
    // raggedQueryRows(4, 6, b) = 6, 6 - 5, 6 - 10 mod 6, 1: a prefill chunk and decode rows in one call
    expect(bits("ragged", "qStartLoc.npy")).toEqual([0, 6, 7, 9, 10]);
    expect(npy("ragged", "qStartLoc.npy").dtype).toBe("int32");
    expect(npy("ragged", "query.npy").shape).toEqual([10, 8, 64]);
    expect(npy("ragged", "key.npy").shape).toEqual([64, 16, 2, 64]); // token-major pool
    expect(npy("ragged", "out.npy").shape).toEqual([10, 8, 64]);
    expect(npy("ragged", "lse.npy").shape).toEqual([10, 8]);

    const again = await cli("run", ragged, "--inputs", join(dir, "ragged"), "--out", join(dir, "ragged_read"));
    expect(again.code, again.err).toBe(0);
    expect(bits("ragged_read", "out.npy")).toEqual(bits("ragged", "out.npy"));

    const ref = await cli("reference", ragged, "--inputs", join(dir, "ragged"), "--out", join(dir, "ragged_ref"));
    expect(ref.code, ref.err).toBe(0);
    expect(npy("ragged_ref", "lse.npy").shape).toEqual([10, 8]);
    expect(compareOutputs(toFloat64(npy("ragged", "out.npy")), toFloat64(npy("ragged_ref", "out.npy")), TOLERANCE.float32).ok).toBe(true);
  });

  it("packed key/value: key.npy [totalKv, Hkv, D] with kvStartLoc.npy; --check passes", async () => {
    const spec = variant("bshd_prefill", "ragged_packed", (s) => {
      noLayouts(s);
      s.raggedQuery = true;
    });
    const r = await cli("run", spec, ...SMALL, "--check", "--json", "--out", join(dir, "packed"));
    expect(r.code, r.err).toBe(0);
    const report = JSON.parse(r.out);
    expect(report.check.out.ok && report.check.lse.ok).toBe(true);
    expect(report.layout).toEqual({ query: "packed", key: "packed", value: "packed", out: "packed" });
    expect(report.sequences).toEqual({ count: 2, queryRows: [12, 1], kvLengths: [20, 18] });
    expect(bits("packed", "kvStartLoc.npy")).toEqual([0, 20, 38]);
    expect(npy("packed", "key.npy").shape).toEqual([38, 2, 64]);
    expect(npy("packed", "query.npy").shape).toEqual([13, 8, 64]);
    expect(npy("packed", "out.npy").shape).toEqual([13, 8, 64]);
  });

  it("a missing qStartLoc.npy is named", async () => {
    rmSync(join(dir, "ragged", "qStartLoc.npy"));
    const r = await cli("run", ragged, "--inputs", join(dir, "ragged"));
    expect(r.code).toBe(1);
    expect(r.err).toContain("--inputs: qStartLoc.npy is missing");
  });
});

describe("minductor explain", () => {
  it("prints each tensor's layout and whether the query is ragged", async () => {
    const a = await cli("explain", bshd, "--no-choice");
    expect(a.out).toContain("query    [2, 8, 128, 64] bfloat16 (bshd: file [B, L, Hq, D])");
    expect(a.out).toContain("ragged   no");
    const b = await cli("explain", ragged, "--no-choice");
    expect(b.out).toContain("query    [4, 8, 16, 64] float32 (packed: file [totalQ, Hq, D])");
    expect(b.out).toContain("key      [64, 2, 16, 64] float32 (bshd, token-major pool: file [numPages, pageSize, Hkv, D])");
    expect(b.out).toMatch(/^ {2}ragged {3}yes/m);
    const json = JSON.parse((await cli("explain", ragged, "--no-choice", "--json")).out);
    expect([json.raggedQuery, json.query.layout, json.key.layout]).toEqual([true, "bshd", "bshd"]);
  });

  it("decides for a ragged spec as run does: by the shortest sequence of the batch run would draw", async () => {
    // ragged_paged: B 4, q_len 16; generated sequences have 16, 11, 6 and 1 query rows.
    const explained = JSON.parse((await cli("explain", ragged, "--json")).out);
    expect(explained.call.qLen).toBe(1);
    expect(explained.choice.template).toBe("flash_decoding");
    const ran = await cli("run", ragged);
    expect(ran.code).toBe(0);
    expect(ran.out).toContain("query rows [16, 11, 6, 1]");
    expect(ran.out).toContain(`template ${explained.choice.template}`);
  });
});
