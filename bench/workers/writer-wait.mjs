// Writer wait among readers, one process of it:
//   --role reader: shared holds of --hold ms in --loops staggered loops, so
//     that some reader of this process nearly always holds the lock, until
//     the driver says 'stop'; result { acquisitions, usage }.
//   --role writer: --count times, after a --gap ms pause, an exclusive lock
//     with a --timeout ms limit, held --hold ms; result { waitsMs, starved,
//     usage }.
//     A wait that times out counts as starved and as --timeout ms.
import { lock, withFileLock } from 'native-file-lock';

import { args, fail, finish, nextLine, say, usage, usageSince } from '../lib/worker-io.mjs';

const a = args();
const hold = Number(a.hold);
const sleep = (ms) => new Promise((resolve) => setTimeout(resolve, ms));

say('ready');
if ((await nextLine()) !== 'go') fail(new Error('expected go'));
const used = usage();

if (a.role === 'reader') {
  const loops = Number(a.loops);
  let stopped = false;
  let acquisitions = 0;
  const stop = nextLine().then(() => (stopped = true));
  const loop = async (i) => {
    await sleep((i * hold) / loops);
    const held = () => {
      acquisitions++;
      return sleep(hold);
    };
    while (!stopped) await withFileLock(a.path, held, { shared: true });
  };
  await Promise.all([stop, ...Array.from({ length: loops }, (_, i) => loop(i))]);
  finish({ acquisitions, usage: usageSince(used) });
} else {
  const timeout = Number(a.timeout);
  const waitsMs = [];
  let starved = 0;
  for (let i = 0; i < Number(a.count); i++) {
    await sleep(Number(a.gap));
    const t0 = performance.now();
    try {
      const held = await lock(a.path, { timeout });
      waitsMs.push(performance.now() - t0);
      await sleep(hold);
      await held.release();
    } catch (error) {
      if (error?.code !== 'ELOCKTIMEOUT') throw error;
      waitsMs.push(timeout);
      starved++;
    }
  }
  finish({ waitsMs, starved, usage: usageSince(used) });
}
