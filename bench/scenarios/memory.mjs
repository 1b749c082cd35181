// Scenario 6: resident memory and descriptors across many cycles.
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';

import { fmt, heading, table } from '../lib/format.mjs';

export const title = 'Memory';

export async function run(ctx) {
  const cycles = ctx.quick ? { ours: 100000 } : { ours: 100000, fsne: 100000, plf: 10000 };
  const names = ctx.contenders(Object.keys(cycles));
  const results = {};
  for (const name of names) {
    const resource = join(ctx.dir(`memory-${name}`), 'resource');
    writeFileSync(resource, '');
    const r = await ctx
      .node('memory.mjs', ['--contender', name, '--path', resource, '--cycles', String(cycles[name]), '--idleWaitMs', '5000'], `${name} memory`, { nodeArgs: ['--expose-gc'] })
      .done();
    results[name] = {
      ...r,
      rssGrowthPct: (100 * (r.after.rss - r.before.rss)) / r.before.rss,
      heapGrowthPct: (100 * (r.after.heapUsed - r.before.heapUsed)) / r.before.heapUsed,
      fdDelta: r.after.fds - r.before.fds,
      fdIdleDelta: r.idle.fds - r.initial.fds,
      lockFdsIdle: r.idle.lockFds,
      cpuUsPerCycle: r.usage.cpuUs / r.cycles,
      switchesPerCycle: (r.usage.vcsw + r.usage.ivcsw) / r.cycles,
    };
  }
  heading(`6. ${title} (RSS and descriptors before/after the cycles, after gc)`);
  const mb = (b) => fmt(b / 1048576, 1);
  table(
    ['contender', 'cycles', 'RSS before MB', 'after MB', 'growth %', 'heap growth %', 'fds (lock files): no lock yet', 'before', 'after', 'after idle', 'CPU µs/cycle', 'ctx sw/cycle'],
    names.map((n) => {
      const r = results[n];
      const fds = (x) => `${x.fds} (${x.lockFds})`;
      return [ctx.label(n), r.cycles, mb(r.before.rss), mb(r.after.rss), fmt(r.rssGrowthPct, 2), fmt(r.heapGrowthPct, 2), fds(r.initial), fds(r.before), fds(r.after), `${fds(r.idle)} after ${(r.idleWaitedMs / 1000).toFixed(1)} s`, fmt(r.cpuUsPerCycle), fmt(r.switchesPerCycle, 4)];
    }),
  );
  return { cycles, results };
}
