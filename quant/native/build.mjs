#!/usr/bin/env node
// `npm run build:native`: compiles the LAPACK addon (quant/native) with node-gyp (build-addon.mjs).
// The quantizer cannot run without it, so a missing LAPACK or a failed build fails the build.
import { existsSync } from 'node:fs';
import { dirname } from 'node:path';
import { fileURLToPath } from 'node:url';
import { buildAddon } from './build-addon.mjs';

process.exit(buildAddon({
  dir: dirname(fileURLToPath(import.meta.url)),
  name: 'aser_lapack',
  sources: ['lapack.cc', 'binding.gyp'],
  precheck: () => (existsSync('/usr/include/lapacke.h') ? undefined
    : '/usr/include/lapacke.h not found; install LAPACK first: bash scripts/install-system.sh (as root), or apt-get install liblapacke-dev libopenblas-dev'),
  onFailure: { status: 1, message: 'node-gyp failed (see above); it needs g++, make and python3 (bash scripts/install-system.sh)' },
}));
