import type { CommandModule } from 'yargs';
import { systemInfo } from '../../node/info.js';
import { jsonOption } from '../options.js';

interface InfoArgs { model?: string; json: boolean }

export const infoCommand: CommandModule<object, InfoArgs> = {
  command: 'info',
  describe: 'Show versions, the WebGPU adapter and driver (features, limits) and, with --model, the model shape',
  builder: (y) =>
    y
      .option('model', { type: 'string', describe: 'Preset name, llama2.c .bin or HF directory' })
      .options(jsonOption())
      .example('$0 info', 'what WebGPU adapter this machine offers')
      .example('$0 info --model stories260k --json', 'adapter and model config as JSON') as never,
  handler: async (args) => {
    const out = await systemInfo(args.model);
    if (args.json) {
      console.log(JSON.stringify(out));
      return;
    }
    const v = out.versions;
    console.log(`versions  aser ${v.aser}, node ${v.node}, webgpu ${v.webgpu} (Dawn)`);
    console.log(`adapter   ${out.adapter}`);
    if (out.adapterInfo.description) console.log(`driver    ${out.adapterInfo.description}`);
    if (out.softwareAdapter) {
      console.log('note      this adapter is a software (CPU) emulation of a GPU: everything runs, but far slower than on a GPU;');
      console.log('          timings measured here say nothing about GPU speed');
    }
    for (const [k, v] of Object.entries(out.limits)) console.log(`  ${k.padEnd(34)} ${v}`);
    if (out.model) {
      console.log(`model     ${out.model.id}`);
      for (const [k, v] of Object.entries(out.model)) if (k !== 'id') console.log(`  ${k.padEnd(34)} ${typeof v === 'object' ? JSON.stringify(v) : v}`);
    }
  },
};
