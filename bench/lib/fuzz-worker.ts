// Worker thread of `npm run bench -- fuzz`: runs cases [start, count) of one loader target and
// publishes the index of the case in progress through a shared counter, so the main thread can
// time out a case that hangs (a synchronous loader cannot be interrupted in its own thread).
import { parentPort, workerData } from 'node:worker_threads';
import fc from 'fast-check';
import {
  artifactTarget, classify, ggufTarget, hfConfigTarget, hfTokenizerTarget, llama2cTarget,
  llama2cTokenizerTarget, safetensorsTarget, type FuzzTarget,
} from './fuzz-targets.js';

export interface FuzzWorkerData {
  format: string;
  start: number;
  count: number;
  seed: number;
  tokenizerBin: string;
  /** Int32Array view: [0] = index of the case in progress. */
  progress: SharedArrayBuffer;
}

export interface FuzzWorkerResult {
  outcomes: Record<string, number>;
  failures: Array<{ index: number; failure: string; input: string }>;
  maxMs: number;
  totalMs: number;
  done: number;
}

export function makeTarget(format: string, tokenizerBin: string): FuzzTarget<any> {
  switch (format) {
    case 'safetensors': return safetensorsTarget();
    case 'llama2c': return llama2cTarget();
    case 'gguf': return ggufTarget();
    case 'llama2c-tokenizer': return llama2cTokenizerTarget(tokenizerBin);
    case 'artifact-manifest': return artifactTarget();
    case 'hf-config': return hfConfigTarget();
    case 'hf-tokenizer': return hfTokenizerTarget(tokenizerBin.replace(/tokenizer\.bin$/, 'tokenizer.json'));
    default: throw new Error(`unknown fuzz format ${format}`);
  }
}

if (parentPort && workerData) {
  const d = workerData as FuzzWorkerData;
  const progress = new Int32Array(d.progress);
  const target = makeTarget(d.format, d.tokenizerBin);
  const result: FuzzWorkerResult = { outcomes: {}, failures: [], maxMs: 0, totalMs: 0, done: 0 };
  try {
    // Inputs are drawn in one seeded stream, so case i is the same whatever the restarts.
    const inputs = fc.sample(target.arbitrary, { numRuns: d.start + d.count, seed: d.seed }).slice(d.start);
    inputs.forEach((input, i) => {
      Atomics.store(progress, 0, d.start + i);
      const r = classify(target, input);
      result.outcomes[r.failure ? `failure:${r.outcome}` : r.outcome] = (result.outcomes[r.failure ? `failure:${r.outcome}` : r.outcome] ?? 0) + 1;
      if (r.failure && result.failures.length < 10) result.failures.push({ index: d.start + i, failure: r.failure, input: JSON.stringify(input, (_, v) => (v instanceof Uint8Array ? `<${v.length} bytes>` : typeof v === 'bigint' ? String(v) : v)).slice(0, 400) });
      result.maxMs = Math.max(result.maxMs, r.ms);
      result.totalMs += r.ms;
      result.done++;
      if (i % 50 === 0) parentPort!.postMessage({ kind: 'progress', done: result.done, result });
    });
  } finally {
    target.cleanup();
  }
  parentPort.postMessage({ kind: 'result', result });
}
