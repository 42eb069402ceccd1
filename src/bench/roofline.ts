/**
 * The roofline of a call: the least time the machine can take for it, max(bytes / read bandwidth, FLOPs / peak of
 * the instructions that do them), from the probe of the same run (a decode case's bandwidth from the read pass timed
 * beside it, atCaseBandwidth). Bytes are Q, K, V (each kv head once, an int8 cache's scales included) and the output,
 * each once; FLOPs are 2 * (D + Dv) per computed position. FLOPs run at the fp32 FMA peak, except those a bf16 kernel
 * does on VDPBF16PS where the probe found AVX512-BF16 (`dotFlops`), which run at the bf16 dot-product peak, and the
 * q . k of int8 decoding on 16-bit integer dot products (`intDotFlops`), which run at the probe's int16 dot-product
 * peak, and those a bf16 prefill does on AMX-BF16 tiles where the probe found them (`tileFlops`), which run at the
 * AMX peak.
 */
import type { TensorDType } from "../ir/graph.js";
import type { MachineProbe } from "./probeCache.js";

export interface Roofline {
  /** The least time, ms. */
  ms: number;
  /** Which bound sets it: the bytes ("memory") or the arithmetic ("compute"). */
  bound: "memory" | "compute";
  /** 100 * roofline time / measured median: how close the call comes to what the machine allows. */
  pct: number;
  /** Set when some of the FLOPs were counted at a dot-product peak (bf16 or int16). */
  dot?: true;
  /** Set when some of the FLOPs were counted at the AMX-BF16 peak. */
  tile?: true;
}

/**
 * The probe with its all-threads read bandwidth replaced by the one measured beside a case (src/bench/readPass.ts),
 * where there is one: the VM's memory bandwidth moves within minutes, so a case is judged by what it met.
 */
export function atCaseBandwidth(probe: MachineProbe, readGBs: number | undefined): MachineProbe {
  return readGBs === undefined ? probe : { ...probe, readBandwidthGBs: { ...probe.readBandwidthGBs, allThreads: readGBs } };
}

/** tileFlops are taken first, then dotFlops from what is left: a prefill on tiles counts all its FLOPs in both. */
export function roofline(bytes: number, flops: number, medianMs: number, probe: MachineProbe, dotFlops = 0, intDotFlops = 0, tileFlops = 0): Roofline {
  const memoryMs = bytes / (probe.readBandwidthGBs.allThreads * 1e6);
  const tile = probe.amxBf16PeakGflops && tileFlops > 0 ? Math.min(tileFlops, flops) : 0;
  const dot = probe.bf16DotPeakGflops && dotFlops > 0 ? Math.min(dotFlops, flops - tile) : 0;
  const intDot = probe.int16DotPeakGflops && intDotFlops > 0 ? Math.min(intDotFlops, flops - tile - dot) : 0;
  const computeMs =
    (flops - tile - dot - intDot) / (probe.fmaPeakGflops.allThreads * 1e6) +
    (tile > 0 ? tile / (probe.amxBf16PeakGflops!.allThreads * 1e6) : 0) +
    (dot > 0 ? dot / (probe.bf16DotPeakGflops!.allThreads * 1e6) : 0) +
    (intDot > 0 ? intDot / (probe.int16DotPeakGflops!.allThreads * 1e6) : 0);
  const ms = Math.max(memoryMs, computeMs);
  return {
    ms,
    bound: memoryMs >= computeMs ? "memory" : "compute",
    pct: (100 * ms) / medianMs,
    ...(dot + intDot > 0 ? { dot: true as const } : {}),
    ...(tile > 0 ? { tile: true as const } : {}),
  };
}

/**
 * The FLOPs of a call that the kernel does on AMX-BF16 tiles where the probe found them: all those of a prefill that
 * bf16DotFlops counts (bf16 K/V, or a bf16 query with 8-bit K/V) when the head dim comes in 32s (flash_attention.cpp.njk's
 * MD_FA_AMX; the q and kv tiles of the bench's block sizes fit); otherwise none.
 */
export function amxTileFlops(template: string | undefined, qDtype: TensorDType, kvDtype: TensorDType | string, flops: number, qDim: number, probe: MachineProbe): number {
  if (!probe.amxBf16PeakGflops || template !== "flash_attention" || qDim % 32 !== 0) return 0;
  return bf16DotFlops(template, qDtype, kvDtype, flops);
}

/** A decode call's shape, for the part of its FLOPs that its decode does on VDPBF16PS. */
export interface DecodeDotShape {
  /** Whether the kernel flags give 8-bit codes to the bf16 dot products by byte lookups (probe.bf16ByteLookups). */
  byteLookups: boolean;
  /**
   * Whether decoding with GQA keeps fp32 FMA on this machine: the CPU has AMX (probe.amxBf16PeakGflops), whose cores
   * issue VDPBF16PS no faster than FMA (flash_decoding.cpp.njk's MD_DEC_FMA).
   */
  gqaOnFma?: boolean;
  /** Query heads per kv head. */
  g: number;
  qDim: number;
  vDim: number;
}

/**
 * The FLOPs of a call that the kernel does on VDPBF16PS where the CPU has it: with a bf16 key/value, all of them
 * (q . k and P V, in both templates); with a bf16 query and an 8-bit key/value, all of a prefill's (the codes packed
 * as bf16), and in decoding, where the codes become bf16 by byte lookups, all of an fp8 cache's and the P V of an int8
 * cache's when G > 1 (Dv of every D + Dv: its q . k runs on integer dot products, int16DotFlops); otherwise none. On
 * a machine that decodes with GQA on fp32 FMA (decode.gqaOnFma), a bf16 cache's and an int8 cache's with G > 1 none.
 */
export function bf16DotFlops(template: string | undefined, qDtype: TensorDType, kvDtype: TensorDType | string, flops: number, decode?: DecodeDotShape): number {
  const eightBit = kvDtype === "int8" || kvDtype === "float8_e4m3fn" || kvDtype === "float8_e5m2";
  const gqaOnFma = decode?.gqaOnFma === true && decode.g > 1;
  if (template === "flash_attention" && (kvDtype === "bfloat16" || (eightBit && qDtype === "bfloat16"))) return flops;
  if (template === "flash_decoding" && kvDtype === "bfloat16") return gqaOnFma ? 0 : flops;
  if (template === "flash_decoding" && eightBit && qDtype === "bfloat16" && decode?.byteLookups) {
    if (kvDtype !== "int8") return flops;
    return decode.g > 1 && !gqaOnFma ? (flops * decode.vDim) / (decode.qDim + decode.vDim) : 0;
  }
  return 0;
}

/**
 * The FLOPs of a call that the kernel does on 16-bit integer dot products where the CPU has them: the q . k of
 * decoding (2 * D of every 2 * (D + Dv)) over an int8 key with a bf16 or fp16 query; nothing else.
 */
export function int16DotFlops(template: string | undefined, qDtype: TensorDType, kvDtype: TensorDType | string, flops: number, qDim: number, vDim: number): number {
  return template === "flash_decoding" && kvDtype === "int8" && qDtype !== "float32" ? (flops * qDim) / (qDim + vDim) : 0;
}

/** "0.912 mem" / "12.3 fma" / "6.20 dot" / "1.50 amx": the roofline time and its bound, for a table cell. */
export function formatRoofline(r: Roofline, ms: (x: number) => string): string {
  return `${ms(r.ms)} ${r.bound === "memory" ? "mem" : r.tile ? "amx" : r.dot ? "dot" : "fma"}`;
}
