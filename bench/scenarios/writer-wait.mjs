// Scenario 7: a writer among readers. Three processes keep overlapping
// shared locks on one file (two staggered loops of holds each, so that some
// reader nearly always holds it), and a writer in a fourth process takes an
// exclusive lock now and then: how long does it wait? Readers of this
// library step back for a queued writer (on Linux through the queue ticket
// the writer holds while it waits); flock(1) -s readers know nothing of it
// and keep the file share-locked for as long as they overlap. The writer is
// this library in both; a wait that reaches the timeout counts as starved.
import { spawn, spawnSync } from 'node:child_process';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';

import { fmt, heading, table } from '../lib/format.mjs';
import { max, median, quantile } from '../lib/stats.mjs';

export const title = 'Writer wait among readers';

const READERS = 3;
const LOOPS = 2;
const HOLD_MS = 20;
const WRITER_HOLD_MS = 5;
const GAP_MS = 30;

function flockAvailable() {
  return spawnSync('flock', ['--version'], { stdio: 'ignore' }).status === 0;
}

/** Three processes of flock(1) -s loops; returns a function that stops them all. */
function flockReaders(lockFile) {
  const loop = `while :; do flock -s "$0" sleep ${HOLD_MS / 1000}; done`;
  const script = `(${loop}) & sleep ${HOLD_MS / LOOPS / 1000}; ${loop}`;
  const groups = Array.from({ length: READERS }, () => spawn('sh', ['-c', script, lockFile], { stdio: 'ignore', detached: true }));
  return () => {
    for (const g of groups) {
      try {
        process.kill(-g.pid, 'SIGKILL');
      } catch {
        // Already gone.
      }
    }
  };
}

async function oneRun(ctx, readers, count, timeoutMs) {
  const resource = join(ctx.dir(`writer-wait-${readers}`), 'resource');
  writeFileSync(resource, '');
  const common = ['--path', resource, '--hold'];
  let stopFlock;
  const ours = [];
  if (readers === 'ours') {
    for (let i = 0; i < READERS; i++) ours.push(ctx.node('writer-wait.mjs', ['--role', 'reader', ...common, String(HOLD_MS), '--loops', String(LOOPS)], `reader ${i + 1}`));
    await Promise.all(ours.map((r) => r.expect('ready')));
    for (const r of ours) r.send('go');
  } else {
    stopFlock = flockReaders(`${resource}.lock`);
  }
  const writer = ctx.node('writer-wait.mjs', ['--role', 'writer', ...common, String(WRITER_HOLD_MS), '--count', String(count), '--gap', String(GAP_MS), '--timeout', String(timeoutMs)], 'writer');
  try {
    await writer.expect('ready');
    // The readers overlap by now.
    await new Promise((resolve) => setTimeout(resolve, 10 * HOLD_MS));
    writer.send('go');
    const result = await writer.done();
    let readerAcquisitions;
    if (readers === 'ours') {
      for (const r of ours) r.send('stop');
      readerAcquisitions = (await Promise.all(ours.map((r) => r.done()))).reduce((n, r) => n + r.acquisitions, 0);
    }
    return { ...result, readerAcquisitions };
  } finally {
    stopFlock?.();
    for (const r of ours) r.proc.kill('SIGKILL');
  }
}

export async function run(ctx) {
  const rounds = ctx.quick ? 1 : 2;
  const timeoutMs = ctx.quick ? 1500 : 5000;
  const count = ctx.quick ? { ours: 30, flock: 6 } : { ours: 100, flock: 15 };
  const names = ['ours', ...(flockAvailable() ? ['flock'] : [])];
  const waits = Object.fromEntries(names.map((n) => [n, []]));
  const starved = Object.fromEntries(names.map((n) => [n, 0]));
  for (let r = 0; r < rounds; r++) {
    for (const name of ctx.rotate(names, r)) {
      const result = await oneRun(ctx, name, count[name], timeoutMs);
      waits[name].push(...result.waitsMs);
      starved[name] += result.starved;
    }
  }
  const summary = Object.fromEntries(
    names.map((n) => {
      const w = waits[n];
      return [n, { writes: w.length, starved: starved[n], p50Ms: median(w), p99Ms: quantile(w, 0.99), maxMs: max(w), maxHolds: max(w) / HOLD_MS }];
    }),
  );
  heading(`7. ${title} (${READERS} reader processes × ${LOOPS} overlapping loops of ${HOLD_MS} ms shared holds; a writer in a 4th, ${timeoutMs} ms timeout)`);
  table(
    ['readers', 'writes', 'p50 ms', 'p99 ms', 'max ms', 'max in reader holds', 'starved (timed out)'],
    names.map((n) => {
      const s = summary[n];
      const capped = s.starved > 0 ? '≥ ' : '';
      return [
        n === 'ours' ? 'native-file-lock { shared: true }' : 'flock(1) -s (outside the library)',
        s.writes,
        fmt(s.p50Ms, 1),
        capped + fmt(s.p99Ms, 1),
        capped + fmt(s.maxMs, 1),
        capped + fmt(s.maxHolds, 1),
        `${s.starved}/${s.writes}`,
      ];
    }),
  );
  if (!names.includes('flock')) console.log('  (flock(1) is not installed: its readers are left out)');
  return { rounds, holdMs: HOLD_MS, timeoutMs, summary };
}
