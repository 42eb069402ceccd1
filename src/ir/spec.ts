import { z } from "zod";
import type { Ast } from "./ast.js";
import { SpecError } from "./errors.js";
import { constant } from "./expr.js";
import { type AttentionGraph, type BufferDType, elementBytes, type KvDType, QUANTIZED_DTYPES, type TensorDType, type TensorLayout, isQuantized } from "./graph.js";
import { inferTypes, suggest } from "./inferTypes.js";
import { FUNCTIONS, VARS } from "./ops.js";
import { parseExpr } from "./parseExpr.js";
import { simplify } from "./simplify.js";

/** Names that reach file names and messages: letters, digits, `_` and `-`, starting with a letter. */
export const SPEC_NAME = /^[A-Za-z][A-Za-z0-9_-]{0,63}$/;
/** Buffer names: identifiers of the mod language that are not already taken by it. */
export const BUFFER_NAME = /^[A-Za-z][A-Za-z0-9_]{0,63}$/;
const RESERVED = new Set<string>([...VARS, ...Object.keys(FUNCTIONS), "clamp", "inf", "nan", "true", "false", "True", "False"]);

const MAX_DIM = 2 ** 31 - 1;
const dim = z.number().int("must be an integer").positive("must be positive").max(MAX_DIM, `must be at most ${MAX_DIM}`);
const QUERY_DTYPES = ["float32", "bfloat16", "float16"] as const;
const queryDType = z.enum(QUERY_DTYPES);
/** Key/value may also hold 8-bit codes (DESIGN "Quantized KV"). */
const kvDType = z.enum([...QUERY_DTYPES, ...QUANTIZED_DTYPES]);
const shape4 = z.tuple([dim, dim, dim, dim], { error: "must be a 4-D shape [B, H, L, D]" });
/** How a tensor's `.npy` file (and generated data) is stored; the spec's `shape` is the logical [B, H, L, D] either way. */
const layout = z.enum(["bhsd", "bshd"]).optional();
const querySpec = z.strictObject({ shape: shape4, dtype: queryDType, layout });
const tensorSpec = z.strictObject({ shape: shape4, dtype: kvDType, layout });
const blockDim = z.number().int("must be an integer").min(16, "must be at least 16").max(1024, "must be at most 1024")
  .refine((n) => n % 16 === 0, "must be a multiple of 16");

export const specSchema = z.strictObject({
  name: z.string().regex(SPEC_NAME, "must start with a letter and hold only letters, digits, '_' and '-' (at most 64)"),
  query: querySpec,
  key: tensorSpec,
  value: tensorSpec,
  scale: z.number().refine(Number.isFinite, "must be a finite number").optional(),
  scoreMod: z.string().max(4096, "is longer than 4096 characters").optional(),
  maskMod: z.string().max(4096, "is longer than 4096 characters").optional(),
  buffers: z.record(
    z.string().regex(BUFFER_NAME, "buffer names must be identifiers (letters, digits, '_', starting with a letter)")
      .refine((n) => !RESERVED.has(n), "is a reserved name of the mod language"),
    z.strictObject({
      shape: z.array(dim).min(1, "must have 1 or 2 dims").max(2, "must have 1 or 2 dims"),
      dtype: z.enum(["float32", "int32", "int64", "bool"]),
    }),
  ).optional(),
  blockSize: z.tuple([blockDim, blockDim]).optional(),
  kvCache: z.strictObject({ pageSize: z.number().int("must be an integer").min(1, "must be positive").max(4096, "must be at most 4096") }).optional(),
  returnLse: z.boolean().optional(),
  raggedQuery: z.boolean().optional(),
  kernelOptions: z.strictObject({
    PARTITION_SIZE: z.number().int("must be an integer").positive("must be positive").max(1 << 20, "must be at most 2^20").optional(),
    template: z.enum(["flash_attention", "flash_decoding"]).optional(),
    policy: z.enum(["auto", "pytorch"]).optional(),
  }).optional(),
});

export type Spec = z.infer<typeof specSchema>;

