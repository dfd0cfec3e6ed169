import type { CommandModule } from 'yargs';
import { generateText } from '../../node/generate.js';
import { SAMPLING_SITES, type SamplingSite } from '../../runtime/generate.js';
import { modelOptions, numericsOption, jsonOption } from '../options.js';
import { badValue, requireInteger } from '../argv-check.js';
import { UsageError } from '../../core/errors.js';

interface GenerateArgs {
  model: string;
  dtype: 'f32' | 'f16';
  tokenizer?: string;
  artifact?: string;
  prompt: string;
  maxTokens: number;
  temperature: number;
  topK: number;
  topP: number;
  seed?: number;
  'min-p': number;
  'repeat-penalty': number;
  'repeat-last-n': number;
  'presence-penalty': number;
  'frequency-penalty': number;
  stop?: string[];
  sampling: SamplingSite;
  json: boolean;
  'check-numerics': boolean;
}

export const generateCommand: CommandModule<object, GenerateArgs> = {
  command: 'generate',
  describe: 'Generate text from a prompt, streaming tokens as they come',
  builder: (y) =>
    y
      .options(modelOptions)
      .options(numericsOption)
      .option('prompt', { type: 'string', default: '', describe: 'Text to continue (BOS is prepended)' })
      .option('max-tokens', { type: 'number', default: 100, describe: 'Most tokens to generate' })
      .option('temperature', { type: 'number', default: 0, describe: '0 = greedy' })
      .option('top-k', { type: 'number', default: 0, describe: 'Keep the k most likely tokens (0 = off)' })
      .option('top-p', { type: 'number', default: 1, describe: 'Nucleus sampling threshold' })
      .option('seed', { type: 'number', describe: 'Sampler seed (printed when omitted)' })
      .option('min-p', { type: 'number', default: 0, describe: 'Drop tokens less likely than this × the most likely one (0 = off)' })
      .option('repeat-penalty', { type: 'number', default: 1, describe: 'llama.cpp repeat penalty over the last --repeat-last-n tokens (1 = off)' })
      .option('repeat-last-n', { type: 'number', default: 64, describe: 'Tokens the repeat penalty looks back over (prompt included)' })
      .option('presence-penalty', { type: 'number', default: 0, describe: 'OpenAI presence penalty, -2..2 (0 = off)' })
      .option('frequency-penalty', { type: 'number', default: 0, describe: 'OpenAI frequency penalty, -2..2 (0 = off)' })
      .option('stop', { type: 'string', array: true, describe: 'Stop where this text appears (repeatable; not printed)' })
      .option('sampling', { type: 'string', choices: [...SAMPLING_SITES], default: 'gpu', describe: 'Where tokens are chosen: gpu (reads back a token id per step) or host (reads back the logits); same tokens for a seed' })
      .options(jsonOption('Print one JSON object with the text and timings instead of streaming'))
      .example('$0 generate --prompt "Once upon a time" --max-tokens 100', 'greedy story from the default model')
      .example('$0 generate --prompt "Lily" --temperature 0.8 --top-p 0.9 --top-k 40 --seed 7', 'sampled, reproducible')
      .example('$0 generate --prompt "Lily" --temperature 0.8 --min-p 0.05 --repeat-penalty 1.1 --stop "The end"', 'min-p, repeat penalty and a stop string') as never,
  handler: async (args) => {
    // Checked before the model loads and the prompt is echoed.
    requireInteger('max-tokens', args.maxTokens, 0);
    if (!(Number.isFinite(args.temperature) && args.temperature >= 0)) throw badValue('temperature', args.temperature, 'must be ≥ 0 (0 = greedy)');
    requireInteger('top-k', args.topK, 0);
    if (!(args.topP > 0 && args.topP <= 1)) throw badValue('top-p', args.topP, 'must lie in (0, 1]', '1 keeps every token; 0.9 keeps the most likely tokens that hold 90 % of the probability');
    if (args.seed !== undefined && !(Number.isInteger(args.seed) && args.seed >= 0)) throw badValue('seed', args.seed, 'must be an integer ≥ 0');
        const ranges: Array<[string, number, (v: number) => boolean, string]> = [
      ['min-p', args['min-p'], (v) => v >= 0 && v <= 1, 'a number in [0, 1]'],
      ['repeat-penalty', args['repeat-penalty'], (v) => v > 0 && v <= 10, 'a number in (0, 10]'],
      ['repeat-last-n', args['repeat-last-n'], (v) => Number.isInteger(v) && v >= 0, 'an integer ≥ 0'],
      ['presence-penalty', args['presence-penalty'], (v) => v >= -2 && v <= 2, 'a number in [-2, 2]'],
      ['frequency-penalty', args['frequency-penalty'], (v) => v >= -2 && v <= 2, 'a number in [-2, 2]'],
    ];
    for (const [name, v, ok, what] of ranges) if (!ok(v)) throw badValue(name, v, `must be ${what}`);
    if (args.stop?.some((s) => s.length === 0)) throw new UsageError('--stop must not be empty');
    const { model, text, tail, result, loadSeconds, gpuMemory } = await generateText({
      model: args.model, dtype: args.dtype, tokenizer: args.tokenizer, artifact: args.artifact, checkNumerics: args['check-numerics'],
      prompt: args.prompt, maxTokens: args.maxTokens, temperature: args.temperature, topK: args.topK, topP: args.topP, seed: args.seed, sampling: args.sampling,
      minP: args['min-p'], repeatPenalty: args['repeat-penalty'], repeatLastN: args['repeat-last-n'], presencePenalty: args['presence-penalty'], frequencyPenalty: args['frequency-penalty'],
      stop: args.stop,
      onStart: () => {
        if (!args.json) process.stdout.write(args.prompt);
      },
      onText: (piece) => {
        if (!args.json && piece) process.stdout.write(piece);
      },
    });
    const decodeRate = result.tokens.length > 1 ? (result.tokens.length - 1) / result.decodeSeconds : 0;
    if (args.json) {
      console.log(JSON.stringify({
        model, prompt: args.prompt, text, tokens: result.tokens.length, stopReason: result.stopReason,
        seed: result.seed, prefillSeconds: result.prefillSeconds, decodeSeconds: result.decodeSeconds, decodeTokensPerSecond: decodeRate,
        loadSeconds, gpuMemory, peakRssBytes: process.resourceUsage().maxRSS * 1024,
      }));
    } else {
      process.stdout.write(tail + '\n');
      process.stderr.write(`[${result.tokens.length} tokens, ${result.stopReason}, seed ${result.seed}, prefill ${(result.prefillSeconds * 1000).toFixed(0)} ms, decode ${decodeRate.toFixed(1)} tok/s]\n`);
    }
  },
};
