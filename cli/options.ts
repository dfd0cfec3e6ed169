// Option blocks shared by several commands, defined once.

/** `--check-numerics`, for the commands that run a model (ppl, generate, serve). */
export const numericsOption = {
  'check-numerics': { type: 'boolean', default: false, describe: 'Check every block\'s outputs for NaN/Inf and name the first bad layer and op (slow: a readback per layer)' },
} as const;

export const modelOptions = {
  model: { type: 'string', default: 'stories260k', describe: 'Preset name from models.json, a llama2.c .bin file, or a Hugging Face model directory' },
  dtype: { type: 'string', choices: ['f32', 'f16'], default: 'f32', describe: 'Weight precision of the dense path (f16 needs shader-f16)' },
  tokenizer: { type: 'string', describe: 'tokenizer.json or llama2.c tokenizer.bin (default: next to the model)' },
  artifact: { type: 'string', describe: 'Quantized artifact directory (from aser quantize): runs the fused W4A8 kernels' },
} as const;
