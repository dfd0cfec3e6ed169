// `aser ppl` as a library call: one model (or artifact) on one dataset, through node/session.ts.
import { loadDatasetText } from '../loaders/datasets.js';
import { openSession } from '../node/session.js';
import { UsageError } from '../core/errors.js';
import { perplexity, type PerplexityProgress, type PerplexityResult, type PplProtocol } from './ppl.js';

export interface PplRunOptions {
  model: string;
  dtype: 'f32' | 'f16';
  tokenizer?: string;
  artifact?: string;
  /** With `artifact`: the f32 fake-quant reference path instead of the fused kernels. */
  simulate: boolean;
  dataset: string;
  ctx: number;
  protocol: PplProtocol;
  /** Default: the dataset's own limit, if it has one. */
  maxWindows?: number;
  checkNumerics: boolean;
  /** Per scored window, with the dataset's name. */
  onProgress?: (dataset: string, p: PerplexityProgress) => void;
}

export interface PplRunSummary {
  model: string; dataset: string; protocol: PplProtocol; ctx: number;
  tokens: number; nll: number; nllStdErr: number; ppl: number; pplStdErr: number; seconds: number;
  artifact?: string; path?: 'simulate' | 'fused'; wBits?: number; aBits?: number; method?: string;
}

/** What the artifact is, for the summary line: method and bit widths from its manifest. */
function artifactLabel(session: { artifact?: { manifest: { method: string; wBits: number; aBits: number } } }): { method?: string; wBits?: number; aBits?: number } {
  const m = session.artifact?.manifest;
  return m ? { method: m.method, wBits: m.wBits, aBits: m.aBits } : {};
}

export async function runPpl(o: PplRunOptions): Promise<{ summary: PplRunSummary; result: PerplexityResult }> {
  if (!Number.isInteger(o.ctx) || o.ctx < 2) throw new UsageError(`--ctx ${o.ctx} must be an integer ≥ 2`);
  const data = loadDatasetText(o.dataset, { protocol: o.protocol });
  const session = await openSession({ model: o.model, dtype: o.dtype, tokenizer: o.tokenizer, artifact: o.artifact, simulate: o.simulate, maxSeqLen: o.ctx, checkNumerics: o.checkNumerics });
  try {
    const { maxSeqLen } = session.source.config;
    if (o.ctx > maxSeqLen) throw new UsageError(`--ctx ${o.ctx} is longer than the model's context of ${maxSeqLen} tokens`, `use --ctx ${maxSeqLen} or less`);
    const result = await perplexity(session.executor, session.tokenizer, data.text, {
      ctx: o.ctx,
      protocol: o.protocol,
      maxWindows: o.maxWindows ?? data.maxWindows,
      onProgress: (p) => o.onProgress?.(data.name, p),
    });
    const summary: PplRunSummary = {
      model: session.source.id, dataset: data.name, protocol: result.protocol, ctx: result.ctx,
      tokens: result.tokens, nll: result.nll, nllStdErr: result.nllStdErr, ppl: result.ppl, pplStdErr: result.pplStdErr, seconds: result.seconds,
      ...(o.artifact ? { artifact: o.artifact, path: o.simulate ? 'simulate' : 'fused', ...artifactLabel(session) } : {}),
    };
    return { summary, result };
  } finally {
    session.close();
  }
}
