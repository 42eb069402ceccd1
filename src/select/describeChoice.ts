import { kvBytesPerToken } from "../ir/graph.js";
import type { CallFeatures, Choice } from "./features.js";

/**
 * Bytes of K and V a call must read (each kv head once; an int8 cache's scales included) and the FLOPs of QK^T and
 * PV, before any masking, with every query row against kvLen positions.
 */
export function callCost(f: CallFeatures): { kvBytes: number; flops: number } {
  const kvBytes = f.batch * f.hkv * f.kvLen * kvBytesPerToken(f.kvDtype, f.headDim, f.valueDim);
  const flops = 2 * f.queryRows * f.hq * f.kvLen * (f.headDim + f.valueDim);
  return { kvBytes, flops };
}

const human = (n: number, unit: string): string => {
  const steps = ["", "K", "M", "G", "T"];
  let i = 0;
  while (n >= 1000 && i < steps.length - 1) {
    n /= 1000;
    i++;
  }
  return `${n.toFixed(n >= 100 ? 0 : 1)} ${steps[i]}${unit}`;
};

/** The decision as `minductor explain` prints it: the call, each clause with its value, the choice and its cost. */
export function describeChoice(f: CallFeatures, c: Choice): string {
  const { kvBytes, flops } = callCost(f);
  const lines = [
    `call      B = ${f.batch}, Hq = ${f.hq}, Hkv = ${f.hkv}, q_len = ${f.qLen}, kv_len = ${f.kvLen}${f.paged ? ` (paged, pool ${f.kvTokens} tokens)` : ""}, D = ${f.headDim}, ${f.dtype}, ${f.threads} thread(s)`,
    `policy    ${c.policy}`,
    ...c.clauses.map((cl) => `  [${cl.holds ? "x" : " "}] ${cl.name.padEnd(48)} ${cl.value}`),
    `template  ${c.template}`,
    ...c.reasons.map((r) => `  because ${r}`),
    `tiles     q block ${c.qBlock}, kv block ${c.kvBlock}${c.template === "flash_decoding" ? `, partition ${c.partitionSize} (${Math.ceil(f.kvLen / c.partitionSize)} per (b, kv head))` : ""}${c.numThreads ? `, ${c.numThreads} thread(s)` : ""}`,
    `moves     ${human(kvBytes, "B")} of K/V (each kv head once), ${human(flops, "FLOP")} before masking`,
  ];
  return lines.join("\n");
}
