/** Kernels a test file declares up front, builds once (in parallel, in beforeAll) and then calls. */
import { buildKernel, type KernelConfig } from "./buildKernel.js";
import type { Mods } from "./mods.js";
import { type KernelLibrary, openKernel } from "./native.js";

export interface TestKernel {
  config: KernelConfig;
  mods: Mods;
  lib?: KernelLibrary;
}

export const testKernel = (config: KernelConfig, mods: Mods): TestKernel => ({ config, mods });

/** Compiles and loads every kernel of the set, filling in `lib`. */
export async function openKernels(kernels: Record<string, TestKernel>): Promise<void> {
  await Promise.all(
    Object.values(kernels).map(async (k) => {
      k.lib = openKernel(await buildKernel(k.config, k.mods.cpp));
    }),
  );
}
