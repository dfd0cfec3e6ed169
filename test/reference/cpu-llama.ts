// An independent float64 LLaMA forward in plain loops, written from the model's maths (llama2.c run.c
// and Hugging Face modeling_llama), used as the oracle for the GPU executor. One token at a time with
// a KV cache; slow but exact enough that any GPU difference is the GPU's.
import type { LinearInputKind, ModelConfig, ModelSource } from '../../core/model.js';
import { readTensorF32 } from '../../core/dtype.js';

interface LayerWeights {
  attnNorm: Float64Array;
  mlpNorm: Float64Array;
  wq: Float64Array; wk: Float64Array; wv: Float64Array; wo: Float64Array;
  bq?: Float64Array; bk?: Float64Array; bv?: Float64Array;
  wGate: Float64Array; wUp: Float64Array; wDown: Float64Array;
}

/** y = W x for W [out, in] row-major (+ b). */
function matvec(w: Float64Array, x: Float64Array, out: number, b?: Float64Array): Float64Array {
  const n = x.length;
  const y = new Float64Array(out);
  for (let o = 0; o < out; o++) {
    let s = b ? b[o]! : 0;
    for (let i = 0; i < n; i++) s += w[o * n + i]! * x[i]!;
    y[o] = s;
  }
  return y;
}

function rmsnorm(x: Float64Array, w: Float64Array, eps: number): Float64Array {
  let ss = 0;
  for (const v of x) ss += v * v;
  const scale = 1 / Math.sqrt(ss / x.length + eps);
  return x.map((v, i) => v * scale * w[i]!);
}

/** HF `_compute_llama3_parameters` / plain RoPE inverse frequencies, one per rotated pair. */
function inverseFrequencies(c: ModelConfig): Float64Array {
  const half = c.headDim / 2;
  const base = Float64Array.from({ length: half }, (_, i) => 1 / Math.pow(c.ropeTheta, (2 * i) / c.headDim));
  const s = c.ropeScaling;
  if (!s) return base;
  const lowFreqWavelen = s.originalMaxPositionEmbeddings / s.lowFreqFactor;
  const highFreqWavelen = s.originalMaxPositionEmbeddings / s.highFreqFactor;
  return base.map((f) => {
    const wavelen = (2 * Math.PI) / f;
    const scaled = wavelen > lowFreqWavelen ? f / s.factor : f;
    const isMedium = !(wavelen < highFreqWavelen) && !(wavelen > lowFreqWavelen);
    if (!isMedium) return scaled;
    const smooth = (s.originalMaxPositionEmbeddings / wavelen - s.lowFreqFactor) / (s.highFreqFactor - s.lowFreqFactor);
    return ((1 - smooth) * scaled) / s.factor + smooth * scaled;
  });
}

export class CpuLlama {
  readonly config: ModelConfig;
  private readonly embed: Float64Array;
  private readonly head: Float64Array;
  private readonly finalNorm: Float64Array;
  private readonly layers: LayerWeights[] = [];
  private readonly invFreq: Float64Array;

  constructor(model: ModelSource) {
    const c = (this.config = model.config);
    const t = (name: string) => Float64Array.from(readTensorF32(model.tensor(name)));
    const opt = (name: string) => (model.has(name) ? t(name) : undefined);
    this.embed = t('model.embed_tokens.weight');
    this.head = model.has('lm_head.weight') ? t('lm_head.weight') : this.embed;
    this.finalNorm = t('model.norm.weight');
    for (let l = 0; l < c.nLayers; l++) {
      const p = `model.layers.${l}.`;
      this.layers.push({
        attnNorm: t(p + 'input_layernorm.weight'), mlpNorm: t(p + 'post_attention_layernorm.weight'),
        wq: t(p + 'self_attn.q_proj.weight'), wk: t(p + 'self_attn.k_proj.weight'), wv: t(p + 'self_attn.v_proj.weight'), wo: t(p + 'self_attn.o_proj.weight'),
        bq: opt(p + 'self_attn.q_proj.bias'), bk: opt(p + 'self_attn.k_proj.bias'), bv: opt(p + 'self_attn.v_proj.bias'),
        wGate: t(p + 'mlp.gate_proj.weight'), wUp: t(p + 'mlp.up_proj.weight'), wDown: t(p + 'mlp.down_proj.weight'),
      });
    }
    this.invFreq = inverseFrequencies(c);
  }

