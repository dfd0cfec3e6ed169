// Synthetic checkpoints with the exact shapes of real 8B-class models (LLaMA-3-8B, Qwen1.5-7B), written as
// a Hugging Face directory (config.json, sharded bf16 safetensors + index, tokenizer files). Real weights
// cannot be downloaded here, so the 8B path (loading, quantizing, memory, speed) is proven on these.
//
// Weights are deterministic from (seed, tensor name): every tensor has its own PRNG stream, so a 2-layer
// model's tensors are byte-identical to the first two layers of the 32-layer model with the same seed,
// and the shard size changes nothing but the file boundaries.
//
// Statistics imitate a trained model where quantization cares:
//   - linear weights: heavy-tailed (Tukey-h, h = 0.1: row absmax ≈ 8-10 std, as in real checkpoints),
//     per-projection std (q/k/gate/up ≈ 0.02, smaller for v/o/down), a log-normal per-output-row scale
//     (per-channel quantization sees different row ranges) and a mild drift with depth;
//   - RMSNorm weights ≈ 1 ± 10 %, except a handful of "massive activation" channels, the same in every
//     norm of every layer, whose weights are 20-100× larger: activation outliers for smoothing to handle;
//   - q/k/v biases (Qwen) with k biases larger than q/v, as in Qwen checkpoints.
// Memory: tensors stream one at a time through one reused byte buffer the size of the largest tensor
// (writeSafetensors takes one Uint8Array per tensor), so the peak is that buffer: 1 GiB (bf16
// 128256×4096) for LLaMA-3-8B, 1.16 GiB (151936×4096) for Qwen1.5-7B.
import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import type { ModelConfig } from '../core/model.js';
import { writeBytesAtomic, writeDirAtomic } from './atomic.js';
import { FormatError, NotFoundError, SynthError } from './errors.js';
import { parseHfConfig, toHfConfigJson } from './hf-config.js';
import { requiredTensorShapes } from './hf-model.js';
import { loadHfTokenizer } from './hf-tokenizer.js';
import { writeSafetensors, type SafetensorsWriteTensor } from './safetensors.js';

/** Full-depth configs of the real models (config.json values); the writer only reduces nLayers. */
export const SYNTH_SHAPES = {
  'llama3-8b': {
    arch: 'llama', dim: 4096, hiddenDim: 14336, nLayers: 32, nHeads: 32, nKvHeads: 8, headDim: 128, vocabSize: 128256,
    maxSeqLen: 8192, normEps: 1e-5, ropeTheta: 500000, ropeStyle: 'half', tiedEmbeddings: false, attentionBias: false,
    bosId: 128000, eosId: 128001,
  },
  'qwen1.5-7b': {
    arch: 'qwen2', dim: 4096, hiddenDim: 11008, nLayers: 32, nHeads: 32, nKvHeads: 32, headDim: 128, vocabSize: 151936,
    maxSeqLen: 32768, normEps: 1e-6, ropeTheta: 1000000, ropeStyle: 'half', tiedEmbeddings: false, attentionBias: true,
    bosId: 151643, eosId: 151643,
  },
} as const satisfies Record<string, ModelConfig>;
export type SynthShapeName = keyof typeof SYNTH_SHAPES;

export function isSynthShapeName(name: string): name is SynthShapeName {
  return Object.hasOwn(SYNTH_SHAPES, name);
}

/** Default shard bound: 2 GB (HF's save_pretrained uses 5 GB; smaller shards keep each file's fsync and copy short). */
export const DEFAULT_SHARD_BYTES = 2e9;

/** Reported as each tensor starts (doneBytes = the tensors before it) and once at the end (tensor ''). */
export interface SynthProgress {
  tensor: string;
  doneBytes: number;
  totalBytes: number;
}

