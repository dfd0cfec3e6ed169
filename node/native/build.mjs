#!/usr/bin/env node
// Part of `npm run build:native`: compiles the stderr-capture addon (node/native) with node-gyp
// (quant/native/build-addon.mjs). The addon is optional: without it the CLI runs the same and only shows
// Dawn's limit notices, so a failed build warns and exits 0.
import { dirname } from 'node:path';
import { fileURLToPath } from 'node:url';
import { buildAddon } from '../../quant/native/build-addon.mjs';

process.exit(buildAddon({
  dir: dirname(fileURLToPath(import.meta.url)),
  name: 'aser_stderr_capture',
  sources: ['stderr_capture.cc', 'binding.gyp'],
  onFailure: { status: 0, message: "node-gyp could not build node/native (see above); continuing without it: Dawn's limit notices will show on stderr" },
}));
