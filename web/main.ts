// The page: the same executor, kernels and format readers as `aser`, on the browser's WebGPU. A person
// picks a model (and an ASER artifact), generates with streaming text, measures perplexity, and sees
// the adapter and a per-op time chart. Automation drives it through URL parameters (see README "Web
// page"): with autorun=1 it runs once, writes one JSON object into <pre id="result"> and sets
// document.body.dataset.done = "1" — also when the run failed (then the object has `error`).
import { openDevice, type OpenDeviceOptions } from '../runtime/device.js';
import { PipelineCache } from '../runtime/pipelines.js';
import { createModelExecutor } from '../runtime/model-executor.js';
import type { Executor } from '../runtime/executor.js';
import { generate, SAMPLING_SITES, type SamplingSite } from '../runtime/generate.js';
import { GpuTimer } from '../runtime/profiler.js';
import type { GpuContext } from '../core/gpu.js';
import { createDetokenizer } from '../loaders/detokenizer.js';
import { artifactClassifier, type ArtifactReader } from '../loaders/artifact-reader.js';
import { perplexity } from '../eval/ppl.js';
import { opTimes } from '../eval/profile.js';
import {
  artifactFromFiles, artifactFromUrl, describeError, fetchBytes, modelFromFiles, modelFromUrl, type NamedBytes, type WebModel,
} from './open-model.js';

/** Models shipped with the site (`npm run web:build` copies them), by the name the `model` parameter takes. */
const BUNDLED_MODELS: Record<string, string> = { stories260k: 'models/stories260k/' };
/** Texts shipped with the site for perplexity, by the name the `ppl` parameter takes. */
const BUNDLED_TEXTS: Record<string, string> = { tinystories: 'data/tinystories.txt' };

const $ = <T extends HTMLElement>(id: string) => document.getElementById(id) as T;

interface RunSettings {
  prompt: string;
  maxTokens: number;
  temperature: number;
  topK: number;
  topP: number;
  seed?: number;
  ppl?: string;
  pplText?: string;
  ctx: number;
  maxWindows?: number;
  profile: boolean;
  /** Where tokens are chosen, as `aser generate --sampling` (default gpu). */
  sampling?: SamplingSite;
}

interface Loaded {
  key: string;
  model: WebModel;
  artifact?: ArtifactReader;
  artifactLabel?: string;
  executor: Executor;
}

let gpu: GpuContext | undefined;
let pipelines: PipelineCache | undefined;
let loaded: Loaded | undefined;
let pickedModel: NamedBytes[] | undefined;
let pickedArtifact: NamedBytes[] | undefined;
let busy = false;

function status(text: string): void {
  $('status').textContent = text;
}

function showError(message: string): void {
  const box = $('error');
  box.textContent = message;
  box.hidden = false;
}

/** Optional features the `disable` parameter turns off (e.g. disable=subgroups), to compare kernel paths. */
const DISABLED_FEATURES = (new URLSearchParams(location.search).get('disable') ?? '').split(',').filter(Boolean) as OpenDeviceOptions['disable'];

async function device(): Promise<GpuContext> {
  if (!gpu) {
    gpu = await openDevice(navigator.gpu, { disable: DISABLED_FEATURES });
    pipelines = new PipelineCache(gpu.device);
    const lost = gpu;
    lost.device.lost.then((info) => {
      if (info.reason !== 'destroyed') showError(`GPU device lost: ${info.message}`);
      if (gpu === lost) gpu = undefined;
    });
    renderAdapter(gpu);
  }
  return gpu;
}

function renderAdapter(g: GpuContext): void {
  const a = g.adapterInfo;
  const rows: Array<[string, string]> = [
    ['adapter', [a.vendor, a.architecture, a.device || a.description].filter(Boolean).join(' ') || 'unknown'],
    ['features', Object.entries(g.features).map(([k, v]) => `${k} ${v ? '✓' : '✗'}`).join(', ')],
    ['precision', g.features.shaderF16 ? 'f32 (f16 available)' : 'f32 (no shader-f16 on this adapter)'],
    ['max storage binding', `${(g.limits.maxStorageBufferBindingSize / 2 ** 20).toFixed(0)} MiB`],
  ];
  $('adapter').replaceChildren(...rows.map(([k, v]) => {
    const dt = document.createElement('dt');
    dt.textContent = k;
    const dd = document.createElement('dd');
    dd.textContent = v;
    return [dt, dd];
  }).flat());
}

/** Reads every picked file (a directory picker gives paths; only the last part matters here). */
async function readPicked(list: FileList | null): Promise<NamedBytes[] | undefined> {
  if (!list || list.length === 0) return undefined;
  return Promise.all([...list].map(async (f) => ({ name: f.name, bytes: new Uint8Array(await f.arrayBuffer()) })));
}

