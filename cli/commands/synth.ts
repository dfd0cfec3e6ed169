// `aser synth`: writes a synthetic bf16 Hugging Face model with the exact shapes of LLaMA-3-8B or
// Qwen1.5-7B (only the layer count reduced), deterministic from a seed. See loaders/synth.ts.
import type { CommandModule } from 'yargs';
import { UsageError } from '../../core/errors.js';
import { parseByteSize } from '../../core/byte-size.js';
import { progressBar } from '../../node/progress.js';
import {
  DEFAULT_SHARD_BYTES, SYNTH_SHAPES, defaultSynthTokenizerDir, writeSynthModel, type SynthShapeName,
} from '../../loaders/synth.js';
import { jsonOption, overwriteOption } from '../options.js';

interface SynthArgs {
  shape: string;
  layers?: number;
  seed: number;
  out: string;
  'shard-size'?: string;
  tokenizer?: string;
  outliers?: number;
  overwrite: boolean;
  json: boolean;
}

export const synthCommand: CommandModule<object, SynthArgs> = {
  command: 'synth',
  describe: 'Write a synthetic bf16 model with real 8B shapes (LLaMA-3-8B, Qwen1.5-7B), fewer layers, seeded weights',
  builder: (y) =>
    y
      .option('shape', { type: 'string', choices: Object.keys(SYNTH_SHAPES), demandOption: true, describe: 'Real model whose dimensions to use' })
      .option('layers', { type: 'number', describe: 'num_hidden_layers (default: the real depth, 32)' })
      .option('seed', { type: 'number', default: 0, describe: 'Weights are a function of the seed and the tensor name' })
      .option('out', { type: 'string', demandOption: true, describe: 'Output model directory (written atomically)' })
      .option('shard-size', { type: 'string', describe: `Largest shard, e.g. 2GB or 500MB (default ${DEFAULT_SHARD_BYTES / 1e9}GB)` })
      .option('tokenizer', { type: 'string', describe: 'Directory with tokenizer.json to copy in, or "none" (default: the shared llama3 tokenizer)' })
      .option('outliers', { type: 'number', describe: 'Outlier channels in the norm weights (default ≈ 6 per 4096)' })
      .options(overwriteOption())
      .options(jsonOption('Print the result as one JSON object'))
      .example('$0 synth --shape llama3-8b --layers 2 --out /tmp/llama3-8b-l2', 'a 2-layer LLaMA-3-8B-shaped model (~3 GB)')
      .example('$0 synth --shape qwen1.5-7b --layers 4 --seed 7 --out /tmp/qwen-l4 --shard-size 1GB', 'Qwen1.5-7B shapes, 1 GB shards') as never,
  handler: async (args) => {
    if (args.layers !== undefined && !(Number.isInteger(args.layers) && args.layers >= 1)) throw new UsageError(`--layers must be a positive integer, got ${args.layers}`);
    if (!Number.isSafeInteger(args.seed)) throw new UsageError(`--seed must be an integer, got ${args.seed}`);
    let tokenizerDir: string | null;
    if (args.tokenizer === 'none') tokenizerDir = null;
    else if (args.tokenizer) tokenizerDir = args.tokenizer;
    else {
      const found = defaultSynthTokenizerDir();
      if (!found) throw new UsageError('no default tokenizer: shared/tokenizers/llama3 is not next to this checkout', 'pass --tokenizer DIR (with tokenizer.json) or --tokenizer none');
      tokenizerDir = found;
    }
    const shape = args.shape as SynthShapeName;
    const started = performance.now();
    let bar: ReturnType<typeof progressBar> | undefined;
    const result = writeSynthModel(args.out, {
      shape,
      layers: args.layers,
      seed: args.seed,
      shardBytes: args['shard-size'] ? parseByteSize(args['shard-size']) : undefined,
      tokenizerDir,
      outlierChannels: args.outliers,
      overwrite: args.overwrite,
      onProgress: (p) => {
        bar ??= progressBar(`synth ${shape}`, Math.ceil(p.totalBytes / 2 ** 20), 'MiB');
        if (p.tensor) bar.update(Math.round(p.doneBytes / 2 ** 20), p.tensor);
      },
    });
    bar?.finish();
    const seconds = (performance.now() - started) / 1000;
    const peakRssBytes = process.resourceUsage().maxRSS * 1024;
    if (args.json) {
      console.log(JSON.stringify({ ...result, seconds, peakRssBytes }));
      return;
    }
    const c = result.config;
    console.log(`wrote     ${result.dir}`);
    console.log(`shape     ${shape}: dim ${c.dim}, hidden ${c.hiddenDim}, ${c.nLayers} layers, ${c.nHeads} heads / ${c.nKvHeads} kv, vocab ${c.vocabSize}`);
    console.log(`weights   ${result.tensorCount} bf16 tensors, ${(result.totalBytes / 1e9).toFixed(2)} GB in ${result.shards.length} shard(s)`);
    console.log(`outliers  channels ${result.outliers.map((o) => `${o.channel} (×${o.scale.toFixed(0)})`).join(', ')}`);
    if (tokenizerDir === null) console.log('tokenizer none written: add tokenizer.json (+ tokenizer_config.json) or pass --tokenizer when loading');
    else if (result.paddedVocabFrom < c.vocabSize) console.log(`tokenizer ${tokenizerDir}: ids ${result.paddedVocabFrom}..${c.vocabSize - 1} are padding (near-zero classifier rows)`);
    else console.log(`tokenizer ${tokenizerDir}`);
    console.log(`time      ${seconds.toFixed(1)} s, peak RSS ${(peakRssBytes / 2 ** 30).toFixed(2)} GiB`);
  },
};
