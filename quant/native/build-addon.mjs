// The one node-gyp build of the project's native addons: quant/native's, and node/native's (node may
// import quant, not the reverse). Skipped while the built addon is newer than its sources (FORCE=1
// rebuilds); uses the headers of the running Node when they are installed next to it
// (Debian/nodesource: /usr/include/node), so no header download is needed.
import { execFileSync } from 'node:child_process';
import { existsSync, statSync } from 'node:fs';
import { dirname, join, relative, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';

const root = resolve(dirname(fileURLToPath(import.meta.url)), '..', '..');

/**
 * Builds the addon `dir/build/Release/<name>.node` from `sources` (names in `dir`) and returns the exit
 * status for the build script: 0 when built or up to date; when `precheck` returns a message or
 * node-gyp fails, that message (or `onFailure.message`) goes to stderr and `onFailure.status` is returned.
 */
export function buildAddon({ dir, name, sources, precheck, onFailure }) {
  const addon = join(dir, 'build', 'Release', `${name}.node`);
  const shown = relative(root, addon);
  const paths = sources.map((f) => join(dir, f));
  if (process.env.FORCE !== '1' && existsSync(addon) && paths.every((s) => statSync(s).mtimeMs <= statSync(addon).mtimeMs)) {
    console.log(`build:native: ${shown} is up to date`);
    return 0;
  }
  const missing = precheck?.();
  if (missing) {
    console.error(`build:native: ${missing}`);
    return onFailure.status;
  }
  const prefix = resolve(dirname(process.execPath), '..');
  const args = ['node-gyp', 'rebuild', '--loglevel=error', '-C', dir];
  if (existsSync(join(prefix, 'include', 'node', 'node_api.h'))) args.push(`--nodedir=${prefix}`);
  try {
    execFileSync('npx', args, { stdio: ['ignore', 'ignore', 'inherit'] });
  } catch {
    console.error(`build:native: ${onFailure.message}`);
    return onFailure.status;
  }
  console.log(`build:native: built ${shown}`);
  return 0;
}
