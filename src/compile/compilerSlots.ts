import { availableParallelism } from "node:os";

/**
 * At most one compiler process per core in this process (MINDUCTOR_JOBS overrides the count): `compile()` given many
 * graphs, or an engine and a mod library built at once, fill the cores without oversubscribing them.
 */
let running = 0;
const waiting: Array<() => void> = [];
const waitingBackground: Array<() => void> = [];

export function compilerSlots(): number {
  const env = Number(process.env.MINDUCTOR_JOBS);
  return Number.isSafeInteger(env) && env > 0 ? env : availableParallelism();
}

/**
 * Whether a source in several translation units (an engine) builds them at once: when this process may run more than
 * one compiler, unless MINDUCTOR_SPLIT_BUILDS=0. The test suite turns it off: its files and prebuild already keep every
 * core compiling, where the units' second parse of the shared parts would only add compiler time.
 */
export function splitBuilds(): boolean {
  return process.env.MINDUCTOR_SPLIT_BUILDS?.trim() !== "0" && compilerSlots() > 1;
}

/**
 * Runs `job` once a slot is free; slots are handed out in the order they were asked for, except that a `background`
 * job (a precompiled prelude that nothing waits for) comes after every other: it asks only once the current round of
 * work has run (a later macrotask), and waits behind any other job still waiting.
 */
export async function withCompilerSlot<T>(job: () => Promise<T>, options: { background?: boolean } = {}): Promise<T> {
  if (options.background) await new Promise<void>((resolve) => setImmediate(resolve));
  const queue = options.background ? waitingBackground : waiting;
  if (running >= compilerSlots()) await new Promise<void>((resolve) => queue.push(resolve));
  else running++;
  try {
    return await job();
  } finally {
    // The slot passes straight to the next waiter, so `running` counts it still taken.
    const next = waiting.shift() ?? waitingBackground.shift();
    if (next) next();
    else running--;
  }
}
