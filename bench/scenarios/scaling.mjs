// Scenario 4: 1 to 16 processes on one lock; the chart's data. The counter
// workload (every contender, exclusive) and a readers' workload of this
// library: read and hash a small file under an exclusive lock, and the same
// under a shared one, where N readers should overlap on the 2+ CPUs; and the
// same work with no lock, the ceiling this machine allows at that moment.
import { fmt, heading, ratioText, table } from '../lib/format.mjs';
import { median } from '../lib/stats.mjs';
import { DATA_BYTES, contendedRun } from './contended-run.mjs';

export const title = 'Scaling';

// The readers' point the shared-scaling target is judged at (bench/README.md says why).
export const SHARED_AT = 4;

export const READER_LABELS = { exclusive: 'native-file-lock, exclusive', shared: 'native-file-lock, { shared: true }', unlocked: 'no lock (the ceiling)' };

// Series of this library on the readers' workload, named as in the chart.
const READERS = { exclusive: { contender: 'ours', shared: false }, shared: { contender: 'ours', shared: true }, unlocked: { contender: 'none', shared: false } };

function point(procs, runs, one) {
  return {
    procs,
    throughput: median(runs.map((x) => x.throughput)),
    // Over the same round's 1-process throughput: the readers' scaling.
    overOne: one ? median(runs.map((x, r) => x.throughput / one[r].throughput)) : undefined,
    waitMaxMs: median(runs.map((x) => x.waitUs.max)) / 1000,
    waitP99Ms: median(runs.map((x) => x.waitUs.p99)) / 1000,
    slowestOverFastest: median(runs.map((x) => x.slowestOverFastest)),
    cpuUsPerCycle: median(runs.map((x) => x.cpuUsPerCycle)),
    switchesPerCycle: median(runs.map((x) => x.switchesPerCycle)),
    lost: runs.reduce((s, x) => s + x.lost, 0),
  };
}

export async function run(ctx) {
  const points = [1, 2, 4, 8, 16];
  const rounds = ctx.quick ? 1 : 3;
  const cycles = ctx.quick ? { c: 10000, ours: 2000, fsne: 400 } : { c: 40000, ours: 10000, fsne: 2500 };
  // Readers: the same number of cycles at every point, split between the
  // processes, so that each point takes about as long as one reader alone.
  const readerCycles = ctx.quick ? 6000 : 40000;
  // Quick mode stops the readers at the target's point: 8 and 16 processes
  // would double the scenario's time in process start-ups.
  const readerPoints = ctx.quick ? points.filter((p) => p <= SHARED_AT) : points;
  const names = ctx.contenders(['c', 'ours', 'fsne']);
  const readerNames = ctx.contenders(['ours']).length > 0 ? Object.keys(READERS) : [];
  const all = [...names, ...readerNames];
  const series = Object.fromEntries(all.map((n) => [n, []]));
  // The counter series first, then the readers' (their points close together
  // in time, so that N readers and one reader meet a similar machine).
  for (const [group, groupPoints] of [
    [names, points],
    [readerNames, readerPoints],
  ]) {
    const ones = {};
    for (const procs of groupPoints) {
      const runs = Object.fromEntries(group.map((n) => [n, []]));
      for (let r = 0; r < rounds; r++) {
        for (const name of ctx.rotate(group, r + procs)) {
          const reader = READERS[name];
          const run = reader
            ? contendedRun(ctx, reader.contender, procs, Math.ceil(readerCycles / procs), { readers: true, shared: reader.shared })
            : contendedRun(ctx, name, procs, cycles[name]);
          runs[name].push(await run);
        }
      }
      for (const n of group) {
        if (procs === 1) ones[n] = runs[n];
        series[n].push(point(procs, runs[n], n in READERS ? ones[n] : undefined));
      }
    }
  }
  const label = (n) => (n in READERS ? READER_LABELS[n] : ctx.label(n));
  const header = ['contender', ...points.map((p) => `${p} proc${p > 1 ? 's' : ''}`)];
  // One cell per point, '—' where the series has none.
  const cells = (n, cell) => points.map((p) => series[n].find((pt) => pt.procs === p)).map((pt) => (pt ? cell(pt) : '—'));
  heading(`4. ${title} (cycles/s | max wait ms | slowest/fastest finish; ${rounds} round(s) per point)`);
  console.log('  counter: read-increment-write of a counter file, exclusive');
  table(
    header,
    names.map((n) => [ctx.label(n), ...series[n].map((pt) => `${fmt(pt.throughput)} | ${fmt(pt.waitMaxMs)} | ${fmt(pt.slowestOverFastest)}`)]),
  );
  if (readerNames.length > 0) {
    console.log(`  readers: read and hash a ${DATA_BYTES / 1024} KiB file under the lock (cycles/s | over 1 process's | max wait ms)`);
    table(
      header,
      readerNames.map((n) => [label(n), ...cells(n, (pt) => `${fmt(pt.throughput)} | ${ratioText(pt.overOne)} | ${fmt(pt.waitMaxMs)}`)]),
    );
  }
  console.log('  CPU µs per cycle | context switches per cycle (all processes, all threads)');
  table(
    header,
    all.map((n) => [label(n), ...cells(n, (pt) => `${fmt(pt.cpuUsPerCycle)} | ${fmt(pt.switchesPerCycle)}`)]),
  );
  const lost = all.flatMap((n) => series[n].filter((pt) => pt.lost !== 0).map((pt) => `${label(n)} at ${pt.procs}: ${pt.lost}`));
  if (lost.length > 0) console.log(`  LOST UPDATES (or wrong digests): ${lost.join(', ')}`);
  return { points, readerPoints, rounds, cycles, readerCycles, dataBytes: DATA_BYTES, series };
}
