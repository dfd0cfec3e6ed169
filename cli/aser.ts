#!/usr/bin/env node
// The `aser` executable: runs cli/main.ts and exits with its code.
import { hideBin } from 'yargs/helpers';
import { main } from './main.js';
import { reportError } from './errors.js';

main(hideBin(process.argv)).then(
  (code) => {
    process.exitCode = code;
    // Dawn keeps native handles alive; leave promptly once output is flushed.
    setImmediate(() => process.exit(code));
  },
  (err) => {
    const code = reportError(err, process.argv.includes('--verbose'));
    setImmediate(() => process.exit(code));
  },
);