export interface SynthOptions {
  /** A preset (full real dimensions) or any ModelConfig (e.g. a tiny one for tests; same code path). */
  shape: SynthShapeName | ModelConfig;
  /** num_hidden_layers to write (default: the shape's). Nothing else of the shape changes. */
  layers?: number;
  /** Any integer; the same seed gives the same bytes. */
  seed: number;
  /** Upper bound on one shard's tensor bytes (a single larger tensor gets a shard of its own). */
  shardBytes?: number;
  /**
   * Directory holding tokenizer.json (+ tokenizer_config.json) to copy in; null writes none (then pass a
   * tokenizer to loadHfModel). Its vocabulary must fit the model's; its BOS/EOS ids go into config.json.
   */
  tokenizerDir: string | null;
  /** Number of outlier ("massive activation") channels in the norm weights (default ≈ 6 per 4096, at least 2). */
  outlierChannels?: number;
  /** Replace an existing output directory (default false). */
  overwrite?: boolean;
  onProgress?: (p: SynthProgress) => void;
}

export interface SynthResult {
  dir: string;
  config: ModelConfig;
  /** Shard file names in order. */
  shards: string[];
  tensorCount: number;
  /** Sum of tensor bytes (index metadata.total_size). */
  totalBytes: number;
  /** Channels whose norm weights are 20-100× the rest, ascending, with their multipliers. */
  outliers: Array<{ channel: number; scale: number }>;
  /** Token ids ≥ this have near-zero classifier rows (the tokenizer never produces them); = vocabSize when none. */
  paddedVocabFrom: number;
}

/** tokenizers/llama3 of the shared data next to the checkout, if present (the CLI's default). */
export function defaultSynthTokenizerDir(): string | undefined {
  // loaders/synth.ts sits one level below the repository root, the compiled dist/loaders/synth.js two.
  const candidates = ['../../shared/tokenizers/llama3', '../../../shared/tokenizers/llama3'].map((rel) => fileURLToPath(new URL(rel, import.meta.url)));
  return candidates.find((c) => existsSync(join(c, 'tokenizer.json')));
}

// ---- deterministic random numbers ----------------------------------------------------------------

/** splitmix32 step: a well-mixed 32-bit value from a counter (seeds the per-tensor streams). */
function splitmix32(x: number): number {
  x = (x + 0x9e3779b9) | 0;
  let z = x;
  z = Math.imul(z ^ (z >>> 16), 0x85ebca6b);
  z = Math.imul(z ^ (z >>> 13), 0xc2b2ae35);
  return (z ^ (z >>> 16)) >>> 0;
}

/** FNV-1a of a string, for mixing tensor names into seeds. */
function fnv1a(s: string): number {
  let h = 0x811c9dc5;
  for (let i = 0; i < s.length; i++) h = Math.imul(h ^ s.charCodeAt(i), 0x01000193);
  return h >>> 0;
}

/** xoshiro128** (Blackman & Vigna): fast, 2^128 period, plenty for weights. */
export class Xoshiro128 {
  private a: number;
  private b: number;
  private c: number;
  private d: number;

  constructor(seed: number, stream = 0) {
    let s = (Math.trunc(seed) ^ Math.imul(stream, 0x27d4eb2f)) | 0;
    s = splitmix32(s) ^ Math.trunc(seed / 2 ** 32);
    this.a = splitmix32(s);
    this.b = splitmix32(this.a ^ 0x6a09e667);
    this.c = splitmix32(this.b ^ 0xbb67ae85);
    this.d = splitmix32(this.c ^ 0x3c6ef372);
    if ((this.a | this.b | this.c | this.d) === 0) this.d = 1;
  }

  /** Next 32 random bits as an unsigned integer. */
  nextU32(): number {
    const r = Math.imul(rotl(Math.imul(this.b, 5), 7), 9);
    const t = this.b << 9;
    this.c ^= this.a;
    this.d ^= this.b;
    this.b ^= this.c;
    this.a ^= this.d;
    this.c ^= t;
    this.d = rotl(this.d, 11);
    return r >>> 0;
  }

  /** Uniform in [0, 1). */
  uniform(): number {
    return this.nextU32() / 2 ** 32;
  }
}

function rotl(x: number, k: number): number {
  return (x << k) | (x >>> (32 - k));
}

