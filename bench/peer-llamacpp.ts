// Peer benchmark: aser (WebGPU on Dawn) against llama.cpp (through the npm package node-llama-cpp, its
// prebuilt CPU and Vulkan binaries) on the same model, the same weights and the same token stream.
// The model is exported to GGUF by our own exporter, so both engines run identical numbers:
// stories260K (default) as f32 and f16; a LLaMA-3-8B-shaped model (--model llama3-8b-l1 | llama3-8b-l2,
// synthesized on first use, or any LLaMA HF directory) as f16 and as llama.cpp's usual quantized form,
// Q4_0 blocks with a Q8_0 classifier. Ours runs the f16 GGUF and RTN W4A8 built from it. Measured per engine/backend/weights: prefill tok/s (one prompt, last-token logits read),
// greedy decode tok/s (one token per step, sampled on the host side of each engine), perplexity over
// the same non-overlapping windows of TinyStories (GPTQ protocol: every token after the first of each
// window is scored; llama.cpp's NLL comes from its own logits: −(l_t − l_max − ln Σ exp(l − l_max))),
// and ppl-evaluation tok/s. Prints a table with ratios and writes bench/results/peer-llamacpp.json.
//
//   npm run bench -- peer-llamacpp [--model stories260k|llama3-8b-l1|llama3-8b-l2|DIR] [--prefill 256] [--decode 128]
//        [--repeats 5] [--ctx 256] [--windows 32] [--threads 1,2] [--ours f32,f16,w4a8] [--peers cpu,vulkan] [--out file]
//
// At the 8B shape use small sizes (a run loads the 2.5 GB f16 file several times), e.g.
//   --model llama3-8b-l1 --prefill 64 --decode 16 --repeats 2 --ctx 64 --windows 2 --ours f16,w4a8
//
// llama.cpp CPU runs once per --threads entry: on this 2-core machine 2 threads make its single-token
// decode ~30× slower than 1 (its spinning thread pool contends with the JS thread), so the best row
// is the baseline of every ratio. Vulkan runs with the first entry.
//
// llama.cpp hides CPU-type Vulkan devices (llvmpipe) unless GGML_VK_VISIBLE_DEVICES is set; the bench
// sets it to 0 when unset. The machine is small and shared: the load average is recorded.
//
// One file over 500 lines on purpose: a benchmark reads top to bottom (arguments, our engine, llama.cpp
// through its binding, the report), and its parts have no other user.
import { existsSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { createRequire } from 'node:module';
import { cpus, loadavg, tmpdir } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { loadDatasetText, repoRoot } from '../loaders/datasets.js';
import { perplexityOfTokens } from '../eval/ppl.js';
import { exportGguf } from '../loaders/gguf-writer.js';
import { loadGguf } from '../loaders/gguf.js';
import { ggufVocabForExport, ggufVocabFromLlama2c } from '../loaders/gguf-tokenizer.js';
import type { GgufExportDType } from '../loaders/gguf-writer.js';
import { writeSynthModel, defaultSynthTokenizerDir } from '../loaders/synth.js';
import { openNodeDevice } from '../node/gpu.js';
import { resolveModel } from '../loaders/registry.js';
import { packW4 } from '../core/w4-layout.js';
import { quantizeWeightsPerChannel } from '../quant/quantizers.js';
import type { GpuContext } from '../core/gpu.js';
import { Executor } from '../runtime/executor.js';
import type { ExecutorDType } from '../runtime/executor-options.js';
import type { LinearFactory } from '../runtime/forward-build.js';
import type { ModelSource } from '../core/model.js';
import { PipelineCache } from '../runtime/pipelines.js';
import { GpuTimer } from '../runtime/profiler.js';
import { createQuantizedLinear } from '../runtime/quantized-linear.js';
import { argmax } from '../runtime/sampler.js';
import { runIfMain, writeJsonReport, gitCommit } from './lib/report.js';
import { importNodeLlamaCpp } from './lib/node-llama-cpp.js';

type OurWeights = 'f32' | 'f16' | 'w4a8';
type Peer = 'cpu' | 'vulkan';

interface Args {
  /** stories260k, llama3-8b-l1 / llama3-8b-l2 (synthesized on first use), or a LLaMA HF directory. */
  model: string;
  prefill: number;
  decode: number;
  repeats: number;
  ctx: number;
  windows: number;
  /** llama.cpp CPU thread counts to run (Vulkan uses the first). */
  threads: number[];
  ours: OurWeights[];
  peers: Peer[];
  out: string;
}

export interface PeerRow {
  engine: 'llama.cpp' | 'aser';
  backend: string;
  /** f32 | f16 | w4a8-rtn (our fused W4A8 kernels, RTN per-channel int4 weights, no low-rank path). */
  weights: string;
  prefillTokPerSec: number;
  decodeTokPerSec: number;
  decodeMsPerToken: number;
  /** llama.cpp only: the same greedy tokens fed back one evaluate call each, no sampling (forward + call overhead). */
  decodeForwardOnlyTokPerSec?: number;
  /** Scored tokens per second of the perplexity evaluation (NLL of every scored token delivered to JS). */
  pplTokPerSec: number;
  /** llama.cpp only: the same windows evaluated without reading any logits (the forward alone). */
  pplForwardOnlyTokPerSec?: number;
  ppl: number;
  nll: number;
  scoredTokens: number;
  /** aser only: GPU time (timestamp queries) of the same prefill / decode, as tokens per GPU-second. */
  prefillGpuTokPerSec?: number;
  decodeGpuTokPerSec?: number;
  /** Greedy tokens of the decode run (first 16), to show both engines generate the same text. */
  decodeHead: number[];
}

const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)]!;

