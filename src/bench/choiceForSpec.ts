import { type CallShapeOverrides, specFeatures } from "../kernel.js";
import type { AttentionGraph } from "../ir/graph.js";
import type { CallFeatures, Choice } from "../select/features.js";
import { selectTemplate } from "../select/selectTemplate.js";
import { shapeBucket } from "../select/tunedChoice.js";
import { readTunedChoices } from "../tune/tuningStore.js";

/**
 * The decision a compiled kernel of `graph` makes for a call of the given shapes on this machine, without
 * compiling it: the tuned choice of the call's bucket when `minductor tune` stored one, else the policy's.
 */
export async function choiceForSpec(
  graph: AttentionGraph,
  shapes: CallShapeOverrides = {},
  policy?: "auto" | "pytorch",
  cacheDir?: string,
): Promise<{ features: CallFeatures; choice: Choice }> {
  const features = specFeatures(graph, shapes);
  const chosenPolicy = policy ?? graph.kernelOptions.policy ?? "auto";
  const tuned = chosenPolicy === "pytorch" ? undefined : (await readTunedChoices(graph, cacheDir)).get(shapeBucket(features));
  return { features, choice: selectTemplate(features, chosenPolicy, tuned) };
}
