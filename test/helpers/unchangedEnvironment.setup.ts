/**
 * Setup of the files that share one worker (SHARED_WORKER_FILES in vitest.config.ts): each must leave the environment
 * as it found it, since the files after it in the worker would otherwise run with its settings (a compiler flag set
 * for one file's builds, say). A variable a file stubs with `vi.stubEnv` and restores is fine.
 */
import { afterAll, expect } from "vitest";

/* Taken when vitest runs this setup, before it imports the test file: a file's top level may set variables too. */
const before = { ...process.env };
afterAll(() => {
  expect({ ...process.env }, "the environment this file leaves to the next file in its worker").toEqual(before);
});
