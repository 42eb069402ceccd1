/**
 * `minductor probe`: the machine's read bandwidth and fp32 FMA peak, the denominators of every efficiency figure
 * (decode is judged against bandwidth, prefill against FMA peak). Measured once per machine and cached as JSON.
 */
import { join, resolve } from "node:path";
import { defaultCacheDir } from "../compile/index.js";
import { withLock } from "../compile/lock.js";
import { usableCacheDir } from "../compile/usableCacheDir.js";
import { figure } from "./formatProbe.js";
import { identityHash, machineIdentity } from "../tune/machineIdentity.js";
import { measureSteadily } from "./measureSteadily.js";
import { type MachineProbe, type ProbeMode, readCachedProbe, writeCachedProbe } from "./probeCache.js";
import { ProbeError } from "./probeError.js";
import { FULL_SETTINGS, QUICK_SETTINGS, compileProbe } from "./probeLibrary.js";

export type { MachineProbe } from "./probeCache.js";
export { ProbeError } from "./probeError.js";
export { formatProbe } from "./formatProbe.js";

export interface ProbeOptions {
  /** Measure again even when this machine's figures are cached (and cache the new ones). */
  refresh?: boolean;
  /** Default: the kernel cache dir (see `defaultCacheDir`). */
  cacheDir?: string;
  /** Smaller buffers and shorter passes: rough figures in a fraction of a second, for tests. */
  quick?: boolean;
}

/** This machine's figures: from `<cacheDir>/probe-<machine hash>.json` when present, else measured and cached. */
export async function probeMachine(opts: ProbeOptions = {}): Promise<MachineProbe> {
  const requestedDir = resolve(opts.cacheDir ?? defaultCacheDir());
  const cacheDir = await usableCacheDir(requestedDir);
  const identity = await machineIdentity();
  const path = join(cacheDir, `probe-${identityHash(identity)}.json`);
  const mode: ProbeMode = opts.quick ? "quick" : "full";

  if (!opts.refresh) {
    const cached = await readCachedProbe(path, identity, mode);
    if (cached) return cached;
  }
  // Two probes measuring at once would each see half the machine, so the lock also serialises the measuring.
  return withLock(`${path}.lock`, async () => {
    if (!opts.refresh) {
      const measuredMeanwhile = await readCachedProbe(path, identity, mode);
      if (measuredMeanwhile) return measuredMeanwhile;
    }
    const soPath = await compileProbe({ cacheDir: requestedDir });
    const settings = opts.quick ? QUICK_SETTINGS : FULL_SETTINGS;
    const measured = await measureSteadily(soPath, settings);
    if (measured.isa !== identity.isa) {
      throw new ProbeError(`probe library was built for ${measured.isa} but the compiler flags select ${identity.isa}`);
    }
    const probe: MachineProbe = {
      readBandwidthGBs: measured.readBandwidthGBs,
      fmaPeakGflops: measured.fmaPeakGflops,
      ...(measured.bf16DotPeakGflops ? { bf16DotPeakGflops: measured.bf16DotPeakGflops } : {}),
      ...(measured.int16DotPeakGflops ? { int16DotPeakGflops: measured.int16DotPeakGflops } : {}),
      ...(measured.amxBf16PeakGflops ? { amxBf16PeakGflops: measured.amxBf16PeakGflops } : {}),
      ...(measured.byteLookups ? { bf16ByteLookups: true as const } : {}),
      threads: measured.threads,
      cpu: identity.cpu,
      isa: measured.isa,
      measuredAt: new Date().toISOString(),
    };
    // Cached even when disturbed: measuring again on every call would be as disturbed and cost seconds each time.
    // Quick figures are rough anyway, so only a full probe warns.
    if (!measured.undisturbed && !opts.quick) {
      process.emitWarning(busyWarning(probe, measured.offCpu, settings.attempts), { code: PROBE_BUSY_WARNING_CODE });
    }
    await writeCachedProbe(path, identity, mode, probe);
    return probe;
  });
}

export const PROBE_BUSY_WARNING_CODE = "MINDUCTOR_PROBE_BUSY";

function busyWarning(p: MachineProbe, offCpu: number, attempts: number): string {
  const read = `read ${figure(p.readBandwidthGBs.oneThread)} / ${figure(p.readBandwidthGBs.allThreads)} GB/s`;
  const fma = `FMA ${figure(p.fmaPeakGflops.oneThread)} / ${figure(p.fmaPeakGflops.allThreads)} GFLOP/s`;
  return (
    `the machine probe looked disturbed in all ${attempts} attempts (a measuring thread waited for a core up to ` +
    `${Math.round(offCpu * 100)}% of its time, or all threads together did less than one): another process is ` +
    `probably busy, so these figures (1 thread / all threads: ${read}, ${fma}) may be low. ` +
    "Run `minductor probe --refresh` when the machine is idle."
  );
}
