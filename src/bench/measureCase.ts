/** Measures one bench case in this process: what `runCase.js` runs in a child, and what tests call directly. */
import { resolve } from "node:path";
import { compileSource, compilerInfo } from "../compile/index.js";
import { defaultCacheDir, defaultCxx, defaultCxxflags } from "../compile/options.js";
import { compile, generate } from "../index.js";
import type { AttentionGraph } from "../ir/graph.js";
import { parseSpec } from "../ir/spec.js";
import type { Kernel, RunOptions } from "../kernel.js";
import { buildKernelLibrary } from "../kernelLibrary.js";
import { openLibrary } from "../runtime/nativeLibrary.js";
import { runKernel } from "../runtime/runKernel.js";
import type { KernelInputs } from "../runtime/validateInputs.js";
import { withBlockSize } from "../tune/tunedVariants.js";
import type { CaseRequest, CaseResult, KernelCaseRequest, ResultOf, VariantRequest, VariantResult } from "./benchCase.js";
import { benchInputs, raggedBenchInputs } from "./benchInputs.js";
import { coldCopies } from "./coldInputs.js";
import { openReadPass } from "./readPass.js";
import { timeInterleaved } from "./timeInterleaved.js";
import { timingStats } from "./timingStats.js";
import { callWork } from "./workCount.js";

export async function measureCase(request: CaseRequest): Promise<CaseResult> {
  switch (request.kind) {
    case "kernel":
      return measureKernelCase(request);
    case "codegen":
      return measureCodegen(request);
    case "compile":
      return measureCompile(request);
    case "splitKernel":
      return measureSplitKernel(request);
    case "ragged":
      return measureRagged(request);
    case "call":
      return measureCall(request);
  }
}

async function measureKernelCase(request: KernelCaseRequest): Promise<ResultOf<"kernel">> {
  const graph = parseSpec(request.spec);
  const { batch, qLen, kvLen } = request.call;
  // Tuned choices are measured as explicit variants, so stored ones must not steer the heuristic's figures.
  const base = await compile(graph, { tuning: false });
  // A variant's kernel is the graph compiled with its block size and key/value dtype; its inputs follow its
  // dtype and layout. Variants that agree share both.
  const kernels = new Map<string, Kernel>();
  // Each input set with its copies, run in turn by every variant that shares them (src/bench/coldInputs.ts), so that
  // a call never reads the set the call before it read: its K/V comes from memory.
  const inputsByKey = new Map<string, InputTurns>();
  const variantGraph = (v: VariantRequest): AttentionGraph => {
    const sized = v.blockSize ? withBlockSize(graph, v.blockSize[0], v.blockSize[1]) : graph;
    return v.kvDtype ? { ...sized, key: { ...sized.key, dtype: v.kvDtype }, value: { ...sized.value, dtype: v.kvDtype } } : sized;
  };
  const prepared = [];
  for (const v of request.variants) {
    const kernelKey = `${(v.blockSize ?? graph.blockSize).join("x")} ${v.kvDtype ?? ""}`;
    if (!kernels.has(kernelKey)) kernels.set(kernelKey, v.blockSize || v.kvDtype ? await compile(variantGraph(v), { tuning: false }) : base);
    const kernel = kernels.get(kernelKey)!;
    const inputsKey = `${v.kvDtype ?? ""} ${v.layout ?? "bhsd"}`;
    if (!inputsByKey.has(inputsKey)) inputsByKey.set(inputsKey, { sets: coldCopies(benchInputs(kernel.graph, request.call, request.seed, v.layout)), turn: 0 });
    const turns = inputsByKey.get(inputsKey)!;
    const kvBytes = callWork(kernel.graph, request.call, kernel.createBlockMask(batch, qLen, kvLen, turns.sets[0])).kvBytes;
    prepared.push({ ...prepareVariant(kernel, v, turns), kvBytes });
  }
  const baseInputs = inputsByKey.get(" bhsd")?.sets[0] ?? benchInputs(graph, request.call, request.seed);
  const work = callWork(graph, request.call, base.createBlockMask(batch, qLen, kvLen, baseInputs));
  // The read pass, when asked for, is one more runner of the same rounds.
  const pass = request.readPass ? await openReadPass() : undefined;
  const runners = prepared.map((r) => r.run);
  let samples;
  try {
    samples = timeInterleaved(pass ? [...runners, () => pass.run()] : runners, request.timing);
  } finally {
    pass?.close();
  }
  let read: ResultOf<"kernel">["read"];
  if (pass) {
    const s = samples.pop()!;
    if ("error" in s) throw new Error(`${request.id}: the read pass failed: ${s.error}`);
    const stats = timingStats(s.times);
    read = { gbs: pass.bytes / (stats.medianMs * 1e6), stats };
  }
  const variants = prepared.map((r, i): VariantResult => {
    const s = samples[i];
    return "error" in s
      ? { ...r.resolved, kvBytes: r.kvBytes, firstMs: null, stats: null, error: s.error }
      : { ...r.resolved, kvBytes: r.kvBytes, firstMs: s.firstMs, stats: s.times.length > 0 ? timingStats(s.times) : null };
  });
  return { kind: "kernel", id: request.id, compileMs: base.library.compileMs, fromCache: base.library.fromCache, work, variants, ...(read ? { read } : {}) };
}

