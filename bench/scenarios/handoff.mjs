// Scenario 3: how long after one process releases does a blocked waiter in
// another process hold the lock? Both stamp CLOCK_MONOTONIC, which every
// process shares, so the latency is t(acquired in B) - t(release in A).
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';

import { fmt, heading, ratioText, table } from '../lib/format.mjs';
import { max, median, quantile, ratio } from '../lib/stats.mjs';

export const title = 'Handoff latency';

async function handoffRun(ctx, contender, count) {
  const resource = join(ctx.dir(`handoff-${contender}`), 'resource');
  writeFileSync(resource, '');
  const spawnEnd = (role) =>
    contender === 'c'
      ? ctx.c(['handoff', `${resource}.lock`], `C handoff ${role}`)
      : ctx.node('handoff.mjs', ['--contender', contender, '--path', resource], `${contender} handoff ${role}`);
  const holder = spawnEnd('holder');
  const waiter = spawnEnd('waiter');
  const latencies = [];
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
      const t0 = Number(await holder.expect('released'));
      const t1 = Number(await waiter.expect('acquired'));
      if (i >= warmup) latencies.push((t1 - t0) / 1000);
    }
    holder.send('quit');
    waiter.send('quit');
    await Promise.all([holder.done(), waiter.done()]);
  } catch (error) {
    holder.proc.kill('SIGKILL');
    waiter.proc.kill('SIGKILL');
    throw error;
  }
  return latencies;
}

export async function run(ctx) {
  const rounds = ctx.quick ? 2 : 3;
  const count = ctx.quick ? { c: 60, ours: 60, fsne: 60, plf: 20 } : { c: 200, ours: 200, fsne: 200, plf: 60 };
  const names = ctx.contenders(['c', 'ours', 'fsne', 'plf']);
  const latencies = Object.fromEntries(names.map((n) => [n, []]));
  for (let r = 0; r < rounds; r++) {
    for (const name of ctx.rotate(names, r)) latencies[name].push(...(await handoffRun(ctx, name, count[name])));
  }
  const summary = Object.fromEntries(
    names.map((n) => [n, { count: latencies[n].length, p50Us: median(latencies[n]), p99Us: quantile(latencies[n], 0.99), maxUs: max(latencies[n]) }]),
  );
  const ratios = {
    p50OursOverC: ratio(summary.ours?.p50Us, summary.c?.p50Us),
    p99OursOverC: ratio(summary.ours?.p99Us, summary.c?.p99Us),
    p50OursOverFsne: ratio(summary.ours?.p50Us, summary.fsne?.p50Us),
  };
  heading(`3. ${title} (release in one process → acquire in another; ${rounds} rounds alternating)`);
  table(
    ['contender', 'handoffs', 'p50 µs', 'p99 µs', 'max µs', 'p50 vs C', 'p99 vs C'],
    names.map((n) => [
      ctx.label(n),
      summary[n].count,
      fmt(summary[n].p50Us, 1),
      fmt(summary[n].p99Us, 1),
      fmt(summary[n].maxUs, 1),
      ratioText(ratio(summary[n].p50Us, summary.c?.p50Us)),
      ratioText(ratio(summary[n].p99Us, summary.c?.p99Us)),
    ]),
  );
  return { rounds, count, summary, ratios };
}
