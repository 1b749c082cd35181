// RSS and open descriptors around many lock cycles in one process. Run with
// --expose-gc so both samples are taken on a collected heap.
import { readdirSync, readlinkSync } from 'node:fs';
import { dirname } from 'node:path';

import { args, finish, usage, usageSince } from '../lib/worker-io.mjs';
import { loadContender } from '../lib/contenders.mjs';

const a = args();
const { run } = await loadContender(a.contender);
const cycles = Number(a.cycles);
const noop = () => {};

const lockDir = dirname(a.path);

/** What each open descriptor refers to ("pipe:[123]", a path, ...). */
function descriptors() {
  const out = [];
  for (const fd of readdirSync('/proc/self/fd')) {
    try {
      out.push(readlinkSync(`/proc/self/fd/${fd}`));
    } catch {
      // The descriptor readdir itself used, closed by now.
    }
  }
  return out;
}

function sample() {
  globalThis.gc?.();
  globalThis.gc?.();
  const fds = descriptors();
  const { rss, heapUsed } = process.memoryUsage();
  return { rss, heapUsed, fds: fds.length, lockFds: fds.filter((f) => f.startsWith(lockDir + '/')).length, kinds: summarize(fds) };
}

function summarize(fds) {
  const kinds = {};
  for (const f of fds) {
    const kind = f.startsWith(lockDir + '/') ? 'lock file' : f.replace(/\[\d+\]$/, '').replace(/^\/.*/, 'other file');
    kinds[kind] = (kinds[kind] ?? 0) + 1;
  }
  return kinds;
}

const initial = sample();
// Warm up first, so "before" already has the JIT code, the line, the slot and
// the lock file's descriptor that the loop reuses.
for (let i = 0; i < 5000; i++) await run(a.path, noop);
const before = sample();
const used = usage();
const t0 = performance.now();
for (let i = 0; i < cycles; i++) await run(a.path, noop);
const ms = performance.now() - t0;
const spent = usageSince(used);
const after = sample();

// The library closes an idle lock file's descriptor after a second or two:
// wait for the count to come back to where it was before the first lock.
const idleStart = performance.now();
const deadline = idleStart + Number(a.idleWaitMs ?? 5000);
let idle = sample();
while ((idle.fds > initial.fds || idle.lockFds > 0) && performance.now() < deadline) {
  await new Promise((resolve) => setTimeout(resolve, 100));
  idle = sample();
}
finish({ cycles, ms, usage: spent, initial, before, after, idle, idleWaitedMs: Math.round(performance.now() - idleStart) });
