import { mkdir, readFile, readdir, writeFile } from "node:fs/promises";
import { join } from "node:path";
import { afterEach, beforeEach, describe, expect, it } from "vitest";
import { buildEntry, compilerArgv } from "../../src/compile/buildEntry.js";
import { cacheKey } from "../../src/compile/cacheKey.js";
import { compilerInfo } from "../../src/compile/compilerInfo.js";
import { type EntryContents, inspectEntry, publishEntry } from "../../src/compile/diskCache.js";
import { entryDir, tempRoot } from "../../src/compile/entryLayout.js";
import { answerSource, callAnswer, freshDir } from "./helpers.js";

let cacheDir: string;
let cleanup: () => Promise<void>;
beforeEach(async () => {
  ({ dir: cacheDir, cleanup } = await freshDir("disk"));
  await mkdir(tempRoot(cacheDir), { recursive: true });
});
afterEach(() => cleanup());

const FLAGS = ["-O1", "-shared", "-fPIC"];

async function contents(source: string): Promise<{ wanted: EntryContents; argv: string[] }> {
  const argv = compilerArgv("g++", FLAGS);
  const info = await compilerInfo("g++", FLAGS);
  return { wanted: { key: cacheKey(source, argv, info.version, info.cpuFeatures), source }, argv };
}

describe("publishEntry", () => {
  it("keeps the entry published first when two builds of a key race", async () => {
    const { wanted, argv } = await contents(answerSource(31));
    const info = await compilerInfo("g++", FLAGS);
    const ours = await buildEntry(cacheDir, wanted, argv, info);
    const theirs = await buildEntry(cacheDir, wanted, argv, info);

    expect(await inspectEntry(cacheDir, wanted)).toEqual({ status: "absent" });
    expect(await publishEntry(cacheDir, theirs, wanted)).toBe("ours");
    const published = await readFile(join(entryDir(cacheDir, wanted.key), "manifest.json"), "utf8");
    expect(await publishEntry(cacheDir, ours, wanted)).toBe("theirs");

    expect(await readFile(join(entryDir(cacheDir, wanted.key), "manifest.json"), "utf8")).toBe(published);
    expect(await readdir(tempRoot(cacheDir))).toEqual([]);
    expect(callAnswer(join(entryDir(cacheDir, wanted.key), "kernel.so"))).toBe(31);
  });

  it("replaces a corrupt entry that is in the way", async () => {
    const { wanted, argv } = await contents(answerSource(32));
    const dir = entryDir(cacheDir, wanted.key);
    await mkdir(dir, { recursive: true });
    await writeFile(join(dir, "kernel.so"), "garbage");
    expect((await inspectEntry(cacheDir, wanted)).status).toBe("corrupt");

    const built = await buildEntry(cacheDir, wanted, argv, await compilerInfo("g++", FLAGS));
    expect(await publishEntry(cacheDir, built, wanted)).toBe("ours");
    expect((await inspectEntry(cacheDir, wanted)).status).toBe("valid");
    expect(await readdir(tempRoot(cacheDir))).toEqual([]);
  });
});

describe("inspectEntry", () => {
  it("rejects an entry whose manifest was written for another source", async () => {
    const { wanted, argv } = await contents(answerSource(33));
    const built = await buildEntry(cacheDir, wanted, argv, await compilerInfo("g++", FLAGS));
    await publishEntry(cacheDir, built, wanted);
    expect((await inspectEntry(cacheDir, wanted)).status).toBe("valid");
    const state = await inspectEntry(cacheDir, { ...wanted, source: answerSource(34) });
    expect(state).toMatchObject({ status: "corrupt" });
    const withHeader = await inspectEntry(cacheDir, { ...wanted, header: "// h\n" });
    expect(withHeader).toMatchObject({ status: "corrupt" });
  });
});
