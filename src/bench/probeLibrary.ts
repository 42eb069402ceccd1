/**
 * The native half of the machine probe: compiles src/templates/probe.cpp with the kernel flags, binds its C
 * interface with koffi and runs the measurements on a koffi worker thread, so the event loop stays free.
 */
import { readFile } from "node:fs/promises";
import { join } from "node:path";
import koffi, { type LibraryHandle } from "koffi";
import { templatesDir } from "../codegen/templatesDir.js";
import { type CompileOptions, compileSource } from "../compile/index.js";
import { ProbeError } from "./probeError.js";

/** How hard to measure: the full probe streams 1 GiB (far past any last-level cache) and runs 50 ms FMA passes. */
export interface ProbeSettings {
  readBytes: number;
  readReps: number;
  fmaMinSeconds: number;
  fmaReps: number;
  /** Whole measurements to try while another process disturbs them. */
  attempts: number;
}

export const FULL_SETTINGS: ProbeSettings = {
  readBytes: 2 ** 30,
  readReps: 5,
  fmaMinSeconds: 0.05,
  fmaReps: 5,
  attempts: 3,
};

/** For tests, in a fraction of a second: 32 MiB may partly fit a last-level cache, so the figures are only rough. */
export const QUICK_SETTINGS: ProbeSettings = {
  readBytes: 2 ** 25,
  readReps: 8,
  fmaMinSeconds: 0.004,
  fmaReps: 6,
  attempts: 1,
};

/** The `MD_PROBE_VERSION` of probe.cpp this binding matches. */
export const PROBE_LIBRARY_VERSION = 6;

export interface FigurePair {
  oneThread: number;
  allThreads: number;
}

export interface ProbeMeasurement {
  isa: string;
  threads: number;
  readBandwidthGBs: FigurePair;
  fmaPeakGflops: FigurePair;
  /** fp32 lanes of the FMA the peak was measured with (16 AVX-512, 8 AVX2, 1 scalar). */
  fmaLanes: number;
  /** The bf16 dot-product (VDPBF16PS) peak, a lane counting 4 flops; absent where the build has no AVX512-BF16. */
  bf16DotPeakGflops?: FigurePair;
  /**
   * The 16-bit integer dot-product peak (VPDPWSSD, or VPMADDWD + VPADDD), an int32 lane counting 4 ops; absent where the
   * build targets neither AVX2 nor AVX-512BW. int8 decoding multiplies q . k with it.
   */
  int16DotPeakGflops?: FigurePair;
  /**
   * The AMX-BF16 peak (TDPBF16PS on tiles, a product of tiles counting 16384 flops); absent where the build has no AMX
   * or Linux refuses the process the tiles. bf16 prefill multiplies on tiles where it is present.
   */
  amxBf16PeakGflops?: FigurePair;
  /** The build targets AVX512-BF16 and AVX512-VBMI: decoding over 8-bit K/V with a bf16 query runs on bf16 dot products. */
  byteLookups: boolean;
  /** The largest share of wall time a measuring thread spent waiting for a core: near 0 on a quiet machine. */
  offCpu: number;
}

const READ_RESULT = koffi.struct({
  one_thread_gbs: "double",
  all_threads_gbs: "double",
  one_thread_checksum: "double",
  all_threads_checksum: "double",
  off_cpu: "double",
  floats: "int64_t",
  threads: "int32_t",
  status: "int32_t",
});

const FMA_RESULT = koffi.struct({
  one_thread_gflops: "double",
  all_threads_gflops: "double",
  off_cpu: "double",
  sink: "double",
  iterations: "int64_t",
  lanes: "int32_t",
  threads: "int32_t",
  status: "int32_t",
});

interface ReadResult {
  one_thread_gbs: number;
  all_threads_gbs: number;
  one_thread_checksum: number;
  all_threads_checksum: number;
  off_cpu: number;
  floats: number;
  threads: number;
  status: number;
}

interface FmaResult {
  one_thread_gflops: number;
  all_threads_gflops: number;
  off_cpu: number;
  sink: number;
  iterations: number;
  lanes: number;
  threads: number;
  status: number;
}

const STATUS_MEANING: Record<number, string> = { 1: "could not allocate the read buffer", 2: "bad argument" };
/** md_probe_bf16_dot_peak's, md_probe_int16_dot_peak's and md_probe_amx_bf16_peak's answer where the build lacks their instructions. */
const STATUS_UNSUPPORTED = 3;

/** The probe's C++ source as shipped with the package. */
export function probeSource(): Promise<string> {
  return readFile(join(templatesDir(), "probe.cpp"), "utf8");
}

/** Compiles (or finds in the kernel cache) the probe library. */
export async function compileProbe(opts: CompileOptions = {}): Promise<string> {
  return (await compileSource(await probeSource(), opts)).soPath;
}

