// Contended waits, one process of them:
//   --role holder: 'hold' takes the lock and answers 'held'; 'release'
//     releases it and answers 'released'.
//   --role waiter --api withFileLockSync|lockSync|withFileLock: 'wait'
//     answers 'waiting', blocks until the lock is its own, releases it and
//     answers 'acquired {json}' with the CPU time and context switches of
//     this process (all threads) over the wait.
// 'quit' ends either.
import { writeFileSync } from 'node:fs';

import { lock, lockSync, withFileLock, withFileLockSync } from 'native-file-lock';

import { args, fail, finish, nextLine, say, usage, usageSince } from '../lib/worker-io.mjs';

const a = args();
const noop = () => {};
const WAITS = {
  withFileLockSync: (path) => withFileLockSync(path, noop),
  lockSync: (path) => lockSync(path).release(),
  withFileLock: (path) => withFileLock(path, noop),
};
const wait = a.role === 'waiter' ? WAITS[a.api] : undefined;
if (a.role === 'waiter' && !wait) fail(new Error(`unknown --api '${a.api}'`));

// Compile the calls on a lock of our own first.
const warm = `${a.path}.warm-${process.pid}`;
writeFileSync(warm, '');
for (let i = 0; i < 200; i++) await (wait ?? WAITS.withFileLock)(warm);

let held;
say('ready');
for (;;) {
  const line = await nextLine();
  if (line === 'hold') {
    held = await lock(a.path);
    say('held');
  } else if (line === 'release') {
    await held.release();
    say('released');
  } else if (line === 'wait') {
    say('waiting');
    const before = usage();
    const t0 = performance.now();
    await wait(a.path);
    const ms = performance.now() - t0;
    say(`acquired ${JSON.stringify({ ms, ...usageSince(before) })}`);
  } else if (line === 'quit') {
    finish({});
    break;
  } else {
    fail(new Error(`unknown command '${line}'`));
  }
}
