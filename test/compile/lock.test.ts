import { mkdir, readdir, stat, utimes, writeFile } from "node:fs/promises";
import { hostname } from "node:os";
import { join } from "node:path";
import { execa } from "execa";
import { afterEach, beforeEach, describe, expect, it } from "vitest";
import { CacheLockTimeoutError } from "../../src/compile/index.js";
import { isStaleLock, withLock } from "../../src/compile/lock.js";
import { freshDir } from "./helpers.js";

let root: string;
let cleanup: () => Promise<void>;
beforeEach(async () => ({ dir: root, cleanup } = await freshDir("lock")));
afterEach(() => cleanup());

/** A pid that surely belonged to a process that has exited. */
async function deadPid(): Promise<number> {
  const child = await execa(process.execPath, ["-e", "process.stdout.write(String(process.pid))"]);
  return Number(child.stdout);
}

async function plantLock(path: string, pid: number, host = hostname()): Promise<void> {
  await mkdir(path);
  await writeFile(join(path, "owner.json"), JSON.stringify({ pid, hostname: host, token: "planted" }));
}

describe("withLock", () => {
  it("runs holders of the same lock one at a time and removes the lock after", async () => {
    const path = join(root, "shard", "key.lock");
    const timeline: string[] = [];
    const hold = (name: string) =>
      withLock(path, async () => {
        timeline.push(`${name} in`);
        await new Promise((resolve) => setTimeout(resolve, 30));
        timeline.push(`${name} out`);
        return name;
      });
    expect(await Promise.all([hold("a"), hold("b"), hold("c")])).toEqual(["a", "b", "c"]);
    for (let i = 0; i < timeline.length; i += 2) {
      expect(timeline[i].endsWith(" in")).toBe(true);
      expect(timeline[i + 1]).toBe(timeline[i].replace(" in", " out"));
    }
    expect(await readdir(join(root, "shard"))).toEqual([]);
  });

  it("releases the lock when the body throws", async () => {
    const path = join(root, "key.lock");
    await expect(withLock(path, async () => Promise.reject(new Error("boom")))).rejects.toThrow("boom");
    await expect(stat(path)).rejects.toThrow();
  });

  it("breaks a lock whose owner on this host is dead", async () => {
    const path = join(root, "key.lock");
    await plantLock(path, await deadPid());
    expect(await isStaleLock(path)).toBe(true);
    expect(await withLock(path, async () => "got it")).toBe("got it");
  });

  it("waits for a live owner and gives up after the timeout", async () => {
    const path = join(root, "key.lock");
    await plantLock(path, process.pid);
    expect(await isStaleLock(path)).toBe(false);
    const error = await withLock(path, async () => "never", { timeoutMs: 150 }).catch((e: unknown) => e);
    expect(error).toBeInstanceOf(CacheLockTimeoutError);
    expect((error as Error).message).toContain(path);
  });

  it("breaks a lock whose heartbeat stopped, even if its pid is alive", async () => {
    const path = join(root, "key.lock");
    await plantLock(path, process.pid, "another-host");
    expect(await isStaleLock(path, 60_000)).toBe(false);
    const old = new Date(Date.now() - 10 * 60_000);
    await utimes(join(path, "owner.json"), old, old);
    expect(await isStaleLock(path, 60_000)).toBe(true);
    expect(await withLock(path, async () => "got it", { staleMs: 60_000 })).toBe("got it");
  });

  it("treats a lock without an owner file by its age", async () => {
    const path = join(root, "key.lock");
    await mkdir(path);
    expect(await isStaleLock(path, 60_000)).toBe(false);
    const old = new Date(Date.now() - 10 * 60_000);
    await utimes(path, old, old);
    expect(await isStaleLock(path, 60_000)).toBe(true);
  });
});
