// Dispatches and bytes read per decode token of one model (with an artifact: its quantized linears),
// as a library call for benchmarks that only need these figures of a large model (bench/decode-speedup.ts):
// one executor, a prefill, then `decode` counted steps (eval/traffic.ts). `aser profile` reports the
// same figures for each of its variants.
import { artifactClassifier, modelIdentity, openModelSession } from '../node/session.js';
import { resolveModel } from '../loaders/registry.js';
import { readArtifact } from '../loaders/artifact.js';
import { syntheticPrompt } from './profile.js';
import { variantTraffic, type VariantTraffic } from './traffic.js';

export type DecodeTrafficSummary = VariantTraffic;

export async function measureDecodeTraffic(o: { model: string; artifact?: string; prefill: number; decode: number }): Promise<DecodeTrafficSummary> {
  const resolved = resolveModel(o.model);
  const { source } = resolved;
  const artifact = o.artifact ? readArtifact(o.artifact, { expectModelHash: modelIdentity(source.id, resolved.path).sha256 }) : undefined;
  const session = await openModelSession({ model: resolved, closeModel: true });
  try {
    const layers = artifact?.layers;
    const classifier = artifact ? artifactClassifier({ manifest: artifact.manifest, classifier: () => artifact.classifier }) : undefined;
    const ex = await session.createExecutor({ dtype: 'f32', maxSeqLen: Math.min(source.config.maxSeqLen, o.prefill + o.decode), linears: layers ? (module) => layers.get(module) : undefined, classifier });
    const prompt = syntheticPrompt(o.prefill, source.config.bosId, source.config.vocabSize);
    return await variantTraffic(ex, layers, prompt, o.decode, classifier);
  } finally {
    session.close();
  }
}