function parseArgs(argv: string[]): Args {
  const root = repoRoot();
  const args: Args = {
    model: 'stories260k', prefill: 256, decode: 128, repeats: 5, ctx: 256, windows: 32, threads: [1, 2],
    ours: ['f32', 'f16', 'w4a8'], peers: ['cpu', 'vulkan'],
    out: join(root, 'bench', 'results', 'peer-llamacpp.json'),
  };
  for (let i = 0; i < argv.length; i += 2) {
    const key = argv[i]!;
    const value = argv[i + 1];
    if (value === undefined) throw new Error(`peer-llamacpp: ${key} needs a value`);
    if (key === '--model') args.model = value;
    else if (key === '--prefill') args.prefill = Number(value);
    else if (key === '--decode') args.decode = Number(value);
    else if (key === '--repeats') args.repeats = Number(value);
    else if (key === '--ctx') args.ctx = Number(value);
    else if (key === '--windows') args.windows = Number(value);
    else if (key === '--threads') args.threads = value.split(',').filter(Boolean).map(Number);
    else if (key === '--ours') args.ours = value.split(',').filter(Boolean) as OurWeights[];
    else if (key === '--peers') args.peers = value.split(',').filter(Boolean) as Peer[];
    else if (key === '--out') args.out = resolve(value);
    else throw new Error(`peer-llamacpp: unknown option ${key} (--model --prefill --decode --repeats --ctx --windows --threads --ours --peers --out)`);
  }
  for (const k of ['prefill', 'decode', 'repeats', 'ctx', 'windows'] as const) {
    if (!Number.isInteger(args[k]) || args[k] < 1) throw new Error(`peer-llamacpp: --${k} must be a positive integer`);
  }
  if (args.threads.length === 0 || args.threads.some((t) => !Number.isInteger(t) || t < 1)) throw new Error('peer-llamacpp: --threads takes positive integers, e.g. 1,2');
  if (args.ours.some((w) => !['f32', 'f16', 'w4a8'].includes(w))) throw new Error('peer-llamacpp: --ours takes f32,f16,w4a8');
  if (args.peers.some((p) => !['cpu', 'vulkan'].includes(p))) throw new Error('peer-llamacpp: --peers takes cpu,vulkan');
  return args;
}

/** The installed version of a package (its package.json, found above its resolved entry point). */
function packageVersion(name: string): string {
  const elsewhere = name === 'node-llama-cpp' ? process.env.ASER_NODE_LLAMA_CPP : undefined;
  if (elsewhere) {
    try {
      return (JSON.parse(readFileSync(join(elsewhere, 'package.json'), 'utf8')) as { version: string }).version;
    } catch {
      return 'unknown';
    }
  }
  try {
    let dir = dirname(createRequire(join(repoRoot(), 'package.json')).resolve(name));
    while (!existsSync(join(dir, 'package.json')) || (JSON.parse(readFileSync(join(dir, 'package.json'), 'utf8')) as { name?: string }).name !== name) {
      const up = dirname(dir);
      if (up === dir) return 'unknown';
      dir = up;
    }
    return (JSON.parse(readFileSync(join(dir, 'package.json'), 'utf8')) as { version: string }).version;
  } catch {
    return 'unknown';
  }
}

/** Progress on stderr (the table goes to stdout). */
const t00 = performance.now();
const progress = (msg: string) => process.stderr.write(`[${((performance.now() - t00) / 1000).toFixed(1)} s] ${msg}\n`);

/** The same windows for both engines: non-overlapping ctx-token slices; inputs [0, ctx-1), targets [1, ctx). */
function windowsOf(ids: number[], ctx: number, count: number): Array<{ inputs: number[]; targets: number[] }> {
  const n = Math.min(count, Math.floor(ids.length / ctx));
  return Array.from({ length: n }, (_, w) => {
    const win = ids.slice(w * ctx, (w + 1) * ctx);
    return { inputs: win.slice(0, -1), targets: win.slice(1) };
  });
}

// ------------------------------------------------------------------ ours

/** RTN W4A8 for every block linear through the fused kernels (per-output-channel int4, no side path). */
function rtnW4a8Factory(gpu: GpuContext, cache: PipelineCache, maxTokens: number): LinearFactory {
  return (layer, name, w, scratch) => {
    const { q, scale } = quantizeWeightsPerChannel(w.weight, w.outFeatures, w.inFeatures, 4);
    return createQuantizedLinear(gpu, cache, {
      inFeatures: w.inFeatures, outFeatures: w.outFeatures, wBits: 4, aBits: 8,
      qweight: packW4(q, w.outFeatures, w.inFeatures), wScale: scale, rank: 0, bias: w.bias,
    }, { label: `layers.${layer}.${name}/w4a8_rtn`, maxTokens, scratch });
  };
}

