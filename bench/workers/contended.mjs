// One of several processes taking the same lock in a loop. The critical
// section reads a counter file and writes it back plus one, so a lock that
// lets two holders in loses updates the driver can count.
import { openSync, readSync, rmSync, writeFileSync, writeSync } from 'node:fs';

import { args, finish, monoNs, nextLine, say, usage, usageSince } from '../lib/worker-io.mjs';
import { loadContender } from '../lib/contenders.mjs';

const WIDTH = 20;
const a = args();
const { run } = await loadContender(a.contender, { contended: true });
const cycles = Number(a.cycles);
const counter = openSync(a.counter, 'r+');
const buf = Buffer.alloc(WIDTH);
const waits = new Float64Array(cycles);

function increment() {
  if (readSync(counter, buf, 0, WIDTH, 0) !== WIDTH) throw new Error('short read of the counter file');
  const value = Number(buf.toString('latin1'));
  writeSync(counter, String(value + 1).padStart(WIDTH, '0'), 0, 'latin1');
}

// Warm the JIT on a lock of our own (for warmupMs, at most 20000 cycles), so
// that compilation is neither in the waits nor in the CPU time measured; the
// lock files stay inside the run's temporary directory.
const warm = `${a.path}.warm-${process.pid}`;
writeFileSync(warm, '');
const warmUntil = performance.now() + Number(a.warmupMs ?? 300);
for (let i = 0; i < 20000 && performance.now() < warmUntil; i++) await run(warm, () => {});
rmSync(warm);

say('ready');
await nextLine();
const used = usage();
const start = monoNs();
for (let i = 0; i < cycles; i++) {
  const t0 = performance.now();
  await run(a.path, () => {
    waits[i] = (performance.now() - t0) * 1000;
    increment();
  });
}
const end = monoNs();
finish({ start, end, usage: usageSince(used), waits: Array.from(waits, (w) => Math.round(w * 100) / 100) });
