// llama.cpp itself (through node-llama-cpp's prebuilt CPU binary) loads the LLaMA-3 GGUF we write and
// tokenizes the LLaMA-3 test strings to the ids our GGUF-embedded vocabulary gives. node-llama-cpp is
// not part of the default install (CI does not have it): without it these tests skip, saying so.
import { describe, expect, it } from 'vitest';
import { mkdtempSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { exportGguf } from '../../loaders/gguf-writer.js';
import { loadGguf } from '../../loaders/gguf.js';
import { loadLlama2c } from '../../loaders/llama2c.js';
import { ggufVocabFromLlama2c } from '../../loaders/gguf-tokenizer.js';
import { Executor } from '../../runtime/executor.js';
import { argmax } from '../../runtime/sampler.js';
import { testGpu } from '../helpers/gpu.js';
import { ggufVocabFromHfTokenizer } from '../../loaders/gguf-tokenizer.js';
import { resolveModel } from '../../loaders/registry.js';
import type { ModelConfig } from '../../core/model.js';
import { importNodeLlamaCpp } from '../../bench/lib/node-llama-cpp.js';
import { SYNTHETIC_CONFIG, syntheticModel } from '../reference/synthetic-model.js';

const LLAMA3 = resolve('../shared/tokenizers/llama3');

interface NlcSequence {
  evaluate(tokens: number[], options?: { temperature?: number }): AsyncGenerator<number, void, void | number | number[]>;
}
interface NlcContext { getSequence(): NlcSequence; dispose(): Promise<void> }
interface NlcModel {
  createContext(options: { contextSize: number; batchSize: number; threads?: number; sequences?: number; flashAttention?: boolean }): Promise<NlcContext>;
  tokenize(text: string, specialTokens?: boolean): number[];
  detokenize(tokens: readonly number[], specialTokens?: boolean): string;
  readonly tokens: { bos: number | null; eos: number | null };
  dispose(): Promise<void>;
}
interface NlcLlama {
  loadModel(options: { modelPath: string; gpuLayers?: number; vocabOnly?: boolean }): Promise<NlcModel>;
  dispose(): Promise<void>;
}
interface NlcModule { getLlama(options: Record<string, unknown>): Promise<NlcLlama> }

const nlc = await importNodeLlamaCpp<NlcModule>();
const SKIP = 'error' in nlc ? `skipped: ${nlc.error}` : '';

/** llama.cpp's vocab test inputs (the LLaMA-3 set). */
function ggmlInputs(stem: string): string[] {
  const texts = readFileSync(`${stem}.inp`, 'utf8').split('\n__ggml_vocab_test__\n');
  texts.pop();
  return texts;
}

const TINY_LLAMA3: ModelConfig = {
  ...SYNTHETIC_CONFIG, dim: 32, nHeads: 4, nKvHeads: 2, headDim: 8, hiddenDim: 64, nLayers: 1, vocabSize: 128256,
  tiedEmbeddings: true, attentionBias: false, ropeScaling: undefined, bosId: 128000, eosId: 128001,
};

describe('llama.cpp reads our LLaMA-3 GGUF', () => {
  it.skipIf(SKIP !== '')(`tokenizes the LLaMA-3 test strings to our ids, and the chat-template specials alike ${SKIP}`, async () => {
    if ('error' in nlc) return;
    const file = join(mkdtempSync(join(tmpdir(), 'aser-gguf-llamacpp-')), 'tiny-llama3.gguf');
    const src = syntheticModel(TINY_LLAMA3, 5);
    exportGguf(src, ggufVocabFromHfTokenizer(join(LLAMA3, 'tokenizer.json'), { bosId: 128000, eosId: 128001 }), file, { dtype: 'f32' });
    const ours = resolveModel(file);
    const llama = await nlc.module.getLlama({ gpu: false, build: 'never', skipDownload: true, usePrebuiltBinaries: true, logLevel: 'error', progressLogs: false });
    try {
      const model = await llama.loadModel({ modelPath: file, gpuLayers: 0, vocabOnly: true });
      try {
        expect({ bos: model.tokens.bos, eos: model.tokens.eos }).toEqual({ bos: 128000, eos: 128001 });
        const texts = [...ggmlInputs(`${LLAMA3}/test-vectors/ggml-vocab-llama-bpe.gguf`), 'Hello world', ' Hello', '3333333', 'Ünïcödé 🦙 llamas ✓'];
        const differ = texts.map((text) => ({ text, ours: ours.tokenizer.encode(text), llamacpp: model.tokenize(text, false) }))
          .filter((r) => JSON.stringify(r.ours) !== JSON.stringify(r.llamacpp));
        expect(differ).toEqual([]);
        // Special tokens parsed as such by both when asked to.
        expect(model.tokenize('<|start_header_id|>user<|end_header_id|>', true)).toEqual(ours.tokenizer.encode('<|start_header_id|>user<|end_header_id|>'));
        expect(model.detokenize(ours.tokenizer.encode('Hello world, 1234567!'))).toBe('Hello world, 1234567!');
      } finally {
        await model.dispose();
      }
    } finally {
      await llama.dispose();
      ours.source.close();
      src.close();
    }
  }, 120_000);

  it.skipIf(SKIP !== '')(`loads our Q8_0 and Q4_0 block exports and greedy-decodes what we decode from the same file ${SKIP}`, async () => {
    if ('error' in nlc) return;
    const dir = mkdtempSync(join(tmpdir(), 'aser-gguf-llamacpp-'));
    const original = loadLlama2c('../shared/models/stories260K/model.bin', 'stories260k');
    const vocab = ggufVocabFromLlama2c('../shared/models/stories260K/tokenizer.bin', 512);
    for (const dtype of ['q8_0', 'q4_0'] as const) exportGguf(original, vocab, join(dir, `${dtype}.gguf`), { dtype });
    original.close();
    const llama = await nlc.module.getLlama({ gpu: false, build: 'never', skipDownload: true, usePrebuiltBinaries: true, logLevel: 'error', progressLogs: false, maxThreads: 1 });
    try {
      for (const dtype of ['q8_0', 'q4_0']) {
        const file = join(dir, `${dtype}.gguf`);
        // Ours: greedy from BOS with the blocks dequantized on the GPU.
        const g = loadGguf(file);
        const ex = await Executor.create(await testGpu(), g, { dtype: 'f32', maxSeqLen: 64 });
        const ours: number[] = [];
        let next = 1;
        for (let i = 0; i < 12; i++) {
          await ex.forward([next]);
          next = argmax(await ex.logits());
          ours.push(next);
        }
        ex.destroy();
        g.close();
        // llama.cpp on the same file (its CPU kernels quantize activations to 8 bits, so logits differ in
        // the last digits; the greedy path of this model is far from ties for these steps).
        const model = await llama.loadModel({ modelPath: file, gpuLayers: 0 });
        const context = await model.createContext({ contextSize: 64, batchSize: 64, threads: 1, sequences: 1, flashAttention: false });
        try {
          const it = context.getSequence().evaluate([1], { temperature: 0 });
          const theirs: number[] = [];
          for (let i = 0; i < 12; i++) theirs.push((await it.next()).value as number);
          await it.return();
          expect(theirs, `${dtype}: llama.cpp vs aser greedy tokens`).toEqual(ours);
        } finally {
          await context.dispose();
          await model.dispose();
        }
      }
    } finally {
      await llama.dispose();
    }
  }, 300_000);
});
