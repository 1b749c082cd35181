import { relative } from 'node:path';
import type { Reporter, TestModule } from 'vitest/node';
import { defineConfig } from 'vitest/config';

/**
 * Ends the run with one short list of the skipped tests, grouped by the reason
 * given to ctx.skip (see requires() in test/helpers.ts).
 */
const skippedSummary: Reporter = {
  onTestRunEnd(modules: ReadonlyArray<TestModule>) {
    const byReason = new Map<string, string[]>();
    for (const module of modules) {
      for (const test of module.children.allTests('skipped')) {
        const result = test.result();
        const reason = (result.state === 'skipped' && result.note) || 'no reason given (it.skip, or left out by a filter)';
        const name = `${relative(process.cwd(), module.moduleId)} › ${test.fullName}`;
        byReason.set(reason, [...(byReason.get(reason) ?? []), name]);
      }
    }
    if (byReason.size === 0) return;
    const count = [...byReason.values()].reduce((n, names) => n + names.length, 0);
    const lines = [`\nSkipped ${count} test${count === 1 ? '' : 's'}, by reason:`];
    for (const [reason, names] of byReason) {
      lines.push(`  ${reason}:`);
      for (const name of names) lines.push(`    ${name.length > 110 ? `${name.slice(0, 109)}…` : name}`);
    }
    console.log(lines.join('\n'));
  },
};

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
      ? ['default', skippedSummary, ['json', { outputFile: process.env.VITEST_JSON_REPORT }]]
      : ['default', skippedSummary],
  },
});