  /** Rotates every head of `v` for position `pos` in place, in the checkpoint's RoPE convention. */
  private rope(v: Float64Array, pos: number): void {
    const hd = this.config.headDim;
    const half = hd / 2;
    if (this.config.ropeStyle === 'interleaved') {
      // llama2.c run.c: adjacent pairs (i, i+1) of each head, frequency index (i mod hd) / 2.
      for (let i = 0; i < v.length; i += 2) {
        const val = pos * this.invFreq[(i % hd) / 2]!;
        const fcr = Math.cos(val), fci = Math.sin(val);
        const v0 = v[i]!, v1 = v[i + 1]!;
        v[i] = v0 * fcr - v1 * fci;
        v[i + 1] = v0 * fci + v1 * fcr;
      }
    } else {
      // HF apply_rotary_pos_emb: x·cos + rotate_half(x)·sin with cos/sin = cat(freqs, freqs).
      for (let h = 0; h < v.length / hd; h++) {
        const x = v.slice(h * hd, (h + 1) * hd);
        for (let d = 0; d < hd; d++) {
          const angle = pos * this.invFreq[d % half]!;
          const rotated = d < half ? -x[d + half]! : x[d - half]!;
          v[h * hd + d] = x[d]! * Math.cos(angle) + rotated * Math.sin(angle);
        }
      }
    }
  }

  /** Logits after each token of `tokens` (a fresh sequence from position 0). */
  logits(tokens: readonly number[]): Float64Array[] {
    const s = this.session();
    return tokens.map((tok) => s.step(tok));
  }

  /** −log softmax(logits_i)[targets[i]] for each position i. */
  nll(tokens: readonly number[], targets: readonly number[]): Float64Array {
    const rows = this.logits(tokens);
    return Float64Array.from(rows, (z, i) => {
      const mx = Math.max(...z);
      let sum = 0;
      for (const v of z) sum += Math.exp(v - mx);
      return mx + Math.log(sum) - z[targets[i]!]!;
    });
  }

  /** Greedy continuation: `steps` argmax tokens after `prompt`. */
  greedy(prompt: readonly number[], steps: number): number[] {
    const s = this.session();
    let z: Float64Array = new Float64Array(0);
    for (const tok of prompt) z = s.step(tok);
    const out: number[] = [];
    for (let i = 0; i < steps; i++) {
      let best = 0;
      for (let v = 1; v < z.length; v++) if (z[v]! > z[best]!) best = v;
      out.push(best);
      if (i + 1 < steps) z = s.step(best);
    }
    return out;
  }

  /**
   * A decoding session holding its own KV cache; `onLinearInput` sees the input of each layer's linears
   * (the same four kinds as the executor's calibration hook).
   */
  session(
    onLinearInput?: (layer: number, kind: LinearInputKind, x: Float64Array) => void,
    /** Sees the classifier's input (the final-normed hidden state) of each step. */
    onHeadInput?: (h: Float64Array) => void,
  ): { step(token: number): Float64Array } {
    const c = this.config;
    const hd = c.headDim;
    const group = c.nHeads / c.nKvHeads;
    const keys: Float64Array[][] = this.layers.map(() => []);
    const values: Float64Array[][] = this.layers.map(() => []);
    return {
      step: (token: number): Float64Array => {
        const pos = keys[0]!.length;
        let x = this.embed.slice(token * c.dim, (token + 1) * c.dim);
        this.layers.forEach((w, l) => {
          const xn = rmsnorm(x, w.attnNorm, c.normEps);
          onLinearInput?.(l, 'attn_in', xn);
          const q = matvec(w.wq, xn, c.nHeads * hd, w.bq);
          const k = matvec(w.wk, xn, c.nKvHeads * hd, w.bk);
          const v = matvec(w.wv, xn, c.nKvHeads * hd, w.bv);
          this.rope(q, pos);
          this.rope(k, pos);
          keys[l]!.push(k);
          values[l]!.push(v);
          const att = new Float64Array(c.nHeads * hd);
          for (let h = 0; h < c.nHeads; h++) {
            const g = Math.floor(h / group);
            const scores = keys[l]!.map((kp) => {
              let dot = 0;
              for (let d = 0; d < hd; d++) dot += q[h * hd + d]! * kp[g * hd + d]!;
              return dot / Math.sqrt(hd);
            });
            const mx = Math.max(...scores);
            const e = scores.map((sc) => Math.exp(sc - mx));
            const sum = e.reduce((a, b) => a + b, 0);
            values[l]!.forEach((vp, j) => {
              for (let d = 0; d < hd; d++) att[h * hd + d] += (e[j]! / sum) * vp[g * hd + d]!;
            });
          }
          onLinearInput?.(l, 'attn_out', att);
          const o = matvec(w.wo, att, c.dim);
          x = x.map((xi, i) => xi + o[i]!);
          const hn = rmsnorm(x, w.mlpNorm, c.normEps);
          onLinearInput?.(l, 'mlp_in', hn);
          const gate = matvec(w.wGate, hn, c.hiddenDim);
          const up = matvec(w.wUp, hn, c.hiddenDim);
          const act = gate.map((gv, i) => (gv / (1 + Math.exp(-gv))) * up[i]!);
          onLinearInput?.(l, 'mlp_act', act);
          const down = matvec(w.wDown, act, c.dim);
          x = x.map((xi, i) => xi + down[i]!);
        });
        const h = rmsnorm(x, this.finalNorm, c.normEps);
        onHeadInput?.(h);
        return matvec(this.head, h, c.vocabSize);
      },
    };
  }
}