/** Parses and validates a spec given as JSON text or an already parsed object. */
export function parseSpec(input: string | unknown): AttentionGraph {
  let raw: unknown = input;
  if (typeof input === "string") {
    try {
      raw = JSON.parse(input);
    } catch (e) {
      throw new SpecError(`malformed JSON: ${(e as Error).message}`, { field: "(spec)" }, "check the file is valid JSON");
    }
  }
  const parsed = specSchema.safeParse(raw, { reportInput: true });
  if (!parsed.success) throw zodToSpecError(parsed.error);
  const spec = parsed.data;
  const mods = {
    scoreMod: spec.scoreMod === undefined ? undefined : parseExpr(spec.scoreMod, "scoreMod"),
    maskMod: spec.maskMod === undefined ? undefined : parseExpr(spec.maskMod, "maskMod"),
  };
  return buildGraph(spec, mods, { scoreMod: spec.scoreMod, maskMod: spec.maskMod });
}

/**
 * Checks what a schema cannot (relations between fields), types and simplifies the mods, and returns the graph.
 * Both the JSON path and the TypeScript builder end here, so both give the same graph for the same formula.
 */
export function buildGraph(
  spec: Omit<Spec, "scoreMod" | "maskMod">,
  mods: { scoreMod?: Ast; maskMod?: Ast },
  sources: { scoreMod?: string; maskMod?: string } = {},
): AttentionGraph {
  const { query, key, value } = spec;
  const fail = (field: string, problem: string, hint?: string): never => {
    throw new SpecError(problem, { field }, hint);
  };
  if (key.dtype !== query.dtype && !isQuantized(key.dtype)) {
    fail("key.dtype", `is ${key.dtype} but query.dtype is ${query.dtype}; key and value share the query's dtype unless quantized (int8, float8_e4m3fn, float8_e5m2)`);
  }
  if (value.dtype !== key.dtype) {
    fail("value.dtype", `is ${value.dtype} but key.dtype is ${key.dtype}; key and value share one dtype (one quantized format for both)`);
  }
  const [, hq, , qkDim] = query.shape;
  const [kvBatch, hkv, kvLen, kDim] = key.shape;
  if (hq % hkv !== 0) fail("key.shape[1]", `query heads (${hq}) must be a multiple of key/value heads (${hkv})`);
  if (kDim !== qkDim) fail("key.shape[3]", `head dim ${kDim} differs from query's ${qkDim}`);
  for (const i of [0, 1, 2] as const) {
    if (value.shape[i] !== key.shape[i]) fail(`value.shape[${i}]`, `is ${value.shape[i]} but key.shape[${i}] is ${key.shape[i]}`);
  }
  const ragged = spec.raggedQuery ?? false;
  if (spec.kvCache) {
    if (kvLen !== spec.kvCache.pageSize) {
      fail("key.shape[2]", `with kvCache, key is the page pool [numPages, Hkv, pageSize, D]: its dim 2 (${kvLen}) must equal kvCache.pageSize (${spec.kvCache.pageSize})`);
    }
  } else if (ragged && kvBatch !== query.shape[0]) {
    fail(
      "key.shape[0]",
      `batch ${kvBatch} differs from query's ${query.shape[0]}: with raggedQuery, an unpaged key/value is packed per sequence ([totalKv, Hkv, D] with kvStartLoc) and does not broadcast`,
      "give key and value the query's batch, or use a kvCache",
    );
  } else if (kvBatch !== query.shape[0] && kvBatch !== 1) {
    fail("key.shape[0]", `batch ${kvBatch} differs from query's ${query.shape[0]} (only a key/value batch of 1 broadcasts over the query's batch)`);
  }
  // A ragged query is packed token-major [totalQ, Hq, D], and so is an unpaged key/value beside it: their layout is
  // bshd by construction, so an explicit "bhsd" contradicts the spec. A page pool keeps its own layout.
  const layoutOf = (field: "query" | "key" | "value"): TensorLayout => {
    const given = spec[field].layout;
    const packed = ragged && (field === "query" || !spec.kvCache);
    if (!packed) return given ?? "bhsd";
    if (given === "bhsd") {
      const what = field === "query" ? "a ragged query is packed token-major [totalQ, Hq, D]" : `with raggedQuery and no kvCache, ${field} is packed token-major [totalKv, Hkv, D]`;
      fail(`${field}.layout`, `is "bhsd", but ${what}`, `leave ${field}.layout out (or say "bshd")`);
    }
    return "bshd";
  };
  for (const [field, t] of [["query", query], ["key", key], ["value", value]] as const) {
    checkBytes(field, t.shape, elementBytes(t.dtype));
  }
  const buffers = Object.entries(spec.buffers ?? {}).map(([name, b]) => {
    checkBytes(`buffers.${name}`, b.shape, b.dtype === "int64" ? 8 : b.dtype === "bool" ? 1 : 4);
    return { name, shape: b.shape, dtype: b.dtype as BufferDType };
  });
  const scope = (kind: "scoreMod" | "maskMod") => ({
    kind,
    buffers: buffers.map((b) => ({ name: b.name, dtype: b.dtype, rank: b.shape.length })),
    source: sources[kind],
  });
  const options = spec.kernelOptions ?? {};
  const blockSize = (spec.blockSize ?? [128, 128]) as [number, number];
  if (options.PARTITION_SIZE !== undefined && options.PARTITION_SIZE % blockSize[1] !== 0) {
    fail("kernelOptions.PARTITION_SIZE", `${options.PARTITION_SIZE} is not a multiple of the kv block size ${blockSize[1]}`);
  }
  return {
    name: spec.name,
    query: { shape: [...query.shape], dtype: query.dtype as TensorDType, layout: layoutOf("query") },
    key: { shape: [...key.shape], dtype: key.dtype as KvDType, layout: layoutOf("key") },
    value: { shape: [...value.shape], dtype: value.dtype as KvDType, layout: layoutOf("value") },
    scale: spec.scale ?? 1 / Math.sqrt(qkDim),
    scoreMod: simplify(mods.scoreMod ? inferTypes(mods.scoreMod, scope("scoreMod")) : inferTypes({ kind: "name", name: "score", pos: -1 }, scope("scoreMod"))),
    maskMod: simplify(mods.maskMod ? inferTypes(mods.maskMod, scope("maskMod")) : constant(true, "bool")),
    buffers,
    blockSize,
    kvCache: spec.kvCache ? { pageSize: spec.kvCache.pageSize } : undefined,
    returnLse: spec.returnLse ?? false,
    raggedQuery: ragged,
    kernelOptions: { ...options },
  };
}

