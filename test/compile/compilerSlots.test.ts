import { afterEach, describe, expect, it, vi } from "vitest";
import { splitBuilds, withCompilerSlot } from "../../src/compile/compilerSlots.js";

afterEach(() => vi.unstubAllEnvs());

/** A job that records when it starts and ends once `release` is called. */
function gatedJob(log: string[], name: string) {
  let release!: () => void;
  const gate = new Promise<void>((resolve) => (release = resolve));
  const job = async () => {
    log.push(`start ${name}`);
    await gate;
    log.push(`end ${name}`);
  };
  return { job, release };
}

describe("compiler slots", () => {
  it("run at most MINDUCTOR_JOBS jobs at once, in the order they were asked for", async () => {
    vi.stubEnv("MINDUCTOR_JOBS", "2");
    const log: string[] = [];
    const [a, b, c] = ["a", "b", "c"].map((n) => gatedJob(log, n));
    const runs = [withCompilerSlot(a.job), withCompilerSlot(b.job), withCompilerSlot(c.job)];
    await new Promise((resolve) => setTimeout(resolve, 10));
    expect(log).toEqual(["start a", "start b"]);
    b.release();
    await runs[1];
    await new Promise((resolve) => setTimeout(resolve, 10));
    expect(log).toEqual(["start a", "start b", "end b", "start c"]);
    a.release();
    c.release();
    await Promise.all(runs);
  });

  it("give a background job a slot only after every other job asked for in the meantime", async () => {
    vi.stubEnv("MINDUCTOR_JOBS", "1");
    const log: string[] = [];
    const [first, background, second] = ["first", "background", "second"].map((n) => gatedJob(log, n));
    const runs = [withCompilerSlot(first.job)];
    runs.push(withCompilerSlot(background.job, { background: true }));
    // Asked for after the background job, in the same turn: it still goes first.
    runs.push(withCompilerSlot(second.job));
    first.release();
    second.release();
    background.release();
    await Promise.all(runs);
    expect(log.filter((l) => l.startsWith("start"))).toEqual(["start first", "start second", "start background"]);
  });

  it("even when a slot is free as the background job asks: a job asked for in the same turn takes it", async () => {
    vi.stubEnv("MINDUCTOR_JOBS", "1");
    const log: string[] = [];
    const [background, next] = ["background", "next"].map((n) => gatedJob(log, n));
    const runs = [withCompilerSlot(background.job, { background: true }), withCompilerSlot(next.job)];
    await new Promise((resolve) => setTimeout(resolve, 10));
    expect(log).toEqual(["start next"]);
    next.release();
    background.release();
    await Promise.all(runs);
    expect(log).toEqual(["start next", "end next", "start background", "end background"]);
  });
});

describe("splitBuilds", () => {
  it("is on with more than one compiler slot, off with one or with MINDUCTOR_SPLIT_BUILDS=0", () => {
    vi.stubEnv("MINDUCTOR_SPLIT_BUILDS", "");
    vi.stubEnv("MINDUCTOR_JOBS", "2");
    expect(splitBuilds()).toBe(true);
    vi.stubEnv("MINDUCTOR_JOBS", "1");
    expect(splitBuilds()).toBe(false);
    vi.stubEnv("MINDUCTOR_JOBS", "2");
    vi.stubEnv("MINDUCTOR_SPLIT_BUILDS", "0");
    expect(splitBuilds()).toBe(false);
  });
});
