// Every `aser` command, in the order `aser --help` lists them.
import type { CommandModule } from 'yargs';
import { infoCommand } from './info.js';

export const commands: CommandModule<object, never>[] = [infoCommand as never];
