// Zero-shot task files (shared/data/zeroshot/, see its MANIFEST.md) → documents for eval/zeroshot.ts.
// Three JSONL shapes exist there:
//   MC      {query, choices, gold}                 ARC-e/-c, PIQA, BoolQ, HellaSwag, MMLU, COPA, OBQA, SIQA, CSQA
//   schema  {context_options, continuation, gold}  WinoGrande, WSC273 (partial evaluation)
//   LM      {context, continuation}                LAMBADA
// An MC query gets lm-eval's "\nAnswer:" prompt where the file's query lacks it (queries that start
// with "Question:"/"Passage:"); every continuation is " " + choice. HellaSwag and MMLU exist only as the
// 4-item test fixtures (the full files were not obtainable); they are marked as such.
import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { FormatError, NotFoundError } from '../loaders/errors.js';
import { dataDir } from '../loaders/datasets.js';
import type { ChoiceDoc, LambadaDoc } from './zeroshot.js';

export type TaskKind = 'mc' | 'schema' | 'lambada';

export interface TaskInfo {
  name: string;
  file: string;
  kind: TaskKind;
  /** Only a small test fixture is available (not a real evaluation set). */
  fixture?: boolean;
}

export const ZEROSHOT_TASKS: Record<string, TaskInfo> = {
  arc_easy: { name: 'arc_easy', file: 'zeroshot/arc_easy.jsonl', kind: 'mc' },
  arc_challenge: { name: 'arc_challenge', file: 'zeroshot/arc_challenge.jsonl', kind: 'mc' },
  piqa: { name: 'piqa', file: 'zeroshot/piqa.jsonl', kind: 'mc' },
  hellaswag: { name: 'hellaswag', file: 'zeroshot/small_test_fixtures/hellaswag_small.jsonl', kind: 'mc', fixture: true },
  winogrande: { name: 'winogrande', file: 'zeroshot/winogrande.jsonl', kind: 'schema' },
  boolq: { name: 'boolq', file: 'zeroshot/boolq.jsonl', kind: 'mc' },
  lambada: { name: 'lambada', file: 'zeroshot/lambada_openai.jsonl', kind: 'lambada' },
  mmlu: { name: 'mmlu', file: 'zeroshot/small_test_fixtures/mmlu_small.jsonl', kind: 'mc', fixture: true },
  copa: { name: 'copa', file: 'zeroshot/copa.jsonl', kind: 'mc' },
  openbookqa: { name: 'openbookqa', file: 'zeroshot/openbook_qa.jsonl', kind: 'mc' },
  siqa: { name: 'siqa', file: 'zeroshot/siqa.jsonl', kind: 'mc' },
  commonsense_qa: { name: 'commonsense_qa', file: 'zeroshot/commonsense_qa.jsonl', kind: 'mc' },
  wsc273: { name: 'wsc273', file: 'zeroshot/winograd_wsc.jsonl', kind: 'schema' },
};

/** The standard set (lm-eval's usual commonsense suite + LAMBADA + MMLU). */
export const STANDARD_TASKS = ['arc_easy', 'arc_challenge', 'piqa', 'hellaswag', 'winogrande', 'boolq', 'lambada', 'mmlu'];

/** An MC query as lm-eval prompts it: the context (with "Answer:" where the task's prompt has it); continuations are " " + choice. */
export function mcContext(query: string): string {
  const q = query.replace(/ +$/, '');
  if (/Answer:$/.test(q)) return q;
  if (/^(Question|Passage):/.test(q)) return q.endsWith('\n') ? `${q}Answer:` : `${q}\nAnswer:`;
  return q;
}

export type TaskDocs = { kind: 'mc' | 'schema'; docs: ChoiceDoc[] } | { kind: 'lambada'; docs: LambadaDoc[] };

/** The first `limit` documents of a task (all without limit). `file` overrides the task's data file. */
export function loadTask(name: string, opts: { limit?: number; file?: string } = {}): TaskDocs {
  const info = ZEROSHOT_TASKS[name];
  if (!info) throw new NotFoundError(name, `unknown zero-shot task (${Object.keys(ZEROSHOT_TASKS).join(', ')})`);
  const file = opts.file ?? join(dataDir(), info.file);
  if (!existsSync(file)) throw new NotFoundError(file, `the ${name} data file is missing; set ASER_DATA_DIR to the data directory`);
  let lines = readFileSync(file, 'utf8').split('\n').filter((l) => l.trim() !== '');
  if (opts.limit !== undefined) lines = lines.slice(0, opts.limit);
  const rows = lines.map((l, i) => {
    try {
      return JSON.parse(l) as Record<string, unknown>;
    } catch {
      throw new FormatError(file, `line ${i + 1} is not JSON`);
    }
  });
  const need = (ok: boolean, i: number, what: string) => {
    if (!ok) throw new FormatError(file, `line ${i + 1}: ${what}`);
  };
  if (info.kind === 'lambada') {
    return {
      kind: 'lambada',
      docs: rows.map((r, i) => {
        need(typeof r.context === 'string' && typeof r.continuation === 'string', i, 'needs "context" and "continuation" strings');
        return { context: r.context as string, continuation: ` ${(r.continuation as string).trim()}` };
      }),
    };
  }
  if (info.kind === 'schema') {
    return {
      kind: 'schema',
      docs: rows.map((r, i) => {
        const opts = r.context_options as unknown[];
        need(Array.isArray(opts) && opts.length >= 2 && opts.every((o) => typeof o === 'string') && typeof r.continuation === 'string' && Number.isInteger(r.gold), i, 'needs "context_options", "continuation" and "gold"');
        const cont = ` ${(r.continuation as string).trim()}`;
        return { contexts: opts as string[], continuations: opts.map(() => cont), gold: r.gold as number };
      }),
    };
  }
  return {
    kind: 'mc',
    docs: rows.map((r, i) => {
      const choices = r.choices as unknown[];
      need(typeof r.query === 'string' && Array.isArray(choices) && choices.length >= 2 && choices.every((c) => typeof c === 'string') && Number.isInteger(r.gold) && (r.gold as number) < choices.length, i, 'needs "query", "choices" and a valid "gold"');
      const context = mcContext(r.query as string);
      return { contexts: choices.map(() => context), continuations: (choices as string[]).map((c) => ` ${c}`), gold: r.gold as number };
    }),
  };
}
