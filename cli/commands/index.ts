// Every `aser` command, in the order `aser --help` lists them.
import type { CommandModule } from 'yargs';
import { demoCommand } from './demo.js';
import { pplCommand } from './ppl.js';
import { generateCommand } from './generate.js';
import { convertCommand } from './convert.js';
import { infoCommand } from './info.js';
import { synthCommand } from './synth.js';
import { planCommand } from './plan.js';
import { serveCommand } from './serve.js';
import { chatCommand } from './chat.js';
import { exportCommand } from './export.js';
import { quantizeCommand } from './quantize.js';
import { flopsCommand } from './flops.js';
import { profileCommand } from './profile.js';
import { evalCommand } from './eval.js';
import { webCommand } from './web.js';

export const commands: CommandModule<object, never>[] = [demoCommand, quantizeCommand, pplCommand, generateCommand, serveCommand, webCommand, chatCommand, convertCommand, exportCommand, synthCommand, planCommand, infoCommand, evalCommand, flopsCommand, profileCommand] as never[];