/** Input sets and the next one to run: shared by the variants that read the same inputs. */
interface InputTurns {
  sets: readonly KernelInputs[];
  turn: number;
}

/** What a variant will run (resolved once, as the selector decides it) and a closure that runs it, on the next input set. */
function prepareVariant(kernel: Kernel, v: VariantRequest, turns: InputTurns) {
  const inputs = turns.sets[0];
  const options: RunOptions = { template: v.template, partitionSize: v.partitionSize, numThreads: v.numThreads };
  const [qBlock, kvBlock] = kernel.graph.blockSize;
  let resolved: Omit<VariantResult, "firstMs" | "stats" | "kvBytes">;
  if (v.template === "naive") {
    resolved = { label: v.label, template: "naive", policy: "forced", qBlock, kvBlock, partitionSize: null, numThreads: v.numThreads ?? 0 };
  } else {
    const choice = kernel.choiceFor(inputs, options);
    const template = v.template ?? choice.template;
    resolved = {
      label: v.label,
      template,
      policy: v.template ? "forced" : choice.policy,
      qBlock: choice.qBlock,
      kvBlock: choice.kvBlock,
      partitionSize: template === "flash_decoding" ? (v.partitionSize ?? choice.partitionSize) : null,
      numThreads: v.numThreads ?? choice.numThreads ?? 0,
    };
  }
  const run = intoFirstOutputs(kernel, options, inputs, () => turns.sets[turns.turn++ % turns.sets.length]);
  return { resolved, run };
}

/**
 * A runner of `kernel` whose calls after the first write into the first call's outputs, as an engine writes into
 * buffers it owns: a fresh output per call would time its allocation and the page faults of its first touch (a
 * prefill's output is tens of MB) along with the kernel. The first call, on `first`, is timeInterleaved's untimed
 * warm-up; the others take their inputs from `next`.
 */
function intoFirstOutputs(kernel: Kernel, options: RunOptions, first: KernelInputs, next: () => KernelInputs = () => first): () => void {
  let outputs: Pick<RunOptions, "out" | "lse"> | undefined;
  return () => {
    if (outputs) {
      kernel.run(next(), { ...options, ...outputs });
      return;
    }
    const result = kernel.run(first, options);
    outputs = { out: result.out, ...(result.lse ? { lse: result.lse } : {}) };
  };
}

async function measureCodegen(request: Extract<CaseRequest, { kind: "codegen" }>): Promise<ResultOf<"codegen">> {
  const graph = parseSpec(request.spec);
  let started = performance.now();
  generate(graph);
  const firstMs = performance.now() - started;
  const times: number[] = [];
  for (let i = 0; i < request.runs; i++) {
    started = performance.now();
    generate(graph);
    times.push(performance.now() - started);
  }
  return { kind: "codegen", id: request.id, firstMs, stats: timingStats(times) };
}

async function measureCompile(request: Extract<CaseRequest, { kind: "compile" }>): Promise<ResultOf<"compile">> {
  const graph = parseSpec(request.spec);
  // compile() asks the compiler for its version and target features first; timing that step apart says how much
  // of a cache hit is the compiler probe and how much the cache lookup and loading. Asked exactly as compile()
  // asks it, with the cache dir that keeps the answer: without it the probe would spawn g++ where compile() does not.
  const started = performance.now();
  await compilerInfo(defaultCxx(), defaultCxxflags(), resolve(request.cacheDir ?? defaultCacheDir()));
  const probed = performance.now();
  if (request.build === "selfContained") {
    // What compile() did for every graph before the split: one source, one g++, one library to load.
    const source = generate(graph);
    const library = await compileSource(source.cpp, { header: source.header, cacheDir: request.cacheDir });
    openLibrary(library.soPath);
    const ms = performance.now() - started;
    return { kind: "compile", id: request.id, build: "selfContained", ms, fromCache: library.fromCache, compilerProbeMs: probed - started };
  }
  const kernel = await compile(graph, { cacheDir: request.cacheDir, tuning: false });
  const ms = performance.now() - started;
  const { library } = kernel;
  return {
    kind: "compile",
    id: request.id,
    build: "split",
    ms,
    fromCache: library.fromCache,
    engineFromCache: library.engine.fromCache,
    modsFromCache: library.mods.fromCache,
    compilerProbeMs: probed - started,
  };
}

