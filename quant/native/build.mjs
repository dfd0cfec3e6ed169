#!/usr/bin/env node
// `npm run build:native`: compiles the LAPACK addon (quant/native) with node-gyp, unless the built
// addon is newer than its sources (FORCE=1 rebuilds). Uses the headers of the running Node when they
// are installed next to it (Debian/nodesource: /usr/include/node), so no header download is needed.
import { execFileSync } from 'node:child_process';
import { existsSync, statSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';

const here = dirname(fileURLToPath(import.meta.url));
const addon = join(here, 'build', 'Release', 'aser_lapack.node');
const sources = ['lapack.cc', 'binding.gyp'].map((f) => join(here, f));

if (process.env.FORCE !== '1' && existsSync(addon) && sources.every((s) => statSync(s).mtimeMs <= statSync(addon).mtimeMs)) {
  console.log('build:native: quant/native/build/Release/aser_lapack.node is up to date');
  process.exit(0);
}
if (!existsSync('/usr/include/lapacke.h')) {
  console.error('build:native: /usr/include/lapacke.h not found; install LAPACK first: bash scripts/install-system.sh (as root), ' +
    'or apt-get install liblapacke-dev libopenblas-dev');
  process.exit(1);
}
const prefix = resolve(dirname(process.execPath), '..');
const args = ['node-gyp', 'rebuild', '--loglevel=error', '-C', here];
if (existsSync(join(prefix, 'include', 'node', 'node_api.h'))) args.push(`--nodedir=${prefix}`);
try {
  execFileSync('npx', args, { stdio: ['ignore', 'ignore', 'inherit'] });
} catch {
  console.error('build:native: node-gyp failed (see above); it needs g++, make and python3 (bash scripts/install-system.sh)');
  process.exit(1);
}
console.log('build:native: built quant/native/build/Release/aser_lapack.node');
