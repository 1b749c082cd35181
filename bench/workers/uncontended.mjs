// One contender, one process, nobody else: the cost of a lock cycle.
import { args, finish, usage, usageSince } from '../lib/worker-io.mjs';
import { loadContender } from '../lib/contenders.mjs';

const a = args();
const { run, runSync } = await loadContender(a.contender);
const cycles = Number(a.cycles);
const noop = () => {};

let t0;
let t1;
let used;
if (runSync) {
  for (let i = 0, n = Number(a.warmup ?? 1000); i < n; i++) runSync(a.path, noop);
  used = usage();
  t0 = performance.now();
  for (let i = 0; i < cycles; i++) runSync(a.path, noop);
  t1 = performance.now();
} else {
  for (let i = 0, n = Number(a.warmup ?? 1000); i < n; i++) await run(a.path, noop);
  used = usage();
  t0 = performance.now();
  for (let i = 0; i < cycles; i++) await run(a.path, noop);
  t1 = performance.now();
}
finish({ cycles, usPerCycle: ((t1 - t0) * 1000) / cycles, usage: usageSince(used) });
