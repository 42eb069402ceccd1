/**
 * The machine's read bandwidth measured beside a case: a pass over a buffer far larger than any last-level cache, on
 * every thread, timed in the same interleaved rounds as the case's variants. The VMs this project runs on move their
 * memory bandwidth by up to 2x within minutes, so a probe taken at the start of a run can be far from what a case met
 * later on (a run measured bf16 decode at 112% of a probe taken in a slow phase); the pass's median is the
 * denominator the decode and serving rows use instead.
 */
import koffi from "koffi";
import { ProbeError } from "./probeError.js";
import { PROBE_LIBRARY_VERSION, compileProbe } from "./probeLibrary.js";

/** Bytes one pass reads: past the last-level caches measured (the probe read 119 GB/s over 64 MiB, 77 over 256 MiB and 1 GiB). */
export const READ_PASS_BYTES = 256 * 2 ** 20;

/** The probe's read block (probe.cpp, MD_PROBE_BLOCK_BYTES): a pass reads whole blocks. */
const BLOCK_BYTES = 16384 * 4;

export interface ReadPass {
  /** Bytes a pass reads. */
  readonly bytes: number;
  /** One pass; throws if it did not read every byte. */
  run(): void;
  /** Frees the buffer; the pass cannot run again. */
  close(): void;
}

export async function openReadPass(bytes: number = READ_PASS_BYTES, cacheDir?: string): Promise<ReadPass> {
  const whole = Math.floor(bytes / BLOCK_BYTES) * BLOCK_BYTES;
  if (!(whole > 0)) throw new RangeError(`a read pass reads whole ${BLOCK_BYTES}-byte blocks; ${bytes} bytes hold none`);
  const soPath = await compileProbe(cacheDir ? { cacheDir } : {});
  // Never unloaded, as measureWithLibrary's: libgomp's idle threads may outlive a call.
  const library = koffi.load(soPath);
  const version = library.func("md_probe_version", "int32_t", [])() as number;
  if (version !== PROBE_LIBRARY_VERSION) throw new ProbeError(`probe library ${soPath} has version ${version}, expected ${PROBE_LIBRARY_VERSION}`);
  const allocate = library.func("md_probe_read_buffer", "void *", ["int64_t"]);
  const pass = library.func("md_probe_read_pass", "double", ["void *", "int64_t"]);
  const free = library.func("md_probe_read_buffer_free", "void", ["void *"]);
  let buffer: unknown = allocate(whole);
  if (!buffer) throw new ProbeError(`could not allocate a ${whole}-byte read buffer`);
  const floats = whole / 4;
  return {
    bytes: whole,
    run() {
      if (!buffer) throw new ProbeError("the read pass was closed");
      const sum = pass(buffer, whole) as number;
      if (sum !== floats) throw new ProbeError(`the read pass summed ${sum}, expected ${floats}: not every byte was read`);
    },
    close() {
      if (buffer) free(buffer);
      buffer = null;
    },
  };
}
