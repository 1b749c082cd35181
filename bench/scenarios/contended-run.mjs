// One contended run, shared by the contended and the scaling scenarios:
// `procs` processes each take the lock `cycles` times around a
// read-increment-write of one counter file, or (readers: true) around reading
// and hashing a 4 KiB file, with shared locks when shared is true.
import { randomBytes } from 'node:crypto';
import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';

import { runTogether } from '../lib/child.mjs';
import { max, min, quantileSorted } from '../lib/stats.mjs';

const WIDTH = 20;

export const DATA_BYTES = 4096;

export async function contendedRun(ctx, contender, procs, cycles, { readers = false, shared = false } = {}) {
  const kind = readers ? (shared ? 'shared' : 'exclusive') : 'counter';
  const dir = ctx.dir(`contended-${contender}-${kind}-${procs}`);
  const resource = join(dir, 'resource');
  const counter = join(dir, 'counter');
  const data = join(dir, 'data');
  writeFileSync(resource, '');
  writeFileSync(counter, '0'.repeat(WIDTH));
  if (readers) writeFileSync(data, randomBytes(DATA_BYTES));
  const work = readers ? ['--data', data, '--shared', shared ? '1' : '0'] : ['--counter', counter];
  const children = [];
  for (let i = 0; i < procs; i++) {
    const label = `${contender} ${readers ? `${kind} reader` : 'contended worker'} ${i + 1}/${procs}`;
    children.push(
      contender === 'c'
        ? ctx.c(['contended', `${resource}.lock`, counter, String(cycles)], label)
        : ctx.node('contended.mjs', ['--contender', contender, '--path', resource, ...work, '--cycles', String(cycles), '--warmupMs', String(ctx.quick ? 50 : 300)], label),
    );
  }
  const results = await runTogether(children);
  // Readers change nothing: a lost update is a digest that did not match.
  const final = readers ? procs * cycles - results.reduce((n, r) => n + r.mismatches, 0) : Number(readFileSync(counter, 'latin1'));
  const start = min(results.map((r) => r.start));
  const end = max(results.map((r) => r.end));
  const wallMs = (end - start) / 1e6;
  const finishMs = results.map((r) => (r.end - start) / 1e6);
  const waits = new Float64Array(results.reduce((n, r) => n + r.waits.length, 0));
  let k = 0;
  for (const r of results) for (const w of r.waits) waits[k++] = w;
  waits.sort();
  const sum = (k) => results.reduce((s, r) => s + (r.usage?.[k] ?? NaN), 0);
  return {
    contender,
    // CPU time and context switches (all threads, all processes) per cycle:
    // what waiting costs the machine, not just the waiter.
    cpuUsPerCycle: sum('cpuUs') / (procs * cycles),
    switchesPerCycle: (sum('vcsw') + sum('ivcsw')) / (procs * cycles),
    procs,
    cycles,
    total: procs * cycles,
    final,
    lost: procs * cycles - final,
    wallMs,
    throughput: (procs * cycles) / (wallMs / 1000),
    waitUs: { p50: quantileSorted(waits, 0.5), p99: quantileSorted(waits, 0.99), max: waits[waits.length - 1] },
    finishMs,
    slowestOverFastest: max(finishMs) / min(finishMs),
    // How far apart the processes saw "go": large against wallMs means the
    // finish spread says little about fairness.
    startSkewMs: (max(results.map((r) => r.start)) - start) / 1e6,
  };
}
