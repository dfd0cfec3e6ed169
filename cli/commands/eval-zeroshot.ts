// `aser eval zeroshot`: lm-eval-style zero-shot multiple choice (acc, acc_norm, stderr, chance) on the
// tasks in shared/data/zeroshot/.
import type { CommandModule } from 'yargs';
import { openResultCache } from '../../node/cache.js';
import { formatZeroshotMarkdown, runZeroshot } from '../../eval/zeroshot-run.js';
import { STANDARD_TASKS, ZEROSHOT_TASKS } from '../../eval/zeroshot-data.js';
import { progressBar, type Progress } from '../../node/progress.js';
import { UsageError } from '../../core/errors.js';
import { cacheOption, jsonOption, modelOption } from '../options.js';

interface ZeroshotArgs { model: string; artifact?: string; tasks: string; limit?: number; json: boolean; cache: boolean }

/** One progress bar per task. */
export function taskProgress(): (task: string, done: number, total: number) => void {
  let bar: Progress | undefined;
  let current = '';
  return (task, done, total) => {
    if (task !== current) {
      bar = progressBar(`zeroshot ${task}`, total, 'docs');
      current = task;
    }
    if (done >= total) bar!.finish();
    else bar!.update(done);
  };
}

export function parseTasks(list: string): string[] {
  const tasks = list === 'all' ? Object.keys(ZEROSHOT_TASKS) : list === 'standard' ? STANDARD_TASKS : list.split(',').map((t) => t.trim()).filter(Boolean);
  const unknown = tasks.filter((t) => !ZEROSHOT_TASKS[t]);
  if (unknown.length || tasks.length === 0) throw new UsageError(`unknown task(s) ${unknown.join(', ') || '(none)'}`, `tasks: ${Object.keys(ZEROSHOT_TASKS).join(', ')}, or standard / all`);
  return tasks;
}

export const zeroshotCommand: CommandModule<object, ZeroshotArgs> = {
  command: 'zeroshot',
  describe: 'Zero-shot multiple choice by log-likelihood (lm-eval protocol): acc, acc_norm, stderr, chance level',
  builder: (y) =>
    y
      .options(modelOption)
      .option('artifact', { type: 'string', describe: 'Quantized artifact directory (runs the fused W4A8 kernels)' })
      .option('tasks', { type: 'string', default: 'standard', describe: `Comma list of ${Object.keys(ZEROSHOT_TASKS).join(', ')}; 'standard' = ${STANDARD_TASKS.join(',')}; 'all'` })
      .option('limit', { type: 'number', describe: 'Score the first N documents of each task' })
      .options(jsonOption('Print the results as JSON on the last line of stdout'))
      .options(cacheOption('Reuse and store per-task results in .cache/eval (--no-cache recomputes)'))
      .example('$0 eval zeroshot --tasks arc_easy,piqa --limit 200', 'two tasks, 200 documents each') as never,
  handler: async (args) => {
    if (args.limit !== undefined && (!Number.isInteger(args.limit) || args.limit < 1)) throw new UsageError(`--limit ${args.limit} must be a positive integer`);
    const tasks = parseTasks(args.tasks);
    const rows = await runZeroshot({ model: args.model, artifact: args.artifact, tasks, limit: args.limit, cache: openResultCache({ enabled: args.cache }), onDoc: taskProgress() });
    if (args.json) console.log(JSON.stringify({ model: args.model, artifact: args.artifact ?? null, limit: args.limit ?? null, tasks: rows }));
    else {
      console.log(`${args.model}${args.artifact ? ` + ${args.artifact}` : ''}: zero-shot, lm-eval log-likelihood protocol${args.limit ? `, first ${args.limit} documents per task` : ''}`);
      console.log(formatZeroshotMarkdown(rows));
      console.log('above chance = acc > chance + 2·stderr; tasks at or below chance measure nothing at this model size.');
    }
  },
};
