#!/usr/bin/env node
// Part of `npm run build:native`: compiles the stderr-capture addon (node/native) with node-gyp unless
// the built addon is newer than its sources (FORCE=1 rebuilds). The addon is optional: without it the
// CLI runs the same and only shows Dawn's limit notices, so a failed build warns and exits 0.
import { execFileSync } from 'node:child_process';
import { existsSync, statSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';

const here = dirname(fileURLToPath(import.meta.url));
const addon = join(here, 'build', 'Release', 'aser_stderr_capture.node');
const sources = ['stderr_capture.cc', 'binding.gyp'].map((f) => join(here, f));

if (process.env.FORCE !== '1' && existsSync(addon) && sources.every((s) => statSync(s).mtimeMs <= statSync(addon).mtimeMs)) {
  console.log('build:native: node/native/build/Release/aser_stderr_capture.node is up to date');
  process.exit(0);
}
const prefix = resolve(dirname(process.execPath), '..');
const args = ['node-gyp', 'rebuild', '--loglevel=error', '-C', here];
if (existsSync(join(prefix, 'include', 'node', 'node_api.h'))) args.push(`--nodedir=${prefix}`);
try {
  execFileSync('npx', args, { stdio: ['ignore', 'ignore', 'inherit'] });
} catch {
  console.error('build:native: node-gyp could not build node/native (see above); continuing without it: Dawn\'s limit notices will show on stderr');
  process.exit(0);
}
console.log('build:native: built node/native/build/Release/aser_stderr_capture.node');
