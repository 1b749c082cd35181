// Scenario 4: 1 to 16 processes on one lock; the chart's data.
import { fmt, heading, table } from '../lib/format.mjs';
import { median } from '../lib/stats.mjs';
import { contendedRun } from './contended-run.mjs';

export const title = 'Scaling';

export async function run(ctx) {
  const points = [1, 2, 4, 8, 16];
  const rounds = ctx.quick ? 1 : 3;
  const cycles = ctx.quick ? { c: 10000, ours: 2000, fsne: 400 } : { c: 40000, ours: 10000, fsne: 2500 };
  const names = ctx.contenders(['c', 'ours', 'fsne']);
  const series = Object.fromEntries(names.map((n) => [n, []]));
  for (const procs of points) {
    const runs = Object.fromEntries(names.map((n) => [n, []]));
    for (let r = 0; r < rounds; r++) {
      for (const name of ctx.rotate(names, r + procs)) runs[name].push(await contendedRun(ctx, name, procs, cycles[name]));
    }
    for (const n of names) {
      series[n].push({
        procs,
        throughput: median(runs[n].map((x) => x.throughput)),
        waitMaxMs: median(runs[n].map((x) => x.waitUs.max)) / 1000,
        waitP99Ms: median(runs[n].map((x) => x.waitUs.p99)) / 1000,
        slowestOverFastest: median(runs[n].map((x) => x.slowestOverFastest)),
        lost: runs[n].reduce((s, x) => s + x.lost, 0),
      });
    }
  }
  heading(`4. ${title} (cycles/s | max wait ms | slowest/fastest finish; ${rounds} round(s) per point)`);
  table(
    ['contender', ...points.map((p) => `${p} proc${p > 1 ? 's' : ''}`)],
    names.map((n) => [ctx.label(n), ...series[n].map((pt) => `${fmt(pt.throughput)} | ${fmt(pt.waitMaxMs)} | ${fmt(pt.slowestOverFastest)}`)]),
  );
  const lost = names.flatMap((n) => series[n].filter((pt) => pt.lost !== 0).map((pt) => `${ctx.label(n)} at ${pt.procs}: ${pt.lost}`));
  if (lost.length > 0) console.log(`  LOST UPDATES: ${lost.join(', ')}`);
  return { points, rounds, cycles, series };
}