/** Inverse of the standard normal CDF (Acklam's rational approximation, relative error < 1.2e-9). */
function normalQuantile(p: number): number {
  const a = [-3.969683028665376e1, 2.209460984245205e2, -2.759285104469687e2, 1.38357751867269e2, -3.066479806614716e1, 2.506628277459239];
  const b = [-5.447609879822406e1, 1.615858368580409e2, -1.556989798598866e2, 6.680131188771972e1, -1.328068155288572e1];
  const c = [-7.784894002430293e-3, -3.223964580411365e-1, -2.400758277161838, -2.549732539343734, 4.374664141464968, 2.938163982698783];
  const d = [7.784695709041462e-3, 3.224671290700398e-1, 2.445134137142996, 3.754408661907416];
  const tail = (q: number) => (((((c[0]! * q + c[1]!) * q + c[2]!) * q + c[3]!) * q + c[4]!) * q + c[5]!) / ((((d[0]! * q + d[1]!) * q + d[2]!) * q + d[3]!) * q + 1);
  if (p < 0.02425) return tail(Math.sqrt(-2 * Math.log(p)));
  if (p > 1 - 0.02425) return -tail(Math.sqrt(-2 * Math.log(1 - p)));
  const q = p - 0.5;
  const r = q * q;
  return ((((((a[0]! * r + a[1]!) * r + a[2]!) * r + a[3]!) * r + a[4]!) * r + a[5]!) * q) / (((((b[0]! * r + b[1]!) * r + b[2]!) * r + b[3]!) * r + b[4]!) * r + 1);
}

/** Tail weight of the Tukey-h transform z·exp(h·z²/2) applied to the weights' normal draws. */
const TUKEY_H = 0.1;

let quantileTable: Float32Array | undefined;
/**
 * 65536 equiprobable quantiles of a unit-variance heavy-tailed distribution (Tukey-h of a normal): one
 * 16-bit index per value, two values per PRNG call, no log/sqrt per element. Extreme values ±4.4σ of
 * the normal become ≈ ±9.8 standard deviations, like the row maxima of trained weights.
 */
function heavyTailTable(): Float32Array {
  if (!quantileTable) {
    quantileTable = new Float32Array(65536);
    const std = (1 - 2 * TUKEY_H) ** -0.75; // Var[z·e^{hz²/2}] = (1 - 2h)^{-3/2}
    for (let i = 0; i < 65536; i++) {
      const z = normalQuantile((i + 0.5) / 65536);
      quantileTable[i] = (z * Math.exp((TUKEY_H * z * z) / 2)) / std;
    }
  }
  return quantileTable;
}

/** A standard normal draw (Box-Muller); used for the few per-row and per-channel factors only. */
function gaussian(rng: Xoshiro128): number {
  const u = 1 - rng.uniform();
  return Math.sqrt(-2 * Math.log(u)) * Math.cos(2 * Math.PI * rng.uniform());
}

// ---- what each tensor looks like ------------------------------------------------------------------

/** Standard deviation per projection (order of magnitude of LLaMA/Qwen checkpoints). */
const LINEAR_STD: Record<string, number> = {
  'self_attn.q_proj': 0.02,
  'self_attn.k_proj': 0.03,
  'self_attn.v_proj': 0.012,
  'self_attn.o_proj': 0.01,
  'mlp.gate_proj': 0.02,
  'mlp.up_proj': 0.018,
  'mlp.down_proj': 0.012,
};
const BIAS_STD: Record<string, number> = { 'self_attn.q_proj': 0.1, 'self_attn.k_proj': 0.5, 'self_attn.v_proj': 0.02 };
const EMBED_STD = 0.01;
const HEAD_STD = 0.02;
/** σ of the log of each output row's scale (rows differ ~±20 %: per-channel quantization matters). */
const ROW_LOG_STD = 0.2;
/** Relative spread of ordinary RMSNorm weights around their layer's base. */
const NORM_SPREAD = 0.1;
/** Multiplier of the classifier rows past the tokenizer's vocabulary: logits ≈ 0, never the argmax. */
const PADDED_ROW_SCALE = 1e-3;