async function benchOurs(gpu: GpuContext, source: ModelSource, weights: OurWeights, prompt: number[], bosId: number, ids: number[], args: Args): Promise<PeerRow> {
  const cache = new PipelineCache(gpu.device);
  const dtype: ExecutorDType = weights === 'f32' ? 'f32' : weights === 'f16' || gpu.features.shaderF16 ? 'f16' : 'f32';
  const maxBatchTokens = Math.max(args.prefill, args.ctx);
  const ex = await Executor.create(gpu, source, {
    dtype, maxSeqLen: source.config.maxSeqLen, maxBatchTokens, pipelines: cache,
    linearFactory: weights === 'w4a8' ? rtnW4a8Factory(gpu, cache, maxBatchTokens) : undefined,
  });
  const timer = GpuTimer.create(gpu);
  ex.setTimer(timer);
  try {
    const prefillWall: number[] = [], prefillGpu: number[] = [], decodeWall: number[] = [], decodeGpu: number[] = [];
    let decodeHead: number[] = [];
    for (let r = -1; r < args.repeats; r++) { // r = -1: warm-up (pipelines, bind groups)
      ex.reset();
      await timer?.read();
      let t0 = performance.now();
      await ex.forward(prompt);
      await ex.logits();
      const pw = (performance.now() - t0) / 1000;
      const pg = timer ? (await timer.read()).seconds : NaN;
      ex.reset();
      await ex.forward([bosId]);
      let next = argmax(await ex.logits());
      const generated = [next];
      await timer?.read();
      t0 = performance.now();
      for (let i = 0; i < args.decode; i++) {
        await ex.forward([next]);
        next = argmax(await ex.logits());
        generated.push(next);
      }
      const dw = (performance.now() - t0) / 1000;
      const dg = timer ? (await timer.read()).seconds : NaN;
      if (r < 0) continue;
      prefillWall.push(pw); prefillGpu.push(pg); decodeWall.push(dw); decodeGpu.push(dg);
      decodeHead = generated.slice(0, 16);
    }
    ex.setTimer(undefined);
    await perplexityOfTokens(ex, ids, bosId, { ctx: args.ctx, protocol: 'gptq', maxWindows: 1 }); // warm-up
    const pplRuns = [];
    for (let r = 0; r < Math.min(3, args.repeats); r++) pplRuns.push(await perplexityOfTokens(ex, ids, bosId, { ctx: args.ctx, protocol: 'gptq', maxWindows: args.windows }));
    const ppl = pplRuns[0]!;
    return {
      engine: 'aser', backend: `webgpu (${gpu.adapterInfo.architecture || gpu.adapterInfo.description || 'adapter'})`,
      weights: weights === 'w4a8' ? `w4a8-rtn (+${dtype} embed/head)` : weights,
      prefillTokPerSec: args.prefill / median(prefillWall),
      decodeTokPerSec: args.decode / median(decodeWall),
      decodeMsPerToken: (median(decodeWall) * 1000) / args.decode,
      pplTokPerSec: ppl.tokens / median(pplRuns.map((p) => p.seconds)),
      ppl: ppl.ppl, nll: ppl.nll, scoredTokens: ppl.tokens,
      prefillGpuTokPerSec: timer ? args.prefill / median(prefillGpu) : undefined,
      decodeGpuTokPerSec: timer ? args.decode / median(decodeGpu) : undefined,
      decodeHead,
    };
  } finally {
    timer?.destroy();
    ex.destroy();
  }
}

/** Floor of any per-token round trip on this stack: submit a 4-byte copy and map it back (median of 50). */
async function roundTripMs(gpu: GpuContext): Promise<number> {
  const d = gpu.device;
  const src = d.createBuffer({ size: 256, usage: GPUBufferUsage.STORAGE | GPUBufferUsage.COPY_SRC, label: 'rtt/src' });
  const dst = d.createBuffer({ size: 256, usage: GPUBufferUsage.MAP_READ | GPUBufferUsage.COPY_DST, label: 'rtt/dst' });
  const times: number[] = [];
  for (let i = 0; i < 60; i++) {
    const t0 = performance.now();
    const enc = d.createCommandEncoder();
    enc.copyBufferToBuffer(src, 0, dst, 0, 4);
    d.queue.submit([enc.finish()]);
    await dst.mapAsync(GPUMapMode.READ, 0, 4);
    dst.unmap();
    if (i >= 10) times.push(performance.now() - t0);
  }
  src.destroy();
  dst.destroy();
  return median(times);
}

// ------------------------------------------------------------------ llama.cpp through node-llama-cpp

