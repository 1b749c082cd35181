// Scenario 7: a writer among readers. N processes (1 to 16) keep overlapping
// shared locks on one file (two staggered loops of holds each, so that some
// reader nearly always holds it), and a writer in a fourth process takes an
// exclusive lock now and then: how long does it wait? Readers of this
// library step back for a queued writer (on Linux through the queue ticket
// the writer holds while it waits); flock(1) -s readers know nothing of it
// and keep the file share-locked for as long as they overlap (3 processes of
// them: enough to starve the writer). The writer is this library in both; a
// wait that reaches the timeout counts as starved.
import { spawn, spawnSync } from 'node:child_process';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';

import { fmt, heading, table } from '../lib/format.mjs';
import { max, median, quantile } from '../lib/stats.mjs';

export const title = 'Writer wait among readers';

const FLOCK_READERS = 3;
const LOOPS = 2;
const HOLD_MS = 20;
const WRITER_HOLD_MS = 5;
const GAP_MS = 30;

function flockAvailable() {
  return spawnSync('flock', ['--version'], { stdio: 'ignore' }).status === 0;
}

/** FLOCK_READERS processes of flock(1) -s loops; returns a function that stops them all. */
function flockReaders(lockFile) {
  const loop = `while :; do flock -s "$0" sleep ${HOLD_MS / 1000}; done`;
  const script = `(${loop}) & sleep ${HOLD_MS / LOOPS / 1000}; ${loop}`;
  const groups = Array.from({ length: FLOCK_READERS }, () => spawn('sh', ['-c', script, lockFile], { stdio: 'ignore', detached: true }));
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

async function oneRun(ctx, { readers, procs }, count, timeoutMs) {
  const resource = join(ctx.dir(`writer-wait-${readers}-${procs}`), 'resource');
  writeFileSync(resource, '');
  const common = ['--path', resource, '--hold'];
  let stopFlock;
  const ours = [];
  if (readers === 'ours') {
    for (let i = 0; i < procs; i++) ours.push(ctx.node('writer-wait.mjs', ['--role', 'reader', ...common, String(HOLD_MS), '--loops', String(LOOPS)], `reader ${i + 1}/${procs}`));
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
    let readerResults = [];
    if (readers === 'ours') {
      for (const r of ours) r.send('stop');
      readerResults = await Promise.all(ours.map((r) => r.done()));
    }
    const sum = (k) => readerResults.reduce((n, r) => n + r.usage[k], 0);
    const readerUsage = readerResults.length ? { cpuUs: sum('cpuUs'), vcsw: sum('vcsw'), ivcsw: sum('ivcsw') } : undefined;
    return { ...result, readerAcquisitions: readerResults.reduce((n, r) => n + r.acquisitions, 0), readerUsage };
  } finally {
    stopFlock?.();
    for (const r of ours) r.proc.kill('SIGKILL');
  }
}

export async function run(ctx) {
  const rounds = ctx.quick ? 1 : 2;
  const timeoutMs = ctx.quick ? 1500 : 5000;
  const counts = ctx.quick ? [1, 16] : [1, 4, 16];
  const writes = ctx.quick ? { ours: 15, flock: 3 } : { ours: 100, flock: 15 };
  const setups = [...counts.map((procs) => ({ readers: 'ours', procs })), ...(flockAvailable() ? [{ readers: 'flock', procs: FLOCK_READERS }] : [])];
  const acc = setups.map(() => ({ waits: [], starved: 0, writerCpuUs: 0, writerSwitches: 0, readerCpuUs: 0, readerSwitches: 0, holds: 0 }));
  for (let r = 0; r < rounds; r++) {
    for (const i of ctx.rotate([...setups.keys()], r)) {
      const result = await oneRun(ctx, setups[i], writes[setups[i].readers], timeoutMs);
      const a = acc[i];
      a.waits.push(...result.waitsMs);
      a.starved += result.starved;
      a.writerCpuUs += result.usage.cpuUs;
      a.writerSwitches += result.usage.vcsw + result.usage.ivcsw;
      a.holds += result.readerAcquisitions;
      if (result.readerUsage) {
        a.readerCpuUs += result.readerUsage.cpuUs;
        a.readerSwitches += result.readerUsage.vcsw + result.readerUsage.ivcsw;
      }
    }
  }
  const summary = setups.map(({ readers, procs }, i) => {
    const { waits: w, starved, holds } = acc[i];
    const ours = readers === 'ours';
    return {
      readers,
      procs,
      writes: w.length,
      starved,
      p50Ms: median(w),
      p99Ms: quantile(w, 0.99),
      maxMs: max(w),
      maxHolds: max(w) / HOLD_MS,
      // The writer's whole loop (pauses included), per write.
      writerCpuUsPerWrite: acc[i].writerCpuUs / w.length,
      writerSwitchesPerWrite: acc[i].writerSwitches / w.length,
      // Every reader process over its whole run, per shared hold.
      readerHolds: ours ? holds : undefined,
      readerCpuUsPerHold: ours ? acc[i].readerCpuUs / holds : undefined,
      readerSwitchesPerHold: ours ? acc[i].readerSwitches / holds : undefined,
    };
  });
  heading(`7. ${title} (N reader processes × ${LOOPS} overlapping loops of ${HOLD_MS} ms shared holds; a writer in another process, ${timeoutMs} ms timeout; ${rounds} round(s))`);
  table(
    ['readers', 'processes', 'writes', 'p50 ms', 'p99 ms', 'max ms', 'max in reader holds', 'starved (timed out)', 'writer CPU µs/write', 'ctx sw/write', 'reader CPU µs/hold', 'ctx sw/hold'],
    summary.map((s) => {
      const capped = s.starved > 0 ? '≥ ' : '';
      return [
        s.readers === 'ours' ? 'native-file-lock { shared: true }' : 'flock(1) -s (outside the library)',
        s.procs,
        s.writes,
        fmt(s.p50Ms, 1),
        capped + fmt(s.p99Ms, 1),
        capped + fmt(s.maxMs, 1),
        capped + fmt(s.maxHolds, 1),
        `${s.starved}/${s.writes}`,
        fmt(s.writerCpuUsPerWrite),
        fmt(s.writerSwitchesPerWrite),
        fmt(s.readerCpuUsPerHold),
        fmt(s.readerSwitchesPerHold),
      ];
    }),
  );
  if (!flockAvailable()) console.log('  (flock(1) is not installed: its readers are left out)');
  return { rounds, holdMs: HOLD_MS, timeoutMs, counts, summary };
}