function modelChoice(): { key: string; open: () => Promise<WebModel> } {
  const choice = ($('model') as HTMLSelectElement).value;
  if (choice === 'local') {
    const files = pickedModel;
    if (!files) throw new Error('pick a model first: a llama2.c .bin and its tokenizer, a .gguf, or a Hugging Face directory');
    return { key: `local:${files.map((f) => `${f.name}:${f.bytes.byteLength}`).join(',')}`, open: () => modelFromFiles(files) };
  }
  const url = BUNDLED_MODELS[choice] ?? choice;
  return { key: url, open: () => modelFromUrl(url) };
}

function artifactChoice(): { key: string; label: string; open: (sha: string) => Promise<ArtifactReader> } | undefined {
  const mode = ($('artifact-mode') as HTMLSelectElement).value;
  if (mode === 'url') {
    const url = ($('artifact-url') as HTMLInputElement).value.trim();
    if (!url) throw new Error('give the artifact URL (e.g. /artifact/ when `npm run web -- --artifact DIR` serves one)');
    return { key: `url:${url}`, label: url, open: (sha) => artifactFromUrl(url, sha) };
  }
  if (mode === 'local') {
    const files = pickedArtifact;
    if (!files) throw new Error('pick the artifact directory first');
    return { key: `local:${files.map((f) => `${f.name}:${f.bytes.byteLength}`).join(',')}`, label: 'picked directory', open: (sha) => artifactFromFiles(files, sha) };
  }
  return undefined;
}

/** The model, artifact and executor the controls name, reusing what is already loaded. */
async function ensureLoaded(): Promise<Loaded> {
  const g = await device();
  const m = modelChoice();
  const a = artifactChoice();
  const key = `${m.key}|${a?.key ?? ''}`;
  if (loaded?.key === key) return loaded;
  if (loaded) {
    loaded.executor.destroy();
    loaded.model.source.close();
    loaded = undefined;
  }
  status('loading the model…');
  const model = await m.open();
  try {
    let artifact: ArtifactReader | undefined;
    if (a) {
      status('checking the artifact (sizes and sha256 of every file)…');
      artifact = await a.open(model.sha256);
    }
    status('building the executor (pipelines, weights onto the GPU)…');
    const executor = await createModelExecutor(g, model.source, pipelines!, {
      linears: artifact ? (name) => artifact.linear(name) : undefined,
      classifier: artifactClassifier(artifact),
    });
    loaded = { key, model, artifact, artifactLabel: a?.label, executor };
    const c = model.source.config;
    $('model-info').textContent = `${model.id}: dim ${c.dim}, ${c.nLayers} layers, vocab ${c.vocabSize}, context ${c.maxSeqLen}` +
      (artifact ? ` · artifact ${artifact.manifest.method} W${artifact.manifest.wBits}A${artifact.manifest.aBits}` : ' · dense f32');
    return loaded;
  } catch (err) {
    model.source.close();
    throw err;
  }
}

function num(id: string): number {
  return Number(($(id) as HTMLInputElement).value);
}

function settingsFromControls(): RunSettings {
  const seedText = ($('seed') as HTMLInputElement).value.trim();
  const windowsText = ($('max-windows') as HTMLInputElement).value.trim();
  return {
    prompt: ($('prompt') as HTMLTextAreaElement).value,
    maxTokens: num('max-tokens'),
    temperature: num('temperature'),
    topK: num('top-k'),
    topP: num('top-p'),
    seed: seedText ? Number(seedText) : undefined,
    ctx: num('ctx'),
    maxWindows: windowsText ? Number(windowsText) : undefined,
    profile: false,
  };
}

async function runGeneration(l: Loaded, s: RunSettings): Promise<Record<string, unknown>> {
  const tok = l.model.tokenizer;
  const prompt = tok.encode(s.prompt, { bos: true });
  if (prompt.length >= l.executor.maxSeqLen) throw new Error(`the prompt is ${prompt.length} tokens, the context holds ${l.executor.maxSeqLen}`);
  const detok = createDetokenizer(tok, prompt);
  const out = $('output');
  out.textContent = s.prompt;
  const generated = document.createElement('span');
  generated.className = 'generated';
  out.append(generated);
  let text = '';
  const started = performance.now();
  status('generating…');
  const result = await generate(l.executor, prompt, {
    maxTokens: s.maxTokens, temperature: s.temperature, topK: s.topK, topP: s.topP, seed: s.seed, sampling: s.sampling,
    onToken: (id, i) => {
      const piece = detok.push(id);
      text += piece;
      generated.textContent = text;
      if (i % 8 === 0) $('gen-stats').textContent = `${i + 1} tokens, ${((i + 1) / ((performance.now() - started) / 1000)).toFixed(1)} tok/s so far`;
    },
  });
  text += detok.flush();
  generated.textContent = text;
  const decodeTokensPerSecond = result.tokens.length > 1 ? (result.tokens.length - 1) / result.decodeSeconds : 0;
  $('gen-stats').textContent = `${result.tokens.length} tokens (${result.stopReason}), prefill ${(result.prefillSeconds * 1000).toFixed(0)} ms, ` +
    `decode ${decodeTokensPerSecond.toFixed(1)} tok/s, seed ${result.seed}`;
  return {
    text, tokens: result.tokens.length, tokenIds: result.tokens, stopReason: result.stopReason, seed: result.seed,
    promptTokens: prompt.length, prefillSeconds: result.prefillSeconds, decodeSeconds: result.decodeSeconds, decodeTokensPerSecond,
  };
}