type TensorKind =
  | { kind: 'linear'; std: number }
  | { kind: 'norm'; base: number }
  | { kind: 'bias'; std: number }
  | { kind: 'table'; std: number; paddedFrom: number };

/** Depth drift: deeper layers a little larger, relative to the full model's depth. */
function depthFactor(layer: number, fullDepth: number): number {
  return 0.85 + 0.3 * (fullDepth > 1 ? layer / (fullDepth - 1) : 0);
}

function tensorKind(name: string, fullDepth: number, paddedFrom: number): TensorKind {
  if (name === 'model.embed_tokens.weight') return { kind: 'table', std: EMBED_STD, paddedFrom: Infinity };
  if (name === 'lm_head.weight') return { kind: 'table', std: HEAD_STD, paddedFrom };
  if (name === 'model.norm.weight') return { kind: 'norm', base: 1 };
  const m = /^model\.layers\.(\d+)\.(.+)\.(weight|bias)$/.exec(name);
  if (!m) throw new RangeError(`synth: no rule for tensor ${name}`);
  const layer = Number(m[1]);
  const part = m[2]!;
  const depth = depthFactor(layer, fullDepth);
  if (part === 'input_layernorm' || part === 'post_attention_layernorm') return { kind: 'norm', base: depth };
  if (m[3] === 'bias') return { kind: 'bias', std: BIAS_STD[part]! };
  const std = LINEAR_STD[part];
  if (std === undefined) throw new RangeError(`synth: no rule for tensor ${name}`);
  return { kind: 'linear', std: std * depth };
}

/** The outlier channels: a seed-chosen set shared by every norm, each with a 20-100× multiplier. */
export function synthOutliers(dim: number, count: number, seed: number): Array<{ channel: number; scale: number }> {
  if (!Number.isInteger(count) || count < 0 || count > dim) throw new RangeError(`outlier channel count ${count} must be an integer in 0..${dim}`);
  const rng = new Xoshiro128(seed, fnv1a('outlier-channels'));
  const chosen = new Map<number, number>();
  while (chosen.size < count) {
    const ch = rng.nextU32() % dim;
    if (!chosen.has(ch)) chosen.set(ch, 20 * 5 ** rng.uniform());
  }
  return [...chosen].map(([channel, scale]) => ({ channel, scale })).sort((a, b) => a.channel - b.channel);
}

function defaultOutlierCount(dim: number): number {
  return Math.min(dim, Math.max(2, Math.round((6 * dim) / 4096)));
}

/**
 * Fills `out` (bf16 bits) with one tensor's values. Rows are generated into an f32 scratch and rounded
 * to bf16 (nearest even) in place, so no full-size f32 copy ever exists.
 */
function fillTensor(out: Uint16Array, shape: number[], kind: TensorKind, rng: Xoshiro128, outliers: Array<{ channel: number; scale: number }>): void {
  const cols = shape[shape.length - 1]!;
  const rows = out.length / cols;
  const scratch = new Float32Array(cols + 1);
  const bits = new Uint32Array(scratch.buffer);
  const table = heavyTailTable();
  for (let r = 0; r < rows; r++) {
    if (kind.kind === 'norm') {
      for (let j = 0; j < cols; j++) scratch[j] = kind.base * (1 + NORM_SPREAD * gaussian(rng));
      for (const { channel, scale } of outliers) scratch[channel] = kind.base * scale * (1 + 0.05 * gaussian(rng));
    } else if (kind.kind === 'bias') {
      for (let j = 0; j < cols; j++) scratch[j] = kind.std * gaussian(rng);
    } else {
      let s = kind.std * Math.exp(ROW_LOG_STD * gaussian(rng) - (ROW_LOG_STD * ROW_LOG_STD) / 2);
      if (kind.kind === 'table' && r >= kind.paddedFrom) s *= PADDED_ROW_SCALE;
      for (let j = 0; j < cols; j += 2) {
        const u = rng.nextU32();
        scratch[j] = s * table[u & 0xffff]!;
        scratch[j + 1] = s * table[u >>> 16]!; // the extra slot absorbs an odd row length
      }
    }
    const base = r * cols;
    for (let j = 0; j < cols; j++) {
      const x = bits[j]!;
      out[base + j] = ((x + 0x7fff + ((x >>> 16) & 1)) >>> 16) & 0xffff; // finite values only: no NaN case
    }
  }
}