/** The slice of node-llama-cpp's API used here (loaded dynamically: the package is an optional dev dependency). */
interface NlcGenerateNext {
  logits?: boolean | { filter: { tokens: readonly number[]; includeTop?: number } };
  totalLogitWeight?: boolean;
}
interface NlcSequence {
  clearHistory(): Promise<void>;
  evaluate(tokens: number[], options?: { temperature?: number }): AsyncGenerator<number, void, void | number | number[]>;
  evaluateWithoutGeneratingNewTokens(tokens: number[]): Promise<void>;
  controlledEvaluate(input: Array<number | [number, { generateNext?: NlcGenerateNext }]>): Promise<Array<undefined | { next: { logits?: Map<number, number>; totalLogitWeight?: number } }>>;
}
interface NlcContext { getSequence(): NlcSequence; dispose(): Promise<void> }
interface NlcModel {
  createContext(options: {
    contextSize: number; batchSize: number; threads?: number; sequences?: number;
    experimentalKvCacheKeyType?: string; experimentalKvCacheValueType?: string; flashAttention?: boolean;
  }): Promise<NlcContext>;
  tokenize(text: string): number[];
  dispose(): Promise<void>;
}
interface NlcLlama {
  gpu: string | false;
  llamaCppRelease: { repo: string; release: string };
  getGpuDeviceNames(): Promise<string[]>;
  loadModel(options: { modelPath: string; gpuLayers?: number | 'max' }): Promise<NlcModel>;
  dispose(): Promise<void>;
}
interface NlcModule {
  getLlama(options: Record<string, unknown>): Promise<NlcLlama>;
}

async function loadNodeLlamaCpp(): Promise<NlcModule> {
  const loaded = await importNodeLlamaCpp<NlcModule>();
  if ('error' in loaded) throw new Error(`peer-llamacpp: ${loaded.error}`);
  return loaded.module;
}

/**
 * NLL of a target from its logit, the top logit and Σ exp(l − l_max) (llama.cpp sums in f32: ~1e-7
 * relative). The top logit comes from `includeTop: 1`: this node-llama-cpp's `includeMax` returned only
 * the filtered tokens, so it is not used.
 */
function nllFromSummary(out: { logits?: Map<number, number>; totalLogitWeight?: number } | undefined, target: number): number {
  const logits = out?.logits;
  const w = out?.totalLogitWeight;
  if (!logits || w === undefined) throw new Error('llama.cpp returned no logits for a scored position');
  let max = -Infinity;
  for (const v of logits.values()) max = Math.max(max, v);
  const lt = logits.get(target);
  if (lt === undefined) throw new Error(`llama.cpp returned no logit for target ${target}`);
  return -(lt - max - Math.log(w));
}

/** Float64 log-softmax NLL from the full logits row. */
function nllFromFull(logits: Map<number, number>, target: number): number {
  let max = -Infinity;
  for (const v of logits.values()) max = Math.max(max, v);
  let sum = 0;
  for (const v of logits.values()) sum += Math.exp(v - max);
  return -(logits.get(target)! - max - Math.log(sum));
}

interface PeerResult {
  rows: PeerRow[];
  info: { backend: Peer; threads: number; devices: string[]; release: string; summaryVsFullMaxAbsNll: number; lastLogits?: Float64Array; tokenizerAgrees: boolean };
}