async function runPerplexity(l: Loaded, s: RunSettings): Promise<Record<string, unknown>> {
  let text = s.pplText;
  let name = 'pasted text';
  if (text === undefined) {
    const path = BUNDLED_TEXTS[s.ppl ?? ''];
    if (!path) throw new Error(`no bundled text named ${JSON.stringify(s.ppl)} (${Object.keys(BUNDLED_TEXTS).join(', ')})`);
    text = new TextDecoder().decode(await fetchBytes(path, `the bundled text ${s.ppl}`));
    name = s.ppl!;
  }
  const bar = $('ppl-progress') as HTMLProgressElement;
  bar.value = 0;
  status(`perplexity over ${name}…`);
  const r = await perplexity(l.executor, l.model.tokenizer, text, {
    ctx: s.ctx, protocol: 'gptq', maxWindows: s.maxWindows,
    onProgress: (p) => {
      bar.max = p.windows;
      bar.value = p.window;
      $('ppl-stats').textContent = `window ${p.window}/${p.windows}: ppl ${p.ppl.toFixed(4)} over ${p.tokens} tokens`;
    },
  });
  $('ppl-stats').textContent = `${name} (gptq, ctx ${r.ctx}): ppl ${r.ppl.toFixed(4)} over ${r.tokens} tokens in ${r.windows} windows, ` +
    `${r.seconds.toFixed(2)} s (${(r.tokens / r.seconds).toFixed(0)} tok/s)`;
  return { dataset: name, ppl: r.ppl, nll: r.nll, ctx: r.ctx, windows: r.windows, tokens: r.tokens, seconds: r.seconds };
}

/** GPU ms per op of a decode step (timestamp queries, each op its own pass), drawn as bars. */
async function runProfile(l: Loaded, prompt: string): Promise<Record<string, number> | undefined> {
  const g = await device();
  const chart = $('op-chart');
  const timer = GpuTimer.create(g, 4096);
  if (!timer) {
    chart.textContent = 'This adapter has no timestamp-query: no per-op times.';
    return undefined;
  }
  status('timing each op…');
  const ids = l.model.tokenizer.encode(prompt || 'Once upon a time', { bos: true });
  const t = await opTimes(l.executor, timer, ids, 8);
  const rows = Object.entries(t.decode).sort((a, b) => b[1] - a[1]);
  const max = rows[0]?.[1] ?? 0;
  if (!(max > 0)) {
    // SwiftShader grants timestamp-query but writes zeros: say so rather than draw empty bars.
    chart.textContent = `This adapter's timestamp queries read zero for all ${rows.length} ops (SwiftShader writes no timestamps): no per-op GPU times here; a hardware adapter fills this chart.`;
    return t.decode;
  }
  const title = document.createElement('p');
  title.textContent = `decode step: ${t.decodeTotal.toFixed(3)} ms GPU (mean of ${t.steps} steps); prefill of ${ids.length} tokens: ${t.prefillTotal.toFixed(3)} ms`;
  chart.replaceChildren(title, ...rows.map(([label, ms]) => {
    const row = document.createElement('div');
    row.className = 'bar-row';
    const name = document.createElement('span');
    name.className = 'bar-label';
    name.textContent = label;
    const bar = document.createElement('span');
    bar.className = 'bar';
    bar.style.width = `${(100 * ms) / max}%`;
    const value = document.createElement('span');
    value.className = 'bar-value';
    value.textContent = `${ms.toFixed(3)} ms`;
    row.append(name, bar, value);
    return row;
  }));
  return t.decode;
}

