/**
 * The probe's figures on disk, one JSON file per machine in the kernel cache dir, so that every efficiency figure
 * of a session divides by the same denominators and only the first run pays the few seconds of measuring.
 */
import { randomBytes } from "node:crypto";
import { readFile, rename, rm, writeFile } from "node:fs/promises";
import { z } from "zod";
import type { MachineIdentity } from "../tune/machineIdentity.js";

/** Bumped when the measurement changes meaning, so figures of an older probe are measured again. */
export const PROBE_FORMAT_VERSION = 5;

export type ProbeMode = "quick" | "full";

/** The denominators of every efficiency figure; all figures are bests of several passes. */
export interface MachineProbe {
  /** 1e9 bytes/s streamed from memory far larger than the last-level cache. */
  readBandwidthGBs: { oneThread: number; allThreads: number };
  /** fp32, an FMA counting as 2 flops, with the widest vectors the kernel flags enable. */
  fmaPeakGflops: { oneThread: number; allThreads: number };
  /** bf16 dot products (VDPBF16PS), a lane counting 4 flops, where the kernel flags target AVX512-BF16. */
  bf16DotPeakGflops?: { oneThread: number; allThreads: number };
  /** 16-bit integer dot products (VPDPWSSD or VPMADDWD), an int32 lane counting 4 ops, where the flags target AVX2 or AVX-512BW. */
  int16DotPeakGflops?: { oneThread: number; allThreads: number };
  /** AMX-BF16 tiles (TDPBF16PS, a product of tiles counting 16384 flops), where the kernel flags target AMX and Linux grants the tiles. */
  amxBf16PeakGflops?: { oneThread: number; allThreads: number };
  /** The kernel flags target AVX512-BF16 and AVX512-VBMI: 8-bit K/V decode (bf16 query) runs on bf16 dot products. */
  bf16ByteLookups?: true;
  /** The OpenMP team that measured the all-threads figures. */
  threads: number;
  cpu: string;
  /** "avx512f", "avx2+fma" or "scalar". */
  isa: string;
  /** ISO 8601 time of the measurement. */
  measuredAt: string;
}

const pair = z.object({ oneThread: z.number().positive(), allThreads: z.number().positive() });

const machineProbeSchema: z.ZodType<MachineProbe> = z.object({
  readBandwidthGBs: pair,
  fmaPeakGflops: pair,
  bf16DotPeakGflops: pair.optional(),
  int16DotPeakGflops: pair.optional(),
  amxBf16PeakGflops: pair.optional(),
  bf16ByteLookups: z.literal(true).optional(),
  threads: z.number().int().positive(),
  cpu: z.string(),
  isa: z.string(),
  measuredAt: z.iso.datetime(),
});

const probeFileSchema = z.object({
  formatVersion: z.literal(PROBE_FORMAT_VERSION),
  mode: z.enum(["quick", "full"]),
  identity: z.object({ cpu: z.string(), cores: z.number(), isa: z.string(), ompNumThreads: z.string() }),
  probe: machineProbeSchema,
});

type ProbeFile = z.infer<typeof probeFileSchema>;

/**
 * The cached probe at `path` if it belongs to this machine and is good enough for `mode` (a full measurement also
 * serves a quick request, never the reverse). Anything unreadable counts as absent: it is simply measured again.
 */
export async function readCachedProbe(path: string, identity: MachineIdentity, mode: ProbeMode): Promise<MachineProbe | undefined> {
  let text: string;
  try {
    text = await readFile(path, "utf8");
  } catch {
    return undefined;
  }
  let parsed: ProbeFile;
  try {
    parsed = probeFileSchema.parse(JSON.parse(text));
  } catch {
    return undefined;
  }
  const stored = parsed.identity;
  const sameMachine =
    stored.cpu === identity.cpu &&
    stored.cores === identity.cores &&
    stored.isa === identity.isa &&
    stored.ompNumThreads === identity.ompNumThreads;
  const goodEnough = parsed.mode === "full" || mode === "quick";
  return sameMachine && goodEnough ? parsed.probe : undefined;
}

/** Publishes by rename, so a concurrent reader sees the old file or the new one, never half of one. */
export async function writeCachedProbe(path: string, identity: MachineIdentity, mode: ProbeMode, probe: MachineProbe): Promise<void> {
  const file: ProbeFile = { formatVersion: PROBE_FORMAT_VERSION, mode, identity, probe };
  const temp = `${path}.tmp-${process.pid}-${randomBytes(4).toString("hex")}`;
  try {
    await writeFile(temp, `${JSON.stringify(file, null, 2)}\n`);
    await rename(temp, path);
  } catch (error) {
    await rm(temp, { force: true });
    throw error;
  }
}
