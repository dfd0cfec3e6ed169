// `aser eval zeroshot` as a library call: one session, the tasks in turn, each task's metrics cached
// by (model hash, artifact hash, task, data file hash, limit, protocol), so an interrupted run resumes
// at the first unfinished task.
import { createHash } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { openSession, type Session } from '../node/session.js';
import { modelHash } from '../node/artifact-cache.js';
import { artifactDigest, openResultCache, type ResultCache } from '../node/cache.js';
import { dataDir } from '../loaders/datasets.js';
import {
  choiceMetrics, lambadaMetrics, scoreChoices, scoreLambada, type ChoiceScores, type TaskMetrics,
} from './zeroshot.js';
import { loadTask, ZEROSHOT_TASKS } from './zeroshot-data.js';

/** Bumped when scoring changes, so cached results of an older protocol are not reused. */
export const ZEROSHOT_PROTOCOL = 'lm-eval-loglik-v1';

export interface ZeroshotRunOptions {
  model: string;
  artifact?: string;
  tasks: string[];
  /** First N documents of each task. */
  limit?: number;
  /** KV cache / context length (default: the model's, at most 2048). */
  maxSeqLen?: number;
  cache?: ResultCache;
  onDoc?: (task: string, done: number, total: number) => void;
}

export interface ZeroshotTaskResult extends TaskMetrics {
  fixture: boolean;
}

async function runTask(session: Session, task: string, limit: number | undefined, onDoc?: ZeroshotRunOptions['onDoc']): Promise<TaskMetrics> {
  const t0 = performance.now();
  const data = loadTask(task, { limit });
  const { executor: ex, tokenizer: tok } = session;
  if (data.kind === 'lambada') {
    const scores = [];
    for (const [i, d] of data.docs.entries()) {
      scores.push(await scoreLambada(ex, tok, d));
      onDoc?.(task, i + 1, data.docs.length);
    }
    return lambadaMetrics(task, scores, (performance.now() - t0) / 1000);
  }
  const scores: ChoiceScores[] = [];
  for (const [i, d] of data.docs.entries()) {
    scores.push(await scoreChoices(ex, tok, d));
    onDoc?.(task, i + 1, data.docs.length);
  }
  return choiceMetrics(task, scores, (performance.now() - t0) / 1000);
}

export async function runZeroshot(o: ZeroshotRunOptions): Promise<ZeroshotTaskResult[]> {
  const cache = o.cache ?? openResultCache();
  for (const t of o.tasks) if (!ZEROSHOT_TASKS[t]) throw new RangeError(`unknown zero-shot task ${t} (${Object.keys(ZEROSHOT_TASKS).join(', ')})`);
  const base = { protocol: ZEROSHOT_PROTOCOL, modelHash: modelHash(o.model), artifactHash: o.artifact ? artifactDigest(o.artifact) : null, limit: o.limit ?? null, maxSeqLen: o.maxSeqLen ?? null };
  const settings = (t: string) => ({ ...base, task: t, dataSha: createHash('sha256').update(readFileSync(join(dataDir(), ZEROSHOT_TASKS[t]!.file))).digest('hex') });
  let session: Session | undefined;
  const out: ZeroshotTaskResult[] = [];
  try {
    for (const task of o.tasks) {
      const metrics = await cache.getOrCompute('zeroshot', settings(task), async () => {
        session ??= await openSession({ model: o.model, artifact: o.artifact, maxSeqLen: o.maxSeqLen });
        return runTask(session, task, o.limit, o.onDoc);
      });
      out.push({ ...metrics, fixture: !!ZEROSHOT_TASKS[task]!.fixture });
    }
  } finally {
    session?.close();
  }
  return out;
}

const pct = (x: number) => (100 * x).toFixed(1);

/** The results table, with a verdict column: above chance (acc > chance + 2·stderr) or not. */
export function formatZeroshotMarkdown(rows: ZeroshotTaskResult[]): string {
  const lines = ['| task | n | acc % | acc_norm % | chance % | ppl | vs chance |', '|---|---|---|---|---|---|---|'];
  for (const r of rows) {
    const below = r.acc < r.chance - 2 * r.accStderr;
    const verdict = r.aboveChance ? 'above chance' : below ? 'below chance: meaningless at this size' : 'at chance: meaningless at this size';
    lines.push(`| ${r.task}${r.fixture ? ' (4-item fixture)' : ''} | ${r.n} | ${pct(r.acc)} ± ${pct(r.accStderr)} | ${r.accNorm === undefined ? '—' : `${pct(r.accNorm)} ± ${pct(r.accNormStderr!)}`} | ${pct(r.chance)} | ${r.ppl === undefined ? '—' : r.ppl.toFixed(1)} | ${r.fixture ? `${verdict} (fixture: too few items to tell)` : verdict} |`);
  }
  return lines.join('\n');
}
