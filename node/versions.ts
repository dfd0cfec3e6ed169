// The versions `aser --version` and `aser info` print: this package, Node.js, and the `webgpu` package
// that carries Dawn (its build has no Dawn revision to ask for; the package version pins one).
import { readFileSync } from 'node:fs';
import { createRequire } from 'node:module';

export interface SoftwareVersions {
  aser: string;
  node: string;
  webgpu: string;
}

/** `name`'s package.json version, found from here (source tree or dist/), or '?' when unreadable. */
function ownVersion(): string {
  for (const rel of ['../package.json', '../../package.json']) {
    try {
      const pkg = JSON.parse(readFileSync(new URL(rel, import.meta.url), 'utf8')) as { name?: string; version?: string };
      if (pkg.name === 'aser-webgpu') return pkg.version ?? '?';
    } catch {
      // try the next location
    }
  }
  return '?';
}

function dependencyVersion(name: string): string {
  try {
    const require = createRequire(import.meta.url);
    // The package's main entry, then its package.json beside it (its exports may not list package.json).
    const entry = require.resolve(name);
    const dir = entry.slice(0, entry.lastIndexOf(`/node_modules/${name}/`) + `/node_modules/${name}/`.length);
    return (JSON.parse(readFileSync(dir + 'package.json', 'utf8')) as { version?: string }).version ?? '?';
  } catch {
    return '?';
  }
}

export function softwareVersions(): SoftwareVersions {
  return { aser: ownVersion(), node: process.version, webgpu: dependencyVersion('webgpu') };
}

/** One line: `aser 0.1.0 (node v20.20.2, webgpu 0.6.2 (Dawn))`. */
export function versionLine(v: SoftwareVersions = softwareVersions()): string {
  return `aser ${v.aser} (node ${v.node}, webgpu ${v.webgpu} (Dawn))`;
}
