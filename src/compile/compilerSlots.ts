import { availableParallelism } from "node:os";

/**
 * At most one compiler process per core in this process (MINDUCTOR_JOBS overrides the count): `compile()` given many
 * graphs, or an engine and a mod library built at once, fill the cores without oversubscribing them.
 */
let running = 0;
const waiting: Array<() => void> = [];

export function compilerSlots(): number {
  const env = Number(process.env.MINDUCTOR_JOBS);
  return Number.isSafeInteger(env) && env > 0 ? env : availableParallelism();
}

/** Runs `job` once a slot is free; slots are handed out in the order they were asked for. */
export async function withCompilerSlot<T>(job: () => Promise<T>): Promise<T> {
  if (running >= compilerSlots()) await new Promise<void>((resolve) => waiting.push(resolve));
  else running++;
  try {
    return await job();
  } finally {
    // The slot passes straight to the next waiter, so `running` counts it still taken.
    const next = waiting.shift();
    if (next) next();
    else running--;
  }
}
