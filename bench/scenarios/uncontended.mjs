// Scenario 1: one process, nobody else, one lock cycle after another.
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';

import { fmt, heading, ratioText, table } from '../lib/format.mjs';
import { max, median, min, pairedRatio } from '../lib/stats.mjs';

export const title = 'Uncontended cycle';

export async function run(ctx) {
  const rounds = ctx.quick ? 4 : 9;
  const cycles = ctx.quick ? { c: 50000, ours: 30000, base: 30000, sync: 30000, fsne: 1500, plf: 150 } : { c: 200000, ours: 100000, base: 100000, sync: 100000, fsne: 10000, plf: 1000 };
  // sync: withFileLockSync, next to ours (withFileLock); base: another build of ours (--baseline).
  const names = ctx.contenders(['c', 'ours', 'base', 'sync', 'fsne', 'plf']);
  const samples = Object.fromEntries(names.map((n) => [n, []]));
  // Per round: CPU µs and context switches per cycle (all threads).
  const cpu = Object.fromEntries(names.map((n) => [n, []]));
  const switches = Object.fromEntries(names.map((n) => [n, []]));
  const resource = {};
  for (const n of names) {
    resource[n] = join(ctx.dir(`uncontended-${n}`), 'resource');
    writeFileSync(resource[n], '');
  }
  for (let r = 0; r < rounds; r++) {
    for (const name of ctx.rotate(names, r)) {
      const child =
        name === 'c'
          ? ctx.c(['uncontended', `${resource.c}.lock`, String(cycles.c)], 'C uncontended')
          : ctx.node('uncontended.mjs', ['--contender', name, '--path', resource[name], '--cycles', String(cycles[name]), '--warmup', String(Math.min(5000, cycles[name]))], `${name} uncontended`);
      const result = await child.done();
      samples[name].push(result.usPerCycle);
      cpu[name].push(result.usage.cpuUs / result.cycles);
      switches[name].push((result.usage.vcsw + result.usage.ivcsw) / result.cycles);
    }
  }
  const med = Object.fromEntries(names.map((n) => [n, median(samples[n])]));
  const ratios = {
    oursOverC: pairedRatio(samples.ours, samples.c),
    syncOverOurs: pairedRatio(samples.sync, samples.ours),
    fsneOverOurs: pairedRatio(samples.fsne, samples.ours),
    plfOverOurs: pairedRatio(samples.plf, samples.ours),
    oursOverBase: samples.base ? pairedRatio(samples.ours, samples.base) : undefined,
  };

  heading(`1. ${title} (${rounds} rounds, alternating; µs per lock+unlock cycle; ratios are medians of per-round ratios)`);
  table(
    ['contender', 'cycles/round', 'median µs', 'min', 'max', 'vs ours', 'vs C', 'CPU µs/cycle', 'ctx sw/cycle'],
    names.map((n) => [
      ctx.label(n),
      cycles[n],
      fmt(med[n], 3),
      fmt(min(samples[n]), 3),
      fmt(max(samples[n]), 3),
      ratioText(pairedRatio(samples[n], samples.ours)),
      ratioText(pairedRatio(samples[n], samples.c)),
      fmt(median(cpu[n]), 3),
      fmt(median(switches[n]), 4),
    ]),
  );
  console.log(`  ours/C ${ratioText(ratios.oursOverC)}   withFileLockSync/withFileLock ${ratioText(ratios.syncOverOurs)}   fs-native-extensions/ours ${ratioText(ratios.fsneOverOurs)}   proper-lockfile/ours ${ratioText(ratios.plfOverOurs)}`);
  if (samples.base) console.log(`  ours/${ctx.label('base')} ${ratioText(ratios.oursOverBase)} (this build's cycle over the baseline's)`);
  const usage = Object.fromEntries(names.map((n) => [n, { cpuUsPerCycle: median(cpu[n]), switchesPerCycle: median(switches[n]) }]));
  return { rounds, cycles, samples, medianUs: med, usage, ratios };
}