async function benchLlamaCpp(
  nlc: NlcModule, peer: Peer, threads: number, ggufs: Record<string, string>, prompt: number[], bosId: number,
  windows: Array<{ inputs: number[]; targets: number[] }>, sampleText: string, sampleIds: number[], args: Args,
): Promise<PeerResult> {
  if (peer === 'vulkan') process.env.GGML_VK_VISIBLE_DEVICES ??= '0';
  const llama = await nlc.getLlama({
    gpu: peer === 'cpu' ? false : 'vulkan', build: 'never', skipDownload: true, usePrebuiltBinaries: true,
    logLevel: 'error', progressLogs: false, maxThreads: threads,
  });
  const devices = peer === 'vulkan' ? await llama.getGpuDeviceNames() : [];
  if (peer === 'vulkan' && (llama.gpu !== 'vulkan' || devices.length === 0)) throw new Error('peer-llamacpp: llama.cpp found no Vulkan device (is Mesa llvmpipe installed?)');
  const backend = peer === 'cpu' ? `cpu (${threads} thread${threads > 1 ? 's' : ''})` : `vulkan (${devices.join(', ')})`;
  const rows: PeerRow[] = [];
  let summaryVsFull = 0;
  let lastLogits: Float64Array | undefined;
  let tokenizerAgrees = false;
  try {
    const first = Object.keys(ggufs)[0];
    for (const weights of Object.keys(ggufs)) {
      progress(`llama.cpp ${peer} ${weights}: loading`);
      const model = await llama.loadModel({ modelPath: ggufs[weights], gpuLayers: peer === 'cpu' ? 0 : 'max' });
      // KV cache in the weights' type, as our executor keeps it (llama.cpp defaults to F16); no flash attention.
      const kv = weights === 'f32' ? 'F32' : 'F16';
      const context = await model.createContext({
        contextSize: 512, batchSize: 512, threads, sequences: 1,
        experimentalKvCacheKeyType: kv, experimentalKvCacheValueType: kv, flashAttention: false,
      });
      progress(`llama.cpp ${peer} ${weights}: loaded; prefill/decode`);
      const seq = context.getSequence();
      try {
        if (weights === first) tokenizerAgrees = JSON.stringify([bosId, ...model.tokenize(sampleText)]) === JSON.stringify(sampleIds);
        const last = prompt[prompt.length - 1]!;
        const prefillInput = [...prompt.slice(0, -1), [last, { generateNext: { logits: true } }] as [number, { generateNext: NlcGenerateNext }]];
        const prefillTimes: number[] = [];
        const decodeTimes: number[] = [];
        const decodeForwardTimes: number[] = [];
        let decodeHead: number[] = [];
        for (let r = -1; r < args.repeats; r++) {
          await seq.clearHistory();
          let t0 = performance.now();
          const out = await seq.controlledEvaluate(prefillInput);
          const pw = (performance.now() - t0) / 1000;
          if (weights === first && r === 0) {
            const row = out[prompt.length - 1]!.next.logits!;
            lastLogits = new Float64Array(row.size);
            for (const [id, v] of row) lastLogits[id] = v;
          }
          await seq.clearHistory();
          const generated: number[] = [];
          const it = seq.evaluate([bosId], { temperature: 0 });
          generated.push((await it.next()).value as number);
          t0 = performance.now();
          for (let i = 0; i < args.decode; i++) generated.push((await it.next()).value as number);
          const dw = (performance.now() - t0) / 1000;
          await it.return();
          // The same tokens again, one evaluate call each and no sampling: llama.cpp's per-token forward
          // plus the JS <-> native call, without node-llama-cpp's generator and sampler.
          await seq.clearHistory();
          await seq.evaluateWithoutGeneratingNewTokens([bosId]);
          t0 = performance.now();
          for (let i = 0; i < args.decode; i++) await seq.evaluateWithoutGeneratingNewTokens([generated[i]!]);
          const fw = (performance.now() - t0) / 1000;
          if (r < 0) continue;
          prefillTimes.push(pw);
          decodeTimes.push(dw);
          decodeForwardTimes.push(fw);
          decodeHead = generated.slice(0, 16);
        }

        // Perplexity: NLL per target from llama.cpp's logits of the same windows.
        const scored = (w: { inputs: number[]; targets: number[] }) =>
          w.inputs.map((t, j) => [t, { generateNext: { logits: { filter: { tokens: [w.targets[j]!], includeTop: 1 } }, totalLogitWeight: true } }] as [number, { generateNext: NlcGenerateNext }]);
        progress(`llama.cpp ${peer} ${weights}: perplexity`);
        const inputs = windows.map(scored);
        await seq.clearHistory();
        await seq.controlledEvaluate(inputs[0]!); // warm-up
        const pplTimes: number[] = [];
        let sum = 0;
        let count = 0;
        for (let r = 0; r < Math.min(3, args.repeats); r++) {
          sum = 0;
          count = 0;
          const t0 = performance.now();
          for (let w = 0; w < windows.length; w++) {
            await seq.clearHistory();
            const out = await seq.controlledEvaluate(inputs[w]!);
            for (let j = 0; j < windows[w]!.targets.length; j++) sum += nllFromSummary(out[j]?.next, windows[w]!.targets[j]!);
            count += windows[w]!.targets.length;
          }
          pplTimes.push((performance.now() - t0) / 1000);
        }
        const forwardTimes: number[] = [];
        for (let r = 0; r < Math.min(3, args.repeats); r++) {
          const t0 = performance.now();
          for (const w of windows) {
            await seq.clearHistory();
            await seq.evaluateWithoutGeneratingNewTokens(w.inputs);
          }
          forwardTimes.push((performance.now() - t0) / 1000);
        }
        progress(`llama.cpp ${peer} ${weights}: summary check`);
        // Check the cheap summary against a float64 log-softmax of the full rows on two windows (untimed).
        for (const w of windows.slice(0, 2)) {
          await seq.clearHistory();
          const full = await seq.controlledEvaluate(w.inputs.map((t) => [t, { generateNext: { logits: true } }]));
          await seq.clearHistory();
          const cheap = await seq.controlledEvaluate(scored(w));
          for (let j = 0; j < w.targets.length; j++) {
            summaryVsFull = Math.max(summaryVsFull, Math.abs(nllFromFull(full[j]!.next.logits!, w.targets[j]!) - nllFromSummary(cheap[j]?.next, w.targets[j]!)));
          }
        }
        rows.push({
          engine: 'llama.cpp', backend, weights,
          prefillTokPerSec: prompt.length / median(prefillTimes),
          decodeTokPerSec: args.decode / median(decodeTimes),
          decodeMsPerToken: (median(decodeTimes) * 1000) / args.decode,
          decodeForwardOnlyTokPerSec: args.decode / median(decodeForwardTimes),
          pplTokPerSec: count / median(pplTimes),
          pplForwardOnlyTokPerSec: count / median(forwardTimes),
          ppl: Math.exp(sum / count), nll: sum / count, scoredTokens: count,
          decodeHead,
        });
      } finally {
        await context.dispose();
        await model.dispose();
      }
    }
  } finally {
    await llama.dispose();
  }
  return { rows, info: { backend: peer, threads, devices, release: `${llama.llamaCppRelease.repo}@${llama.llamaCppRelease.release}`, summaryVsFullMaxAbsNll: summaryVsFull, lastLogits, tokenizerAgrees } };
}

// ------------------------------------------------------------------ main

interface PeerModel {
  id: string;
  /** What resolveModel opens: a preset name or a path. */
  path: string;
  /** GGUF exports both engines run, the first is the one aser runs. */
  exports: GgufExportDType[];
  /** Where exports are kept between runs (synthesized models); undefined: a temporary directory. */
  cacheDir?: string;
  synthCommand?: string;
}

