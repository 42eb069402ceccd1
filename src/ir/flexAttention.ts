import type { Ast } from "./ast.js";
import { SpecError } from "./errors.js";
import type { AttentionGraph } from "./graph.js";
import { parseExpr } from "./parseExpr.js";
import { buildGraph, type Spec, specSchema, zodToSpecError } from "./spec.js";
import { type MaskModFn, type ScoreModFn, traceMaskMod, traceScoreMod } from "./trace.js";

/** A spec as the TypeScript builder takes it: the mods may be strings or traced functions. */
export type FlexAttentionOptions = Omit<Spec, "scoreMod" | "maskMod"> & {
  scoreMod?: string | ScoreModFn;
  maskMod?: string | MaskModFn;
};

/**
 * The TypeScript builder: the same graph as `parseSpec` on the equivalent JSON, with mods written as code.
 *
 *   const slopes = buffer("slopes");
 *   flexAttention({ ..., scoreMod: (score, b, h, q, kv) => score.add(slopes.at(h).mul(kv.sub(q))) })
 */
export function flexAttention(options: FlexAttentionOptions): AttentionGraph {
  const { scoreMod, maskMod, ...rest } = options;
  const parsed = specSchema.omit({ scoreMod: true, maskMod: true }).safeParse(rest, { reportInput: true });
  if (!parsed.success) throw zodToSpecError(parsed.error);
  const mod = (kind: "scoreMod" | "maskMod", m: string | ScoreModFn | MaskModFn | undefined): Ast | undefined => {
    if (m === undefined) return undefined;
    if (typeof m === "string") return parseExpr(m, kind);
    try {
      return kind === "scoreMod" ? traceScoreMod(m as ScoreModFn) : traceMaskMod(m as MaskModFn);
    } catch (e) {
      throw new SpecError(`tracing the ${kind} function failed: ${(e as Error).message}`, { field: kind }, "use the methods of the symbolic arguments (add, mul, ge, ...) rather than JS operators");
    }
  };
  return buildGraph(parsed.data, { scoreMod: mod("scoreMod", scoreMod), maskMod: mod("maskMod", maskMod) }, {
    scoreMod: typeof scoreMod === "string" ? scoreMod : undefined,
    maskMod: typeof maskMod === "string" ? maskMod : undefined,
  });
}