/** Refuses tensors whose byte count cannot be represented exactly (and so could never be allocated). */
function checkBytes(field: string, shape: readonly number[], bytesPerElement: number): void {
  const bytes = shape.reduce((a, b) => a * b, bytesPerElement);
  if (!Number.isSafeInteger(bytes)) {
    throw new SpecError(`shape [${shape.join(", ")}] is ${bytes.toExponential(2)} bytes, too large to allocate`, { field: `${field}.shape` });
  }
}

export function zodToSpecError(error: z.ZodError): SpecError {
  const issue = error.issues[0];
  const field = formatPath(issue.path);
  let problem = issue.message;
  let hint: string | undefined;
  if (issue.code === "unrecognized_keys") {
    problem = `unknown field${issue.keys.length > 1 ? "s" : ""} ${issue.keys.map((k) => `'${k}'`).join(", ")}`;
    hint = suggest(issue.keys[0], knownFields(issue.path));
  } else if (issue.code === "invalid_key") {
    problem = `key ${JSON.stringify(String(issue.path[issue.path.length - 1]))} ${issue.issues[0]?.message ?? "is not allowed"}`;
  } else if (issue.code === "invalid_value" && "values" in issue) {
    problem = `must be one of ${issue.values.map((v) => JSON.stringify(v)).join(", ")}`;
    if (field === "query.dtype" && isQuantized(String(issue.input))) {
      // The query keeps a float dtype: it is a few rows per call, so quantizing it would save no memory and cost
      // precision in every product.
      problem = `is ${String(issue.input)}, but only key and value may be quantized; ${problem}`;
      hint = "the query is a few rows per call: quantizing it saves no memory and costs precision in every product";
    }
  } else if (issue.code === "invalid_type" && /received undefined/.test(issue.message)) {
    problem = "is required";
  }
  return new SpecError(problem, { field: field || "(spec)" }, hint);
}

/** The field names allowed at a path of the spec, for "did you mean" hints. */
function knownFields(path: ReadonlyArray<PropertyKey>): string[] {
  const top = Object.keys(specSchema.shape);
  if (path.length === 0) return top;
  if (path[0] === "kernelOptions") return ["PARTITION_SIZE", "template", "policy"];
  if (path[0] === "kvCache") return ["pageSize"];
  return ["shape", "dtype", "layout"];
}

function formatPath(path: ReadonlyArray<PropertyKey>): string {
  return path.map((p, i) => (typeof p === "number" ? `[${p}]` : i === 0 ? String(p) : `.${String(p)}`)).join("");
}
