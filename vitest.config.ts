import { defineConfig } from 'vitest/config';
import { execFileSync } from 'node:child_process';

// Shaders are embedded into a generated module; refresh it before any test imports it.
execFileSync(process.execPath, ['scripts/embed-wgsl.mjs'], { stdio: 'inherit' });

export default defineConfig({
  test: {
    include: ['test/**/*.test.ts'],
    // Dawn runs fine in vitest's default fork pool; WebGPU on llvmpipe is slow, so be generous.
    testTimeout: 120_000,
    hookTimeout: 120_000,
    pool: 'forks',
  },
});