/** --model: stories260k (f32, f16), llama3-8b-lN (synthesized into the temp dir on first use), or a LLaMA HF directory. */
async function resolvePeerModel(model: string): Promise<PeerModel> {
  if (model === 'stories260k') return { id: model, path: model, exports: ['f32', 'f16'] };
  const synth = /^llama3-8b-l(\d+)$/.exec(model);
  if (synth) {
    const layers = Number(synth[1]);
    const dir = join(tmpdir(), 'aser-peer-models', model);
    const hf = join(dir, 'hf');
    const synthCommand = `aser synth --shape llama3-8b --layers ${layers} --seed 0 --out ${hf}`;
    if (!existsSync(join(hf, 'config.json'))) {
      progress(`synthesizing ${model}: ${synthCommand}`);
      const tokenizerDir = defaultSynthTokenizerDir();
      if (!tokenizerDir) throw new Error('peer-llamacpp: the shared llama3 tokenizer is missing (../shared/tokenizers/llama3)');
      writeSynthModel(hf, { shape: 'llama3-8b', layers, seed: 0, tokenizerDir });
    }
    return { id: model, path: hf, exports: ['f16', 'q4_0'], cacheDir: dir, synthCommand };
  }
  return { id: model.replace(/\/+$/, '').split('/').pop() ?? model, path: resolve(model), exports: ['f16', 'q4_0'] };
}

