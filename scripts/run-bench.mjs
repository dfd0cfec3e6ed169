#!/usr/bin/env node
// `npm run bench -- <name> [args]`: runs dist/bench/<name>.js (building first if needed).
import { existsSync, readdirSync } from 'node:fs';
import { execFileSync } from 'node:child_process';
import { dirname, join } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';

const root = join(dirname(fileURLToPath(import.meta.url)), '..');
const [name, ...args] = process.argv.slice(2);
const available = readdirSync(join(root, 'bench')).filter((f) => f.endsWith('.ts')).map((f) => f.replace(/\.ts$/, ''));
if (!name || !available.includes(name)) {
  console.error(`usage: npm run bench -- <${available.join('|')}> [options]`);
  process.exit(2);
}
const built = join(root, 'dist', 'bench', `${name}.js`);
if (!existsSync(built) || process.env.ASER_REBUILD !== '0') execFileSync('npm', ['run', '--silent', 'build'], { cwd: root, stdio: 'inherit' });
process.env.XDG_RUNTIME_DIR ??= '/tmp';
const mod = await import(pathToFileURL(built).href);
const code = await mod.main(args);
process.exit(typeof code === 'number' ? code : 0);
