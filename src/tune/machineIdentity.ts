/** The machine a measurement belongs to (cpu, cores, ISA, OMP_NUM_THREADS): probe figures and tuned choices are kept per identity. */
import { createHash } from "node:crypto";
import { availableParallelism, cpus } from "node:os";
import { compilerInfo } from "../compile/index.js";
import { defaultCxx, defaultCxxflags } from "../compile/options.js";

/** What the probe's figures depend on; a machine whose identity changes is measured again. */
export interface MachineIdentity {
  cpu: string;
  /** CPUs this process may run on (affinity and cgroup limits included). */
  cores: number;
  /** The SIMD path probe.cpp compiles to with the kernel flags: "avx512f", "avx2+fma" or "scalar". */
  isa: string;
  /** OpenMP's default team size follows it, and with it every all-threads figure; "" when unset. */
  ompNumThreads: string;
}

export async function machineIdentity(): Promise<MachineIdentity> {
  const { cpuFeatures } = await compilerInfo(defaultCxx(), defaultCxxflags());
  return {
    cpu: cpus()[0]?.model.trim() || `unknown ${process.arch} cpu`,
    cores: availableParallelism(),
    isa: isaOf(cpuFeatures),
    ompNumThreads: process.env.OMP_NUM_THREADS?.trim() ?? "",
  };
}

/** The same choice as the `#if` chain of probe.cpp, made from the compiler's feature macros without compiling it. */
export function isaOf(cpuFeatures: string): string {
  const features = new Set(cpuFeatures.split(/\s+/));
  if (features.has("__AVX512F__")) return "avx512f";
  if (features.has("__AVX2__") && features.has("__FMA__")) return "avx2+fma";
  return "scalar";
}

/** A short stable name for the identity, used in the cache file name. */
export function identityHash(identity: MachineIdentity): string {
  const fields = [identity.cpu, String(identity.cores), identity.isa, identity.ompNumThreads];
  return createHash("sha256").update(JSON.stringify(fields)).digest("hex").slice(0, 16);
}
