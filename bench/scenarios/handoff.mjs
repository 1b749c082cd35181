// Scenario 3: how long after one process releases does a blocked waiter in
// another process hold the lock? Both stamp CLOCK_MONOTONIC, which every
// process shares, so the latency is t(acquired in B) - t(release in A). Each
// handoff's CPU time and context switches are the waiter's over its wait
// (blocked 1-2 ms) plus the holder's over its release.
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';

import { fmt, heading, ratioText, table } from '../lib/format.mjs';
import { max, median, quantile, ratio } from '../lib/stats.mjs';

export const title = 'Handoff latency';

async function handoffRun(ctx, contender, count) {
  const resource = join(ctx.dir(`handoff-${contender}`), 'resource');
  writeFileSync(resource, '');
  const spawnEnd = (role) =>
    contender === 'c' || contender === 'c-loop'
      ? ctx.c([contender === 'c' ? 'handoff' : 'handoff-loop', `${resource}.lock`], `${contender} handoff ${role}`)
      : ctx.node('handoff.mjs', ['--contender', contender, '--path', resource], `${contender} handoff ${role}`);
  const holder = spawnEnd('holder');
  const waiter = spawnEnd('waiter');
  const latencies = [];
  const usages = [];
  // "STAMP CPU_US VCSW IVCSW"
  const parse = (line) => {
    const [t, cpuUs, vcsw, ivcsw] = line.split(' ').map(Number);
    return { t, cpuUs, switches: vcsw + ivcsw };
  };
  try {
    await Promise.all([holder.expect('ready'), waiter.expect('ready')]);
    // The first handoffs compile the waiting path; they are not measured.
    const warmup = 10;
    for (let i = 0; i < count + warmup; i++) {
      holder.send('hold');
      await holder.expect('held');
      waiter.send('wait');
      await waiter.expect('waiting');
      // Long enough for the waiter to be parked in its wait, varied so a
      // polling waiter's schedule cannot line up with the release.
      holder.send(`release ${1000 + Math.floor(Math.random() * 1000)}`);
      const released = parse(await holder.expect('released'));
      const acquired = parse(await waiter.expect('acquired'));
      if (i >= warmup) {
        latencies.push((acquired.t - released.t) / 1000);
        usages.push({ cpuUs: released.cpuUs + acquired.cpuUs, switches: released.switches + acquired.switches });
      }
    }
    holder.send('quit');
    waiter.send('quit');
    await Promise.all([holder.done(), waiter.done()]);
  } catch (error) {
    holder.proc.kill('SIGKILL');
    waiter.proc.kill('SIGKILL');
    throw error;
  }
  return { latencies, usages };
}

export async function run(ctx) {
  const rounds = ctx.quick ? 2 : 3;
  const count = ctx.quick ? { c: 60, 'c-loop': 60, ours: 60, sync: 60, fsne: 60, plf: 20 } : { c: 200, 'c-loop': 200, ours: 200, sync: 200, fsne: 200, plf: 60 };
  // c-loop is the floor for any waiter that lives in an event loop (ours,
  // fsne): C's handoff plus the hop from a wait thread to the loop's thread.
  // sync blocks on the JavaScript thread itself, with no hop.
  const names = ctx.contenders(['c', 'c-loop', 'ours', 'sync', 'fsne', 'plf']);
  const latencies = Object.fromEntries(names.map((n) => [n, []]));
  const usages = Object.fromEntries(names.map((n) => [n, []]));
  for (let r = 0; r < rounds; r++) {
    for (const name of ctx.rotate(names, r)) {
      const got = await handoffRun(ctx, name, count[name]);
      latencies[name].push(...got.latencies);
      usages[name].push(...got.usages);
    }
  }
  const mean = (xs) => xs.reduce((s, x) => s + x, 0) / xs.length;
  const summary = Object.fromEntries(
    names.map((n) => [
      n,
      {
        count: latencies[n].length,
        p50Us: median(latencies[n]),
        p99Us: quantile(latencies[n], 0.99),
        maxUs: max(latencies[n]),
        cpuUsPerHandoff: mean(usages[n].map((u) => u.cpuUs)),
        switchesPerHandoff: mean(usages[n].map((u) => u.switches)),
      },
    ]),
  );
  const ratios = {
    p50OursOverC: ratio(summary.ours?.p50Us, summary.c?.p50Us),
    p99OursOverC: ratio(summary.ours?.p99Us, summary.c?.p99Us),
    p50OursOverFsne: ratio(summary.ours?.p50Us, summary.fsne?.p50Us),
    p50OursOverCLoop: ratio(summary.ours?.p50Us, summary['c-loop']?.p50Us),
    p50SyncOverC: ratio(summary.sync?.p50Us, summary.c?.p50Us),
  };
  heading(`3. ${title} (release in one process → acquire in another; ${rounds} rounds alternating)`);
  table(
    ['contender', 'handoffs', 'p50 µs', 'p99 µs', 'max µs', 'p50 vs C', 'p99 vs C', 'CPU µs/handoff', 'ctx sw/handoff'],
    names.map((n) => [
      ctx.label(n),
      summary[n].count,
      fmt(summary[n].p50Us, 1),
      fmt(summary[n].p99Us, 1),
      fmt(summary[n].maxUs, 1),
      ratioText(ratio(summary[n].p50Us, summary.c?.p50Us)),
      ratioText(ratio(summary[n].p99Us, summary.c?.p99Us)),
      fmt(summary[n].cpuUsPerHandoff),
      fmt(summary[n].switchesPerHandoff),
    ]),
  );
  return { rounds, count, summary, ratios };
}