async function measureSplitKernel(request: Extract<CaseRequest, { kind: "splitKernel" }>): Promise<ResultOf<"splitKernel">> {
  const graph = parseSpec(request.spec);
  const kernel = await compile(graph, { tuning: false });
  // The same engine and mod library the kernel loaded (compileSource and the loader both answer from memory).
  const { native: split } = await buildKernelLibrary(graph);
  const source = generate(graph);
  const whole = openLibrary((await compileSource(source.cpp, { header: source.header })).soPath);
  const inputs = benchInputs(graph, request.call, request.seed);
  const { batch, qLen, kvLen } = request.call;
  // One block mask and one resolved choice for both: only the library differs between the two runners.
  const mask = kernel.createBlockMask(batch, qLen, kvLen, inputs);
  const choice = kernel.choiceFor(inputs);
  const options = { template: choice.template, partitionSize: choice.partitionSize, numThreads: choice.numThreads ?? 0 };
  const runners = [() => void runKernel(split, graph, inputs, mask, options), () => void runKernel(whole, graph, inputs, mask, options)];
  // Both get the same number of runs, fitted to the slower one's warm-up, so every round times both (A B, B A, ...).
  const { warmup, minRuns, maxRuns, budgetMs } = request.timing;
  const firstMs: (number | null)[] = [null, null];
  let slowest = 0;
  for (const [i, run] of runners.entries()) {
    let fastest = Infinity;
    for (let w = 0; w < Math.max(1, warmup); w++) {
      const started = performance.now();
      run();
      const ms = performance.now() - started;
      if (w === 0) firstMs[i] = ms;
      fastest = Math.min(fastest, ms);
    }
    slowest = Math.max(slowest, fastest);
  }
  const runs = Math.min(maxRuns, Math.max(minRuns, slowest > 0 ? Math.floor(budgetMs / 2 / slowest) : minRuns));
  const samples = timeInterleaved(runners, { warmup: 1, minRuns: runs, maxRuns: runs, budgetMs });
  const [a, b] = samples.map((s, i) => {
    const which = i === 0 ? "split" : "self-contained";
    if ("error" in s) throw new Error(`${request.id}: the ${which} kernel failed: ${s.error}`);
    return { firstMs: firstMs[i], stats: timingStats(s.times) };
  });
  return {
    kind: "splitKernel",
    id: request.id,
    template: choice.template,
    partitionSize: choice.template === "flash_decoding" ? choice.partitionSize : null,
    split: a,
    selfContained: b,
  };
}

async function measureRagged(request: Extract<CaseRequest, { kind: "ragged" }>): Promise<ResultOf<"ragged">> {
  const graph = parseSpec(request.spec);
  const kernel = await compile(graph, { tuning: false });
  const inputs = raggedBenchInputs(graph, request.sequences, request.seed);
  const template = (i: KernelInputs) => kernel.choiceFor(i).template;
  // Into outputs of their own, as every other case calls (intoFirstOutputs): the split calls write theirs too.
  const runMixed = intoFirstOutputs(kernel, {}, inputs.mixed);
  const runDecode = intoFirstOutputs(kernel, {}, inputs.decode);
  const runPrefill = intoFirstOutputs(kernel, {}, inputs.prefill);
  const runners = [
    runMixed,
    () => {
      runDecode();
      runPrefill();
    },
  ];
  const [mixed, split] = timeInterleaved(runners, request.timing).map((s, i) => {
    if ("error" in s) throw new Error(`${request.id}: the ${i === 0 ? "ragged" : "split"} calls failed: ${s.error}`);
    return { firstMs: s.firstMs, stats: timingStats(s.times) };
  });
  return {
    kind: "ragged",
    id: request.id,
    mixedTemplate: template(inputs.mixed),
    splitTemplates: [template(inputs.decode), template(inputs.prefill)],
    mixed,
    split,
  };
}

async function measureCall(request: Extract<CaseRequest, { kind: "call" }>): Promise<ResultOf<"call">> {
  const graph = parseSpec(request.spec);
  const kernel = await compile(graph, { tuning: false });
  const inputs = benchInputs(graph, request.call, 0);
  const template = kernel.choiceFor(inputs).template;
  // As an engine calls: into outputs it owns (the first call's), so no call allocates them.
  const outputs = kernel.run(inputs);
  for (let i = 0; i < request.warmup; i++) kernel.run(inputs, outputs);
  const times: number[] = [];
  for (let i = 0; i < request.runs; i++) {
    const started = performance.now();
    kernel.run(inputs, outputs);
    times.push(performance.now() - started);
  }
  return { kind: "call", id: request.id, template, stats: timingStats(times) };
}