// ---- the writer -------------------------------------------------------------------------------------

function resolveConfig(shape: SynthShapeName | ModelConfig, layers: number | undefined): { config: ModelConfig; fullDepth: number; what: string } {
  if (typeof shape === 'string' && !isSynthShapeName(shape)) {
    throw new SynthError(String(shape), `unknown shape; known: ${Object.keys(SYNTH_SHAPES).join(', ')}`);
  }
  const base: ModelConfig = typeof shape === 'string' ? { ...SYNTH_SHAPES[shape] } : { ...shape };
  const what = typeof shape === 'string' ? shape : 'custom shape';
  const nLayers = layers ?? base.nLayers;
  if (!Number.isInteger(nLayers) || nLayers < 1) throw new SynthError(what, `layers must be a positive integer, got ${nLayers}`);
  // parseHfConfig(toHfConfigJson(...)) applies the loader's own checks (heads divide, even head_dim, …).
  const config = parseHfConfig(`${what} (synth)`, toHfConfigJson({ ...base, nLayers }, 'bfloat16'));
  return { config, fullDepth: base.nLayers, what };
}

/** The config a synthetic model of `shape` with `layers` layers has (before the tokenizer's BOS/EOS). */
export function synthConfig(shape: SynthShapeName | ModelConfig, layers?: number): ModelConfig {
  return resolveConfig(shape, layers).config;
}

/** config.json as written: toHfConfigJson in bf16, plus Qwen2's sliding-window fields (disabled). */
export function synthHfConfigJson(config: ModelConfig): Record<string, unknown> {
  return { ...toHfConfigJson(config, 'bfloat16'), ...(config.arch === 'qwen2' ? { sliding_window: config.maxSeqLen, max_window_layers: config.nLayers } : {}) };
}

/** Shards: consecutive tensors, a new shard whenever the next tensor would pass `limit`. */
export function planShards<T extends { bytes: number }>(tensors: T[], limit: number): T[][] {
  const shards: T[][] = [];
  let current: T[] = [];
  let size = 0;
  for (const t of tensors) {
    if (current.length > 0 && size + t.bytes > limit) {
      shards.push(current);
      current = [];
      size = 0;
    }
    current.push(t);
    size += t.bytes;
  }
  if (current.length > 0) shards.push(current);
  return shards;
}

/** HF tensor order: embedding, then layer by layer, then the final norm and the classifier. */
function orderedTensors(config: ModelConfig): Array<{ name: string; shape: number[]; bytes: number }> {
  const all = requiredTensorShapes(config).map((t) => ({ ...t, bytes: t.shape.reduce((a, b) => a * b, 1) * 2 }));
  const rank = (n: string) => (n === 'model.embed_tokens.weight' ? -1 : n === 'model.norm.weight' ? 1e9 : n === 'lm_head.weight' ? 1e9 + 1 : Number(/^model\.layers\.(\d+)\./.exec(n)![1]));
  return all.sort((a, b) => rank(a.name) - rank(b.name)); // stable: within a layer, requiredTensorShapes' order
}

/**
 * Writes a synthetic bf16 Hugging Face model directory at `out` (atomically: a temporary sibling renamed
 * at the end). Loads with loadHfModel(out) when a tokenizer was copied in.
 */
