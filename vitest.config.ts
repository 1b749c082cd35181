import { defineConfig } from 'vitest/config';

export default defineConfig({
  test: {
    include: ['test/**/*.test.ts'],
    // Multi-process tests spawn real children and wait on real locks.
    testTimeout: 60_000,
    hookTimeout: 60_000,
    // Forks, not threads: several tests send signals to and count descriptors of their own process.
    pool: 'forks',
    // .ci/run reads its summary line from this JSON report.
    reporters: process.env.VITEST_JSON_REPORT
      ? ['default', ['json', { outputFile: process.env.VITEST_JSON_REPORT }]]
      : ['default'],
  },
});