/** Runs both measurements with the library at `soPath` and checks that they measured what they claim. */
export async function measureWithLibrary(soPath: string, settings: ProbeSettings): Promise<ProbeMeasurement> {
  // Never unloaded: libgomp's idle worker threads may outlive the call, and dlclose must not pull code from under them.
  const library = koffi.load(soPath);
  const version = library.func("md_probe_version", "int32_t", [])() as number;
  if (version !== PROBE_LIBRARY_VERSION) {
    throw new ProbeError(`probe library ${soPath} has version ${version}, expected ${PROBE_LIBRARY_VERSION}`);
  }
  const isa = library.func("md_probe_isa", "const char *", [])() as string;
  const byteLookups = (library.func("md_probe_byte_lookups", "int32_t", [])() as number) === 1;
  const readBandwidth = library.func("md_probe_read_bandwidth", "int32_t", [
    "int64_t",
    "int32_t",
    koffi.out(koffi.pointer(READ_RESULT)),
  ]);
  const fmaPeak = library.func("md_probe_fma_peak", "int32_t", ["double", "int32_t", koffi.out(koffi.pointer(FMA_RESULT))]);
  const dotPeak = library.func("md_probe_bf16_dot_peak", "int32_t", ["double", "int32_t", koffi.out(koffi.pointer(FMA_RESULT))]);
  const intDotPeak = library.func("md_probe_int16_dot_peak", "int32_t", ["double", "int32_t", koffi.out(koffi.pointer(FMA_RESULT))]);
  const amxPeak = library.func("md_probe_amx_bf16_peak", "int32_t", ["double", "int32_t", koffi.out(koffi.pointer(FMA_RESULT))]);

  // One after the other: run together they would compete for the same cores.
  const read = await callAsync<ReadResult>(readBandwidth, settings.readBytes, settings.readReps);
  checkStatus("md_probe_read_bandwidth", read.status);
  checkChecksum("one-thread", read.one_thread_checksum, read.floats);
  checkChecksum("all-threads", read.all_threads_checksum, read.floats);
  const fma = await callAsync<FmaResult>(fmaPeak, settings.fmaMinSeconds, settings.fmaReps);
  checkStatus("md_probe_fma_peak", fma.status);
  if (!Number.isFinite(fma.sink)) throw new ProbeError(`FMA chains diverged (sink ${fma.sink})`);
  const dot = await callAsync<FmaResult>(dotPeak, settings.fmaMinSeconds, settings.fmaReps);
  const hasDot = dot.status !== STATUS_UNSUPPORTED;
  if (hasDot) {
    checkStatus("md_probe_bf16_dot_peak", dot.status);
    if (!Number.isFinite(dot.sink)) throw new ProbeError(`bf16 dot-product chains diverged (sink ${dot.sink})`);
  }
  const intDot = await callAsync<FmaResult>(intDotPeak, settings.fmaMinSeconds, settings.fmaReps);
  const hasIntDot = intDot.status !== STATUS_UNSUPPORTED;
  if (hasIntDot) checkStatus("md_probe_int16_dot_peak", intDot.status);
  const amx = await callAsync<FmaResult>(amxPeak, settings.fmaMinSeconds, settings.fmaReps);
  const hasAmx = amx.status !== STATUS_UNSUPPORTED;
  if (hasAmx) {
    checkStatus("md_probe_amx_bf16_peak", amx.status);
    if (!Number.isFinite(amx.sink)) throw new ProbeError(`AMX chains diverged (sink ${amx.sink})`);
  }

  const figures = {
    "one-thread read bandwidth": read.one_thread_gbs,
    "all-threads read bandwidth": read.all_threads_gbs,
    "one-thread FMA peak": fma.one_thread_gflops,
    "all-threads FMA peak": fma.all_threads_gflops,
    ...(hasDot ? { "one-thread bf16 dot-product peak": dot.one_thread_gflops, "all-threads bf16 dot-product peak": dot.all_threads_gflops } : {}),
    ...(hasIntDot ? { "one-thread int16 dot-product peak": intDot.one_thread_gflops, "all-threads int16 dot-product peak": intDot.all_threads_gflops } : {}),
    ...(hasAmx ? { "one-thread AMX-BF16 peak": amx.one_thread_gflops, "all-threads AMX-BF16 peak": amx.all_threads_gflops } : {}),
  };
  for (const [name, value] of Object.entries(figures)) {
    // A zero-length timed pass (a clock that did not advance) would show up here as Infinity.
    if (!(Number.isFinite(value) && value > 0)) throw new ProbeError(`${name} measured ${value}, not a positive figure`);
  }
  return {
    isa,
    byteLookups,
    threads: read.threads,
    readBandwidthGBs: { oneThread: read.one_thread_gbs, allThreads: read.all_threads_gbs },
    fmaPeakGflops: { oneThread: fma.one_thread_gflops, allThreads: fma.all_threads_gflops },
    fmaLanes: fma.lanes,
    ...(hasDot ? { bf16DotPeakGflops: { oneThread: dot.one_thread_gflops, allThreads: dot.all_threads_gflops } } : {}),
    ...(hasIntDot ? { int16DotPeakGflops: { oneThread: intDot.one_thread_gflops, allThreads: intDot.all_threads_gflops } } : {}),
    ...(hasAmx ? { amxBf16PeakGflops: { oneThread: amx.one_thread_gflops, allThreads: amx.all_threads_gflops } } : {}),
    offCpu: Math.max(read.off_cpu, fma.off_cpu, hasDot ? dot.off_cpu : 0, hasIntDot ? intDot.off_cpu : 0, hasAmx ? amx.off_cpu : 0),
  };
}

type BoundFunction = ReturnType<LibraryHandle["func"]>;

/** Calls `fn(...args, out)` on a koffi worker thread; resolves with the struct the call wrote to `out`. */
function callAsync<T>(fn: BoundFunction, ...args: unknown[]): Promise<T> {
  const out = {} as T;
  return new Promise((resolve, reject) => {
    fn.async(...args, out, (error: unknown) => (error ? reject(error) : resolve(out)));
  });
}

function checkStatus(entry: string, status: number): void {
  if (status !== 0) throw new ProbeError(`${entry} failed with status ${status} (${STATUS_MEANING[status] ?? "unknown"})`);
}

/** Every float of the buffer is 1.0, so a pass that skipped any part of it sums to less than the count. */
function checkChecksum(pass: string, checksum: number, floats: number): void {
  if (checksum !== floats) throw new ProbeError(`${pass} read pass summed ${checksum}, expected ${floats}: it did not read every byte`);
}