export function writeSynthModel(out: string, opts: SynthOptions): SynthResult {
  const { config: shapeConfig, fullDepth, what } = resolveConfig(opts.shape, opts.layers);
  if (!Number.isSafeInteger(opts.seed)) throw new SynthError(what, `seed must be an integer, got ${opts.seed}`);
  const shardBytes = opts.shardBytes ?? DEFAULT_SHARD_BYTES;
  if (!(shardBytes > 0)) throw new SynthError(what, `shard size must be positive, got ${shardBytes}`);

  let config = shapeConfig;
  let tokenizerFiles: Array<{ name: string; bytes: Uint8Array }> = [];
  let paddedVocabFrom = config.vocabSize;
  if (opts.tokenizerDir !== null) {
    const tokJson = join(opts.tokenizerDir, 'tokenizer.json');
    if (!existsSync(tokJson)) throw new NotFoundError(tokJson, 'missing: synth copies tokenizer.json (and tokenizer_config.json) from this directory');
    const tok = loadHfTokenizer(opts.tokenizerDir);
    if (tok.vocabSize > config.vocabSize) {
      throw new FormatError(tokJson, `has ${tok.vocabSize} tokens but the ${what} model only ${config.vocabSize}: not a tokenizer for this shape`);
    }
    // The tokenizer's BOS/EOS must be tokens it can produce and decode.
    config = { ...config, bosId: tok.bosId, eosId: tok.eosId };
    paddedVocabFrom = tok.vocabSize;
    tokenizerFiles = ['tokenizer.json', 'tokenizer_config.json']
      .filter((f) => existsSync(join(opts.tokenizerDir!, f)))
      .map((f) => ({ name: f, bytes: readFileSync(join(opts.tokenizerDir!, f)) }));
  }

  const outliers = synthOutliers(config.dim, opts.outlierChannels ?? defaultOutlierCount(config.dim), opts.seed);
  const tensors = orderedTensors(config);
  const totalBytes = tensors.reduce((n, t) => n + t.bytes, 0);
  const shards = planShards(tensors, shardBytes);
  const shardName = (i: number) => (shards.length === 1 ? 'model.safetensors' : `model-${String(i + 1).padStart(5, '0')}-of-${String(shards.length).padStart(5, '0')}.safetensors`);

  // One reusable buffer for every tensor: writeSafetensors writes each producer's bytes before it asks
  // for the next tensor, so handing out views of the same memory is safe and bounds the peak.
  const largest = Math.max(...tensors.map((t) => t.bytes));
  const buffer = new Uint8Array(largest);
  let doneBytes = 0;
  const produce = (t: { name: string; shape: number[]; bytes: number }) => (): Uint8Array => {
    opts.onProgress?.({ tensor: t.name, doneBytes, totalBytes });
    const bytes = buffer.subarray(0, t.bytes);
    const halves = new Uint16Array(bytes.buffer, 0, t.bytes / 2);
    fillTensor(halves, t.shape, tensorKind(t.name, fullDepth, paddedVocabFrom), new Xoshiro128(opts.seed, fnv1a(t.name)), outliers);
    doneBytes += t.bytes;
    return bytes;
  };

  const weightMap: Record<string, string> = {};
  writeDirAtomic(out, (tmp) => {
    writeBytesAtomic(join(tmp, 'config.json'), JSON.stringify(synthHfConfigJson(config), null, 2) + '\n');
    shards.forEach((shard, i) => {
      const writes: SafetensorsWriteTensor[] = shard.map((t) => ({ name: t.name, dtype: 'bf16', shape: t.shape, data: produce(t) }));
      writeSafetensors(join(tmp, shardName(i)), writes, { format: 'pt', synth: `aser synth ${what} seed=${opts.seed}` });
      for (const t of shard) weightMap[t.name] = shardName(i);
    });
    if (shards.length > 1) {
      writeBytesAtomic(join(tmp, 'model.safetensors.index.json'), JSON.stringify({ metadata: { total_size: totalBytes }, weight_map: weightMap }, null, 2) + '\n');
    }
    for (const f of tokenizerFiles) writeBytesAtomic(join(tmp, f.name), f.bytes);
  }, { overwrite: opts.overwrite });
  opts.onProgress?.({ tensor: '', doneBytes, totalBytes });

  return { dir: out, config, shards: shards.map((_, i) => shardName(i)), tensorCount: tensors.length, totalBytes, outliers, paddedVocabFrom };
}
