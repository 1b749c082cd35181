// Scenario 2: four processes hammer one lock.
import { fmt, heading, ratioText, table } from '../lib/format.mjs';
import { median, pairedRatio } from '../lib/stats.mjs';
import { contendedRun } from './contended-run.mjs';

export const title = 'Contended';

export async function run(ctx) {
  const procs = 4;
  const rounds = ctx.quick ? 2 : 3;
  const cycles = ctx.quick ? { c: 50000, ours: 10000, fsne: 2000, plf: 40 } : { c: 200000, ours: 50000, fsne: 10000, plf: 250 };
  const names = ctx.contenders(['c', 'ours', 'fsne', 'plf']);
  const runs = Object.fromEntries(names.map((n) => [n, []]));
  for (let r = 0; r < rounds; r++) {
    for (const name of ctx.rotate(names, r)) runs[name].push(await contendedRun(ctx, name, procs, cycles[name]));
  }
  const summary = {};
  for (const n of names) {
    const rs = runs[n];
    summary[n] = {
      throughput: median(rs.map((x) => x.throughput)),
      lost: rs.reduce((s, x) => s + x.lost, 0),
      waitP50Us: median(rs.map((x) => x.waitUs.p50)),
      waitP99Us: median(rs.map((x) => x.waitUs.p99)),
      waitMaxUs: median(rs.map((x) => x.waitUs.max)),
      worstWaitMaxUs: Math.max(...rs.map((x) => x.waitUs.max)),
      slowestOverFastest: median(rs.map((x) => x.slowestOverFastest)),
      finishMs: rs[Math.floor(rs.length / 2)].finishMs,
      startSkewMs: median(rs.map((x) => x.startSkewMs)),
      cpuUsPerCycle: median(rs.map((x) => x.cpuUsPerCycle)),
      switchesPerCycle: median(rs.map((x) => x.switchesPerCycle)),
    };
  }
  const s = summary;
  const per = (n, f) => runs[n]?.map(f);
  const throughput = (x) => x.throughput;
  const maxWait = (x) => x.waitUs.max;
  const ratios = {
    throughputOursOverFsne: pairedRatio(per('ours', throughput), per('fsne', throughput)),
    maxWaitOursOverFsne: pairedRatio(per('ours', maxWait), per('fsne', maxWait)),
    throughputOursOverC: pairedRatio(per('ours', throughput), per('c', throughput)),
    throughputOursOverPlf: pairedRatio(per('ours', throughput), per('plf', throughput)),
  };

  heading(`2. ${title} (${procs} processes, ${rounds} rounds alternating; medians over rounds, ratios are medians of per-round ratios)`);
  table(
    ['contender', 'cycles/proc', 'cycles/s', 'lost', 'wait p50 µs', 'p99 µs', 'max ms', 'worst max ms', 'finish ms (each process)', 'start skew ms', 'slow/fast', 'CPU µs/cycle', 'ctx sw/cycle'],
    names.map((n) => [
      ctx.label(n),
      cycles[n],
      fmt(s[n].throughput),
      s[n].lost,
      fmt(s[n].waitP50Us),
      fmt(s[n].waitP99Us),
      fmt(s[n].waitMaxUs / 1000),
      fmt(s[n].worstWaitMaxUs / 1000),
      s[n].finishMs.map((x) => fmt(x, 0)).join(' '),
      fmt(s[n].startSkewMs),
      ratioText(s[n].slowestOverFastest),
      fmt(s[n].cpuUsPerCycle),
      fmt(s[n].switchesPerCycle),
    ]),
  );
  console.log(`  throughput ours/fs-native-extensions ${ratioText(ratios.throughputOursOverFsne)}   ours/C ${ratioText(ratios.throughputOursOverC)}   max wait ours/fs-native-extensions ${ratioText(ratios.maxWaitOursOverFsne)}`);
  return { procs, rounds, cycles, runs, summary, ratios };
}
