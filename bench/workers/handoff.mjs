// Handoff latency, one end: the driver makes one process hold the lock and
// another wait for it, then has the holder release. Both stamp with the
// monotonic clock every process shares (see flock_cycle.c for the protocol)
// and report this process's CPU time and context switches over the wait and
// over the release.
import { args, fail, finish, monoNs, nextLine, say, usage, usageSince } from '../lib/worker-io.mjs';
import { loadContender } from '../lib/contenders.mjs';

const a = args();
const { run, acquire } = await loadContender(a.contender, { contended: true });
let release;
let t1 = 0;
const stamp = () => {
  t1 = monoNs();
};
const sayUsage = (word, t, before) => {
  const u = usageSince(before);
  say(`${word} ${t} ${u.cpuUs} ${u.vcsw} ${u.ivcsw}`);
};

say('ready');
for (;;) {
  const line = await nextLine();
  if (line === 'hold') {
    release = await acquire(a.path);
    say('held');
  } else if (line === 'wait') {
    say('waiting');
    const before = usage();
    await run(a.path, stamp);
    sayUsage('acquired', t1, before);
  } else if (line.startsWith('release ')) {
    await new Promise((resolve) => setTimeout(resolve, Number(line.slice(8)) / 1000));
    const before = usage();
    const t0 = monoNs();
    await release();
    sayUsage('released', t0, before);
  } else if (line === 'quit') {
    finish({});
    break;
  } else {
    fail(new Error(`unknown command '${line}'`));
  }
}