/** One run; never throws: failures land in the page and in the result's `error`. */
async function run(s: RunSettings, what: { generate: boolean; ppl: boolean }): Promise<Record<string, unknown>> {
  if (busy) return { error: 'a run is already in progress' };
  busy = true;
  $('error').hidden = true;
  const buttons = document.querySelectorAll<HTMLButtonElement>('button');
  buttons.forEach((b) => (b.disabled = true));
  const result: Record<string, unknown> = {};
  try {
    const l = await ensureLoaded();
    result.model = l.model.id;
    result.artifact = l.artifactLabel ?? null;
    result.adapter = gpu!.describe();
    if (what.generate) Object.assign(result, await runGeneration(l, s));
    if (what.ppl) result.ppl = await runPerplexity(l, s);
    if (s.profile) result.opMs = await runProfile(l, s.prompt);
    status('done');
  } catch (err) {
    result.error = describeError(err);
    showError(result.error as string);
    status('failed');
  } finally {
    result.adapter ??= gpu?.describe() ?? null;
    busy = false;
    buttons.forEach((b) => (b.disabled = false));
  }
  return result;
}

function finish(result: Record<string, unknown>): void {
  $('result').textContent = JSON.stringify(result);
  document.body.dataset.done = '1';
}

/** URL parameters → controls; returns the settings of an autorun. */
function applyParams(p: URLSearchParams): RunSettings {
  const set = (id: string, v: string | null) => {
    if (v !== null) ($(id) as HTMLInputElement).value = v;
  };
  const model = p.get('model');
  if (model) {
    const select = $('model') as HTMLSelectElement;
    if (![...select.options].some((o) => o.value === model)) select.add(new Option(model, model));
    select.value = model;
  }
  const artifact = p.get('artifact');
  if (artifact) {
    ($('artifact-mode') as HTMLSelectElement).value = 'url';
    set('artifact-url', artifact);
  }
  set('prompt', p.get('prompt'));
  set('max-tokens', p.get('max_tokens'));
  set('temperature', p.get('temperature'));
  set('top-k', p.get('top_k'));
  set('top-p', p.get('top_p'));
  set('seed', p.get('seed'));
  set('ctx', p.get('ctx'));
  set('max-windows', p.get('max_windows'));
  const s = settingsFromControls();
  const ppl = p.get('ppl');
  if (ppl) s.ppl = ppl;
  s.profile = p.get('profile') === '1';
  const sampling = p.get('sampling');
  if (sampling) s.sampling = SAMPLING_SITES.includes(sampling as SamplingSite) ? (sampling as SamplingSite) : undefined;
  return s;
}

function wire(): void {
  ($('model-files') as HTMLInputElement).addEventListener('change', async (e) => {
    pickedModel = await readPicked((e.target as HTMLInputElement).files);
    ($('model') as HTMLSelectElement).value = 'local';
  });
  ($('model-dir') as HTMLInputElement).addEventListener('change', async (e) => {
    pickedModel = await readPicked((e.target as HTMLInputElement).files);
    ($('model') as HTMLSelectElement).value = 'local';
  });
  ($('artifact-files') as HTMLInputElement).addEventListener('change', async (e) => {
    pickedArtifact = await readPicked((e.target as HTMLInputElement).files);
    ($('artifact-mode') as HTMLSelectElement).value = 'local';
  });
  $('generate').addEventListener('click', async () => finish(await run(settingsFromControls(), { generate: true, ppl: false })));
  $('run-ppl').addEventListener('click', async () => {
    const s = settingsFromControls();
    const source = ($('ppl-source') as HTMLSelectElement).value;
    if (source === 'pasted') s.pplText = ($('ppl-text') as HTMLTextAreaElement).value;
    else s.ppl = source;
    finish(await run(s, { generate: false, ppl: true }));
  });
  $('profile').addEventListener('click', async () => {
    const s = settingsFromControls();
    s.profile = true;
    finish(await run(s, { generate: false, ppl: false }));
  });
}

async function main(): Promise<void> {
  window.addEventListener('error', (e) => showError(`error: ${e.message}`));
  window.addEventListener('unhandledrejection', (e) => showError(`error: ${describeError(e.reason)}`));
  wire();
  const params = new URLSearchParams(location.search);
  const settings = applyParams(params);
  if (!('gpu' in navigator)) {
    showError('This browser offers no WebGPU (navigator.gpu is missing). Chromium: --enable-unsafe-webgpu; see README "Web page".');
    if (params.get('autorun') === '1') finish({ error: 'navigator.gpu is missing', adapter: null });
    return;
  }
  if (params.get('autorun') === '1') {
    const maxTokens = settings.maxTokens;
    finish(await run(settings, { generate: maxTokens > 0, ppl: settings.ppl !== undefined }));
  } else {
    try {
      await device();
      status('ready');
    } catch (err) {
      showError(describeError(err));
    }
  }
}

void main();