export async function main(argv: string[]): Promise<number> {
  const args = parseArgs(argv);
  const load0 = loadavg();
  const started = new Date().toISOString();
  const spec = await resolvePeerModel(args.model);
  const resolved = resolveModel(spec.path);
  const source = resolved.source;
  const tokenizer = resolved.tokenizer;
  const c = source.config;
  if (args.prefill > c.maxSeqLen || args.decode + 2 > c.maxSeqLen || args.ctx > c.maxSeqLen) throw new Error(`peer-llamacpp: sizes exceed the model context ${c.maxSeqLen}`);

  // The same weights for both engines: our GGUF exports (stories260K: f32 and f16; LLaMA-3-shaped: f16
  // and Q4_0 with a Q8_0 classifier), kept beside a synthesized model for the next run.
  const dir = spec.cacheDir ?? mkdtempSync(join(tmpdir(), 'aser-peer-'));
  const vocab = resolved.format === 'llama2c'
    ? ggufVocabFromLlama2c(join(dirname(resolved.path), 'tokenizer.bin'), c.vocabSize)
    : ggufVocabForExport(resolved.path, c).vocab;
  const ggufs: Record<string, string> = {};
  for (const dtype of spec.exports) {
    const file = join(dir, `${spec.id}-${dtype}.gguf`);
    ggufs[dtype] = file;
    if (spec.cacheDir && existsSync(file)) continue;
    progress(`exporting ${spec.id} as GGUF ${dtype}`);
    exportGguf(source, vocab, file, { dtype });
  }
  const oursFrom = spec.exports[0]!; // f32 for stories260K, f16 at the 8B shape

  // The same token stream: TinyStories eval text tokenized once (the model's tokenizer, BOS first).
  const data = loadDatasetText('tinystories', { protocol: 'gptq' });
  const ids = tokenizer.encode(data.text, { bos: true });
  const prompt = ids.slice(0, args.prefill);
  const windows = windowsOf(ids, args.ctx, args.windows);
  const sampleText = data.text.slice(0, 400);
  const sampleIds = tokenizer.encode(sampleText, { bos: true });

  const gpu = await openNodeDevice();
  const rows: PeerRow[] = [];
  let rtt = NaN;
  let ourLastLogits: Float32Array | undefined;
  const gg = loadGguf(ggufs[oursFrom]!, spec.id);
  try {
    rtt = await roundTripMs(gpu);
    for (const w of args.ours) {
      if (w === 'f16' && !gpu.features.shaderF16) {
        console.log('skipping aser f16: the device lacks shader-f16');
        continue;
      }
      progress(`aser ${w}`);
      rows.push(await benchOurs(gpu, gg, w, prompt, c.bosId, ids, args));
    }
    // Our last-token logits of the prefill prompt, to compare with llama.cpp's directly (same weights).
    const ex = await Executor.create(gpu, gg, { dtype: oursFrom === 'f32' ? 'f32' : 'f16', maxSeqLen: Math.min(c.maxSeqLen, 4096), maxBatchTokens: args.prefill });
    await ex.forward(prompt);
    ourLastLogits = await ex.logits();
    ex.destroy();
  } finally {
    gg.close();
  }

  const peers: PeerResult['info'][] = [];
  if (args.peers.length) {
    const nlc = await loadNodeLlamaCpp();
    for (const peer of args.peers) {
      for (const threads of peer === 'cpu' ? args.threads : args.threads.slice(0, 1)) {
        const r = await benchLlamaCpp(nlc, peer, threads, ggufs, prompt, c.bosId, windows, sampleText, sampleIds, args);
        rows.push(...r.rows);
        peers.push(r.info);
      }
    }
  }
  source.close();
  if (!spec.cacheDir) rmSync(dir, { recursive: true, force: true });
  const load1 = loadavg();

  // ---- report
  const kindOf = (r: PeerRow) => (r.backend.startsWith('cpu') ? 'cpu' : 'vulkan');
  const peerRows = rows.filter((r) => r.engine === 'llama.cpp');
  const ourRows = rows.filter((r) => r.engine === 'aser');
  /** Same weights (w4a8: any), best llama.cpp row of a backend kind for a metric (over thread counts). */
  const bestPeer = (ours: PeerRow, kind: string, metric: 'prefillTokPerSec' | 'decodeTokPerSec' | 'pplTokPerSec') =>
    peerRows
      .filter((r) => kindOf(r) === kind && (ours.weights.startsWith('w4a8') || r.weights === ours.weights))
      .sort((a, b) => b[metric] - a[metric])[0];
  const agreement = ourRows.filter((r) => r.weights === 'f32' || r.weights === 'f16').flatMap((ours) =>
    peerRows.filter((r) => r.weights === ours.weights).map((theirs) => ({
      weights: ours.weights, peer: theirs.backend, oursPpl: ours.ppl, theirsPpl: theirs.ppl, relDiff: Math.abs(ours.ppl - theirs.ppl) / theirs.ppl,
    })));
  const logitAgreement = peers.map((p) => {
    const peer = p.backend === 'cpu' ? `cpu (${p.threads} thread${p.threads > 1 ? 's' : ''})` : 'vulkan';
    if (!p.lastLogits || !ourLastLogits) return { peer, maxAbsLogitDiff: NaN };
    let m = 0;
    for (let i = 0; i < ourLastLogits.length; i++) m = Math.max(m, Math.abs(ourLastLogits[i]! - p.lastLogits[i]!));
    return { peer, maxAbsLogitDiff: m };
  });
  const ratios: Array<{ what: string; ours: string; baseline: string; ratio: number; target?: number }> = [];
  for (const ours of ourRows) {
    for (const kind of ['cpu', 'vulkan']) {
      for (const [what, metric, target] of [
        ['prefill', 'prefillTokPerSec', kind === 'vulkan' ? 2 : undefined],
        ['decode', 'decodeTokPerSec', 2],
        ['ppl-eval', 'pplTokPerSec', undefined],
      ] as const) {
        const peer = bestPeer(ours, kind, metric);
        if (peer) ratios.push({ what, ours: ours.weights, baseline: `llama.cpp ${peer.backend.split(' (')[0]} ${peer.weights}${kind === 'cpu' ? ` ${peer.backend.match(/\d+ threads?/)?.[0] ?? ''}` : ''}`, ratio: ours[metric] / peer[metric], target });
      }
    }
  }

  const fmt = (v: number | undefined, d = 0) => (v === undefined || Number.isNaN(v) ? '—' : v.toFixed(d));
  console.log(`peer-llamacpp  ${spec.id} (dim ${c.dim}, hidden ${c.hiddenDim}, ${c.nLayers} layer${c.nLayers > 1 ? 's' : ''}, vocab ${c.vocabSize}), same GGUF weights (${spec.exports.join(', ')}), same token stream`);
  console.log(`  prefill ${args.prefill} tok | decode ${args.decode} tok greedy | ppl: ${windows.length} windows × ${args.ctx} (gptq protocol, ${rows[0]?.scoredTokens ?? 0} scored) | median of ${args.repeats}`);
  console.log('engine     backend              weights        prefill tok/s  decode tok/s  ms/tok  ppl-eval tok/s      ppl');
  for (const r of rows) {
    const extra = r.engine === 'llama.cpp'
      ? `  fwd-only: decode ${fmt(r.decodeForwardOnlyTokPerSec)}, ppl ${fmt(r.pplForwardOnlyTokPerSec)}`
      : r.decodeGpuTokPerSec !== undefined ? `  GPU time: prefill ${fmt(r.prefillGpuTokPerSec)}, decode ${fmt(r.decodeGpuTokPerSec)}` : '';
    const backend = r.backend.startsWith('vulkan') ? 'vulkan (llvmpipe)' : r.backend;
    console.log(`${r.engine.padEnd(10)} ${backend.slice(0, 20).padEnd(20)} ${r.weights.split(' ')[0]!.padEnd(14)} ${fmt(r.prefillTokPerSec).padStart(13)} ${fmt(r.decodeTokPerSec).padStart(13)} ${fmt(r.decodeMsPerToken, 2).padStart(7)} ${fmt(r.pplTokPerSec).padStart(15)} ${fmt(r.ppl, 5).padStart(8)}${extra}`);
  }
  console.log('ratios (aser / the best llama.cpp row of that backend with the same weights; >1 = aser faster):');
  for (const r of ratios) {
    const verdict = r.target ? (r.ratio >= r.target ? `  (target ≥${r.target}: met)` : `  (target ≥${r.target}: NOT met)`) : '';
    console.log(`  ${r.what.padEnd(8)} aser ${r.ours.split(' ')[0]!.padEnd(8)} vs ${r.baseline.padEnd(30)} x${r.ratio.toFixed(2)}${verdict}`);
  }
  console.log('perplexity agreement (same windows, |Δppl| / ppl_llama.cpp; target ≤ 1e-4 in f32):');
  for (const a of agreement) console.log(`  ${a.weights} vs llama.cpp ${a.peer.startsWith('vulkan') ? 'vulkan' : a.peer}: aser ${a.oursPpl.toFixed(6)}  llama.cpp ${a.theirsPpl.toFixed(6)}  rel ${a.relDiff.toExponential(2)}`);
  for (const l of logitAgreement) console.log(`  last-token logits of the prefill prompt, f32: max |Δ| vs llama.cpp ${l.peer} = ${l.maxAbsLogitDiff.toExponential(2)}`);
  for (const p of peers) console.log(`  llama.cpp ${p.backend}/${p.threads}t: NLL from (target, top logit, Σexp) vs float64 log-softmax of full rows: max |Δ| ${p.summaryVsFullMaxAbsNll.toExponential(2)}; its tokenizer ${p.tokenizerAgrees ? 'gives our ids' : 'differs (ids are fed directly, so this does not matter)'}`);
  const oursF32 = ourRows.find((r) => r.weights === 'f32');
  if (oursF32) {
    const gpuDecodeMs = oursF32.decodeGpuTokPerSec ? 1000 / oursF32.decodeGpuTokPerSec : NaN;
    console.log(`bounds (aser f32): decode ${oursF32.decodeMsPerToken.toFixed(3)} ms/token wall, ${gpuDecodeMs.toFixed(3)} ms of it GPU time (llvmpipe runs the kernels on the same cores); an empty submit + 4-byte map round trip costs ${rtt.toFixed(3)} ms`);
    console.log(`                   prefill ${fmt(oursF32.prefillTokPerSec)} tok/s wall, ${fmt(oursF32.prefillGpuTokPerSec)} tok/s counting GPU time only`);
  }
  // Greedy decode from BOS on the same float weights (f32 for stories260K, f16 at the 8B shape).
  const greedy = ourRows.filter((r) => r.weights === 'f32' || r.weights === 'f16').flatMap((ours) =>
    peerRows.filter((r) => kindOf(r) === 'cpu' && r.weights === ours.weights).slice(0, 1).map((theirs) => ({
      weights: ours.weights, same: JSON.stringify(ours.decodeHead) === JSON.stringify(theirs.decodeHead), aser: ours.decodeHead, llamacpp: theirs.decodeHead,
    })));
  for (const g of greedy) console.log(`  greedy decode from BOS: first ${g.aser.length} tokens ${g.same ? 'identical' : 'DIFFER'} (aser ${g.weights} vs llama.cpp cpu ${g.weights})`);
  console.log(`  load average ${load0.map((x) => x.toFixed(2)).join(' ')} (start) → ${load1.map((x) => x.toFixed(2)).join(' ')} (end), ${cpus().length} cores`);
  console.log(`  aser: ${gpu.describe()} | webgpu (Dawn) ${packageVersion('webgpu')} | commit ${gitCommit()}`);
  console.log(`  llama.cpp: node-llama-cpp ${packageVersion('node-llama-cpp')} | ${peers.map((p) => `${p.backend}/${p.threads}t ${p.release}`).join(' | ')}`);

  const report = {
    bench: 'peer-llamacpp',
    date: started,
    commit: gitCommit(),
    model: { id: spec.id, source: spec.path, synthCommand: spec.synthCommand, dim: c.dim, hidden: c.hiddenDim, layers: c.nLayers, vocab: c.vocabSize, weights: `our GGUF exports of ${spec.path} (${spec.exports.join(', ')}; q4_0 = Q4_0 blocks with a Q8_0 classifier); aser runs the ${oursFrom} export (w4a8 = RTN W4A8 built from it)` },
    note: 'The machine is shared with other engineers\' jobs: absolute speeds are depressed and noisy, and ratios within one run compare the engines under the same load only while that load holds (machine.loadAverageStart / loadAverageEnd record it).',
    data: { dataset: 'tinystories', file: data.file, textTokens: ids.length, protocol: 'gptq', ctx: args.ctx, windows: windows.length },
    settings: {
      prefill: args.prefill, decode: args.decode, repeats: args.repeats, threads: args.threads,
      llamacppContext: 'contextSize 512, batchSize 512, KV cache F32 for f32 weights / F16 for f16 (as aser), flashAttention off',
      aserKvCache: 'f32 for f32 weights, f16 for f16 and w4a8',
    },
    timer: 'wall clock (performance.now), medians; aser GPU time from timestamp queries where offered',
    machine: { cores: cpus().length, cpu: cpus()[0]?.model, loadAverageStart: load0, loadAverageEnd: load1 },
    aser: { adapter: gpu.describe(), adapterInfo: gpu.adapterInfo, webgpu: packageVersion('webgpu'), roundTripMs: rtt },
    llamacpp: {
      adapter: 'node-llama-cpp (npm), prebuilt binaries',
      nodeLlamaCpp: packageVersion('node-llama-cpp'),
      backends: peers.map(({ lastLogits: _drop, ...p }) => p),
      env: { GGML_VK_VISIBLE_DEVICES: process.env.GGML_VK_VISIBLE_DEVICES ?? null },
    },
    results: rows,
    ratios,
    agreement,
    logitAgreement,
    greedy,
  };
  writeJsonReport(args.out, report, gpu.describe());
  console.log(`  wrote ${args.out}`);
  gpu.device.destroy();
  return 0;
}

runIfMain(import.meta.url, main);
