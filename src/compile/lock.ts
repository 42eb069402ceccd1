import { randomBytes } from "node:crypto";
import { mkdir, readFile, rename, rm, stat, utimes, writeFile } from "node:fs/promises";
import { hostname } from "node:os";
import { dirname } from "node:path";
import { setTimeout as sleep } from "node:timers/promises";
import { CacheLockTimeoutError } from "./errors.js";
import { isProcessAlive } from "./processAlive.js";

/*
 * One lock per cache key across processes: `mkdir` is atomic on every local filesystem, so whoever creates the
 * directory owns the key. The lock only saves duplicate g++ runs; correctness never depends on it, because
 * entries are published by an atomic rename and verified by checksum. That is why breaking a stale lock may
 * race harmlessly: the worst case is one extra compile.
 */

export interface LockOptions {
  /** A lock whose heartbeat is older than this is abandoned even if its pid looks alive (pid reuse). */
  staleMs?: number;
  /** Give up waiting for a live owner after this long. */
  timeoutMs?: number;
  /** How often the owner refreshes its heartbeat. */
  heartbeatMs?: number;
}

const OWNER_FILE = "owner.json";
const DEFAULTS: Required<LockOptions> = { staleMs: 120_000, timeoutMs: 15 * 60_000, heartbeatMs: 10_000 };
const MAX_POLL_MS = 250;

interface Owner {
  pid: number;
  hostname: string;
  token: string;
}

/** Runs `body` while holding the lock directory `path`, waiting for (or breaking) another holder first. */
export async function withLock<T>(path: string, body: () => Promise<T>, options: LockOptions = {}): Promise<T> {
  const settings = { ...DEFAULTS, ...options };
  const owner = await acquire(path, settings);
  const heartbeat = setInterval(() => {
    const now = new Date();
    utimes(`${path}/${OWNER_FILE}`, now, now).catch(() => {});
  }, settings.heartbeatMs);
  heartbeat.unref();
  try {
    return await body();
  } finally {
    clearInterval(heartbeat);
    await release(path, owner);
  }
}

async function acquire(path: string, settings: Required<LockOptions>): Promise<Owner> {
  const started = Date.now();
  let pollMs = 10;
  for (;;) {
    try {
      await mkdir(path);
      const owner: Owner = { pid: process.pid, hostname: hostname(), token: randomBytes(8).toString("hex") };
      await writeFile(`${path}/${OWNER_FILE}`, JSON.stringify(owner));
      return owner;
    } catch (error) {
      const code = (error as NodeJS.ErrnoException).code;
      if (code === "ENOENT") {
        await mkdir(dirname(path), { recursive: true });
        continue;
      }
      if (code !== "EEXIST") throw error;
    }
    if (await isStaleLock(path, settings.staleMs)) {
      await breakLock(path);
      continue;
    }
    const waited = Date.now() - started;
    if (waited > settings.timeoutMs) throw new CacheLockTimeoutError(path, waited);
    await sleep(pollMs);
    pollMs = Math.min(pollMs * 2, MAX_POLL_MS);
  }
}

/** Abandoned: the owner on this host is dead, or nobody refreshed the heartbeat for `staleMs`. */
export async function isStaleLock(path: string, staleMs: number = DEFAULTS.staleMs): Promise<boolean> {
  const owner = await readOwner(path);
  if (owner && owner.hostname === hostname() && !isProcessAlive(owner.pid)) return true;
  // Without a readable owner (killed between mkdir and writeFile) the directory's own age is the heartbeat.
  const heartbeat = (await mtimeMs(`${path}/${OWNER_FILE}`)) ?? (await mtimeMs(path));
  return heartbeat !== undefined && Date.now() - heartbeat > staleMs;
}

async function breakLock(path: string): Promise<void> {
  const aside = `${path}.stale-${process.pid}-${randomBytes(4).toString("hex")}`;
  try {
    await rename(path, aside);
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === "ENOENT") return; // someone else broke or released it
    throw error;
  }
  await rm(aside, { recursive: true, force: true });
}

async function release(path: string, owner: Owner): Promise<void> {
  // If we were judged stale and someone else now holds the key, their lock is not ours to remove.
  const current = await readOwner(path);
  if (current?.token !== owner.token) return;
  await rm(path, { recursive: true, force: true });
}

async function readOwner(path: string): Promise<Owner | undefined> {
  try {
    const parsed = JSON.parse(await readFile(`${path}/${OWNER_FILE}`, "utf8")) as Partial<Owner>;
    return typeof parsed.pid === "number" && typeof parsed.hostname === "string" && typeof parsed.token === "string"
      ? (parsed as Owner)
      : undefined;
  } catch {
    return undefined;
  }
}

async function mtimeMs(path: string): Promise<number | undefined> {
  try {
    return (await stat(path)).mtimeMs;
  } catch {
    return undefined;
  }
}
