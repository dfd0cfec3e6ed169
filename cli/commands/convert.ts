import type { CommandModule } from 'yargs';
import { convertModelToHf } from '../../node/model-files.js';
import { overwriteOption } from '../options.js';

interface ConvertArgs { from: string; to: string; model: string; out: string; tokenizerDir?: string; overwrite: boolean }

export const convertCommand: CommandModule<object, ConvertArgs> = {
  command: 'convert',
  describe: 'Convert a llama2.c checkpoint into a Hugging Face directory (safetensors + config.json + tokenizer.json)',
  builder: (y) =>
    y
      .option('from', { type: 'string', choices: ['llama2c'], default: 'llama2c', describe: 'Source format' })
      .option('to', { type: 'string', choices: ['hf'], default: 'hf', describe: 'Target format' })
      .option('model', { type: 'string', default: 'stories260k', describe: 'Preset name or llama2.c .bin path' })
      .option('tokenizer-dir', { type: 'string', describe: 'Directory with tokenizer.json (default: next to the model)' })
      .option('out', { type: 'string', demandOption: true, describe: 'Output directory (written atomically)' })
      .options(overwriteOption())
      .example('$0 convert --from llama2c --to hf --model stories260k --out /tmp/stories260k-hf', 'then: aser ppl --model /tmp/stories260k-hf') as never,
  handler: (args) => {
    const result = convertModelToHf(args.model, args.out, { tokenizerDir: args.tokenizerDir, overwrite: args.overwrite });
    console.log(`wrote ${result.dir}: ${result.tensorCount} tensors, ${(result.weightBytes / 1e6).toFixed(2)} MB, rope ${result.config.ropeStyle}`);
  },
};
