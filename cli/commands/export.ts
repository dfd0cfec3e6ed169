import type { CommandModule } from 'yargs';
import { GGUF_EXPORT_DTYPES, type GgufExportDType } from '../../loaders/gguf-writer.js';
import { exportModelGguf } from '../../node/model-files.js';
import { jsonOption, overwriteOption } from '../options.js';

interface ExportArgs { format: string; model: string; out: string; dtype: GgufExportDType; tokenizer?: string; overwrite: boolean; json: boolean }

export const exportCommand: CommandModule<object, ExportArgs> = {
  command: 'export',
  describe: 'Write a model as a GGUF file that llama.cpp loads (llama architecture, its SentencePiece or byte-level BPE vocabulary and chat template embedded)',
  builder: (y) =>
    y
      .option('format', { type: 'string', choices: ['gguf'], default: 'gguf', describe: 'Output format' })
      .option('model', { type: 'string', default: 'stories260k', describe: 'Preset name, llama2.c .bin, .gguf or HF directory' })
      .option('out', { type: 'string', demandOption: true, describe: 'Output .gguf file (written atomically)' })
      .option('dtype', { type: 'string', choices: GGUF_EXPORT_DTYPES, default: 'f32', describe: 'Storage of matrices and the embedding: f32, f16, or ggml blocks q8_0 / q4_0 (q4_0 keeps the classifier in q8_0; rows that are not whole 32-value blocks stay f16; norms stay f32)' })
      .option('tokenizer', { type: 'string', describe: 'tokenizer.bin or tokenizer.json to embed (default: the one next to the model)' })
      .options(overwriteOption('file'))
      .options(jsonOption())
      .example('$0 export --format gguf --model stories260k --out /tmp/stories260k.gguf', 'then: llama-cli -m /tmp/stories260k.gguf, or aser ppl --model /tmp/stories260k.gguf')
      .example('$0 export --model stories260k --dtype f16 --out /tmp/stories260k-f16.gguf', 'f16 weights')
      .example('$0 export --model /tmp/llama3-8b-l1 --dtype q4_0 --out /tmp/llama3-8b-l1-q4_0.gguf', 'a LLaMA-3-shaped HF directory in Q4_0 blocks (Q8_0 classifier), its byte-level BPE vocabulary embedded') as never,
  handler: (args) => {
    const result = exportModelGguf(args.model, args.out, { dtype: args.dtype, tokenizer: args.tokenizer, overwrite: args.overwrite });
    if (args.json) {
      console.log(JSON.stringify({ out: result.path, bytes: result.bytes, tensors: result.tensorCount, dtype: result.dtype, vocabulary: result.vocabulary, model: result.model }));
      return;
    }
    console.log(`wrote ${result.path}: ${result.tensorCount} tensors, ${(result.bytes / 1e6).toFixed(2)} MB, ${result.dtype}, vocabulary from ${result.vocabulary}`);
  },
};
