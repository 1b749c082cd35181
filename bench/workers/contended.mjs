// One of several processes taking the same lock in a loop. The critical
// section is one of:
//   --counter FILE  read a counter file and write it back plus one, so a
//                   lock that lets two holders in loses updates the driver
//                   can count;
//   --data FILE     read a small file and hash it (a reader's real work),
//                   counting digests that differ from the first one; with
//                   --shared 1 the lock is taken { shared: true }.
import { createHash } from 'node:crypto';
import { openSync, readFileSync, readSync, rmSync, writeFileSync, writeSync } from 'node:fs';

import { args, finish, monoNs, nextLine, say, usage, usageSince } from '../lib/worker-io.mjs';
import { loadContender } from '../lib/contenders.mjs';

const WIDTH = 20;
const a = args();
const { run } = await loadContender(a.contender, { contended: true, shared: a.shared === '1' });
const cycles = Number(a.cycles);
const waits = new Float64Array(cycles);

function counterWork(path) {
  const counter = openSync(path, 'r+');
  const buf = Buffer.alloc(WIDTH);
  return () => {
    if (readSync(counter, buf, 0, WIDTH, 0) !== WIDTH) throw new Error('short read of the counter file');
    const value = Number(buf.toString('latin1'));
    writeSync(counter, String(value + 1).padStart(WIDTH, '0'), 0, 'latin1');
  };
}

let mismatches = 0;
function dataWork(path) {
  const data = openSync(path, 'r');
  const buf = Buffer.alloc(readFileSync(path).length);
  const expected = createHash('sha256').update(readFileSync(path)).digest('hex');
  return () => {
    const n = readSync(data, buf, 0, buf.length, 0);
    if (createHash('sha256').update(buf.subarray(0, n)).digest('hex') !== expected) mismatches++;
  };
}

const work = a.data ? dataWork(a.data) : counterWork(a.counter);

// Warm the JIT on a lock of our own (for warmupMs, at most 20000 cycles), so
// that compilation is neither in the waits nor in the CPU time measured; the
// lock files stay inside the run's temporary directory.
const warm = `${a.path}.warm-${process.pid}`;
writeFileSync(warm, '');
const warmUntil = performance.now() + Number(a.warmupMs ?? 300);
const warmWork = a.data ? work : () => {};
for (let i = 0; i < 20000 && performance.now() < warmUntil; i++) await run(warm, warmWork);
rmSync(warm);
mismatches = 0;

say('ready');
await nextLine();
const used = usage();
const start = monoNs();
for (let i = 0; i < cycles; i++) {
  const t0 = performance.now();
  await run(a.path, () => {
    waits[i] = (performance.now() - t0) * 1000;
    work();
  });
}
const end = monoNs();
finish({ start, end, usage: usageSince(used), mismatches, waits: Array.from(waits, (w) => Math.round(w * 100) / 100) });
