// Scenario 8: what a contended waiter costs while it is blocked. One process
// holds the lock for HOLD_MS; waiters in other processes, blocked in
// withFileLockSync, lockSync or (for reference) withFileLock, measure their
// own CPU time and context switches (process.resourceUsage(), all threads)
// from the call to its return. A waiter that polls shows up as CPU time.
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';

import { fmt, heading, table } from '../lib/format.mjs';
import { max, median } from '../lib/stats.mjs';

export const title = 'Blocked waiters';

const HOLD_MS = 500;
// Two of each synchronous call, one asynchronous for reference.
const WAITERS = ['withFileLockSync', 'withFileLockSync', 'lockSync', 'lockSync', 'withFileLock'];
export const SYNC_APIS = ['withFileLockSync', 'lockSync'];

const sleep = (ms) => new Promise((resolve) => setTimeout(resolve, ms));

export async function run(ctx) {
  const rounds = ctx.quick ? 2 : 5;
  const resource = join(ctx.dir('sync-wait'), 'resource');
  writeFileSync(resource, '');
  const common = ['--path', resource];
  const holder = ctx.node('sync-wait.mjs', ['--role', 'holder', ...common], 'sync-wait holder');
  const waiters = WAITERS.map((api, i) => ctx.node('sync-wait.mjs', ['--role', 'waiter', '--api', api, ...common], `sync-wait waiter ${i + 1} (${api})`));
  const all = [holder, ...waiters];
  const samples = Object.fromEntries(WAITERS.map((api) => [api, []]));
  try {
    await Promise.all(all.map((c) => c.expect('ready')));
    for (let r = 0; r < rounds; r++) {
      holder.send('hold');
      await holder.expect('held');
      for (const w of waiters) w.send('wait');
      await Promise.all(waiters.map((w) => w.expect('waiting')));
      await sleep(HOLD_MS);
      holder.send('release');
      await holder.expect('released');
      const got = await Promise.all(waiters.map((w) => w.expect('acquired')));
      got.forEach((json, i) => {
        const s = JSON.parse(json);
        samples[WAITERS[i]].push({ ms: s.ms, cpuPct: (100 * s.cpuUs) / (s.ms * 1000), switches: s.vcsw + s.ivcsw });
      });
    }
    for (const c of all) c.send('quit');
    await Promise.all(all.map((c) => c.done()));
  } catch (error) {
    for (const c of all) c.proc.kill('SIGKILL');
    throw error;
  }
  const summary = Object.fromEntries(
    Object.entries(samples).map(([api, s]) => [
      api,
      {
        waits: s.length,
        waitMs: median(s.map((x) => x.ms)),
        cpuPct: median(s.map((x) => x.cpuPct)),
        maxCpuPct: max(s.map((x) => x.cpuPct)),
        switches: median(s.map((x) => x.switches)),
        maxSwitches: max(s.map((x) => x.switches)),
      },
    ]),
  );
  heading(`8. ${title} (a holder keeps the lock ${HOLD_MS} ms; ${WAITERS.length} waiters in other processes; ${rounds} round(s))`);
  table(
    ['waiter', 'waits', 'blocked ms (median)', 'CPU % of one CPU (median)', 'max', 'context switches per wait (median)', 'max'],
    Object.entries(summary).map(([api, s]) => [api, s.waits, fmt(s.waitMs, 0), fmt(s.cpuPct, 2), fmt(s.maxCpuPct, 2), fmt(s.switches, 0), fmt(s.maxSwitches, 0)]),
  );
  return { holdMs: HOLD_MS, rounds, waiters: WAITERS, samples, summary };
}
