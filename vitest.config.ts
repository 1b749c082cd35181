import { defineConfig } from 'vitest/config';

export default defineConfig({
  test: {
    include: ['test/**/*.test.ts'],
    // Multi-process tests spawn real children and wait on real locks.
    testTimeout: 60_000,
    hookTimeout: 60_000,
    // Forks, not threads: several tests send signals to and count descriptors of their own process.
    pool: 'forks',
    reporters: process.env.CI ? ['default', ['json', { outputFile: '.vitest-report.json' }]] : ['default'],
  },
});
