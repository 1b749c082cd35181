// Handoff latency, one end: the driver makes one process hold the lock and
// another wait for it, then has the holder release. Both stamp with the
// monotonic clock every process shares (see flock_cycle.c for the protocol).
import { args, fail, finish, monoNs, nextLine, say } from '../lib/worker-io.mjs';
import { loadContender } from '../lib/contenders.mjs';

const a = args();
const { run, acquire } = await loadContender(a.contender, { contended: true });
let release;
let t1 = 0;
const stamp = () => {
  t1 = monoNs();
};

say('ready');
for (;;) {
  const line = await nextLine();
  if (line === 'hold') {
    release = await acquire(a.path);
    say('held');
  } else if (line === 'wait') {
    say('waiting');
    await run(a.path, stamp);
    say(`acquired ${t1}`);
  } else if (line.startsWith('release ')) {
    await new Promise((resolve) => setTimeout(resolve, Number(line.slice(8)) / 1000));
    const t0 = monoNs();
    await release();
    say(`released ${t0}`);
  } else if (line === 'quit') {
    finish({});
    break;
  } else {
    fail(new Error(`unknown command '${line}'`));
  }
}
