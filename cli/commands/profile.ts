// `aser profile`: per-kernel GPU time of prefill and decode, tokens/s, and with an artifact the side
// path's latency overhead beside its FLOPs overhead (eval/profile-run.ts).
import type { CommandModule } from 'yargs';
import { writeBytesAtomic } from '../../loaders/atomic.js';
import { formatProfileMarkdown, runProfile } from '../../eval/profile-run.js';
import { UsageError } from '../../core/errors.js';
import { jsonOption, modelOption } from '../options.js';

interface ProfileArgs { model: string; artifact?: string; prefill: number; decode: number; repeats: number; json: boolean; out?: string }

export const profileCommand: CommandModule<object, ProfileArgs> = {
  command: 'profile',
  describe: 'Latency profile: per-kernel GPU time (prefill, decode), tokens/s, side-path time vs FLOPs share',
  builder: (y) =>
    y
      .options(modelOption)
      .option('artifact', { type: 'string', describe: 'Quantized artifact: profiled with its side path on and off' })
      .option('prefill', { type: 'number', default: 128, describe: 'Prompt tokens' })
      .option('decode', { type: 'number', default: 32, describe: 'Decode steps after the prompt' })
      .option('repeats', { type: 'number', default: 5, describe: 'Repeats of the wall-clock and of the per-op timed runs (medians)' })
      .options(jsonOption('Print the profile as JSON'))
      .option('out', { type: 'string', describe: 'Also write the JSON to this file' })
      .example('$0 profile --artifact /tmp/s260k-aser', 'fp32 and the artifact, side path on vs off') as never,
  handler: async (args) => {
    for (const k of ['prefill', 'decode', 'repeats'] as const) {
      if (!Number.isInteger(args[k]) || args[k] < 1) throw new UsageError(`--${k} ${args[k]} must be a positive integer`);
    }
    let r;
    try {
      r = await runProfile({ ...args, onStep: (what) => process.stderr.write(`profile: ${what}\n`) });
    } catch (err) {
      if (err instanceof RangeError) throw new UsageError(err.message);
      throw err;
    }
    if (args.out) writeBytesAtomic(args.out, JSON.stringify(r, null, 2) + '\n');
    if (args.json) console.log(JSON.stringify(r));
    else {
      console.log(`${r.model}${r.artifact ? ` + ${r.artifact} (${r.method})` : ''}: prefill ${r.settings.prefill} tokens, decode ${r.settings.decode} steps`);
      console.log(formatProfileMarkdown(r));
    }
  },
};
