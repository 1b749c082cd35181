// Scenario 5: kanban-style transactions from 4 processes on one WAL database.
import { createRequire } from 'node:module';
import { join } from 'node:path';

import { runTogether } from '../lib/child.mjs';
import { fmt, heading, ratioText, table } from '../lib/format.mjs';
import { SCHEMA } from '../lib/kanban.mjs';
import { max, median, min, pairedRatio } from '../lib/stats.mjs';

const require = createRequire(import.meta.url);

export const title = 'SQLite';

const MODES = {
  immediate: 'busy_timeout + BEGIN IMMEDIATE',
  deferred: 'busy_timeout + deferred BEGIN',
  fsne: 'fs-native-extensions + deferred',
  ours: 'withFileLock + deferred',
  sync: 'withFileLockSync + deferred',
};

function createDatabase(path) {
  const Database = require('better-sqlite3');
  const db = new Database(path);
  db.pragma('journal_mode = WAL');
  db.exec(SCHEMA);
  db.close();
}

function inspect(path) {
  const Database = require('better-sqlite3');
  const db = new Database(path, { readonly: true });
  try {
    const integrity = db.pragma('integrity_check', { simple: true });
    const count = (table) => db.prepare(`SELECT count(*) AS n FROM ${table}`).get().n;
    const tasks = count('tasks');
    const orphans = db.prepare('SELECT count(*) AS n FROM tasks t WHERE (SELECT count(*) FROM events e WHERE e.task_id = t.id) != 1 OR (SELECT count(*) FROM runs r WHERE r.task_id = t.id) != 1').get().n;
    const notUpdated = db.prepare("SELECT count(*) AS n FROM tasks WHERE status != 'in_progress'").get().n;
    // Task ids are consecutive in commit order, so a change of worker between
    // neighbours is one pass of the write lock from a process to another.
    const switches = db.prepare('SELECT count(*) AS n FROM tasks a JOIN tasks b ON b.id = a.id + 1 WHERE a.worker != b.worker').get().n;
    return { integrity, tasks, events: count('events'), runs: count('runs'), inconsistent: orphans + notUpdated, switches };
  } finally {
    db.close();
  }
}

async function sqliteRun(ctx, mode, procs, transactions) {
  const path = join(ctx.dir(`sqlite-${mode}`), 'kanban.db');
  createDatabase(path);
  const children = [];
  for (let i = 0; i < procs; i++) {
    children.push(ctx.node('sqlite.mjs', ['--mode', mode, '--db', path, '--transactions', String(transactions), '--worker', String(i + 1), '--warmup', String(ctx.quick ? 1500 : 3000)], `sqlite ${mode} worker ${i + 1}/${procs}`));
  }
  const results = await runTogether(children);
  const wallMs = (max(results.map((r) => r.end)) - min(results.map((r) => r.start))) / 1e6;
  const committed = results.reduce((s, r) => s + r.committed, 0);
  const failedByCode = {};
  for (const r of results) for (const [code, n] of Object.entries(r.failed)) failedByCode[code] = (failedByCode[code] ?? 0) + n;
  const failed = Object.values(failedByCode).reduce((s, n) => s + n, 0);
  const check = inspect(path);
  const start = min(results.map((r) => r.start));
  const finishMs = results.map((r) => (r.end - start) / 1e6);
  const sum = (k) => results.reduce((s, r) => s + r.usage[k], 0);
  return { mode, procs, transactions, wallMs, finishMs, cpuUsPerTx: sum('cpuUs') / (procs * transactions), switchesPerTx: (sum('vcsw') + sum('ivcsw')) / (procs * transactions), slowestOverFastest: max(finishMs) / min(finishMs), committed, failed, failedByCode, committedPerSec: committed / (wallMs / 1000), ...check };
}

export async function run(ctx) {
  const procs = 4;
  const rounds = ctx.quick ? 2 : 3;
  // Long enough that what happens once per process (the first waits reshape
  // the lock's code, and V8 optimizes it again) is not most of the run.
  const transactions = ctx.quick ? 600 : 3000;
  const modes = ctx.contenders(Object.keys(MODES));
  const runs = Object.fromEntries(modes.map((m) => [m, []]));
  for (let r = 0; r < rounds; r++) {
    for (const mode of ctx.rotate(modes, r)) runs[mode].push(await sqliteRun(ctx, mode, procs, transactions));
  }
  const summary = {};
  for (const m of modes) {
    const rs = runs[m];
    summary[m] = {
      committedPerSec: median(rs.map((x) => x.committedPerSec)),
      committed: rs.reduce((s, x) => s + x.committed, 0),
      failed: rs.reduce((s, x) => s + x.failed, 0),
      attempted: rs.length * procs * transactions,
      failedByCode: rs.reduce((acc, x) => {
        for (const [c, n] of Object.entries(x.failedByCode)) acc[c] = (acc[c] ?? 0) + n;
        return acc;
      }, {}),
      integrity: [...new Set(rs.map((x) => x.integrity))].join(', '),
      switchesPct: median(rs.map((x) => (100 * x.switches) / Math.max(1, x.committed - 1))),
      slowestOverFastest: median(rs.map((x) => x.slowestOverFastest)),
      cpuUsPerTx: median(rs.map((x) => x.cpuUsPerTx)),
      switchesPerTx: median(rs.map((x) => x.switchesPerTx)),
      rowsMatch: rs.every((x) => x.tasks === x.committed && x.events === x.committed && x.runs === x.committed && x.inconsistent === 0),
    };
  }
  const s = summary;
  const rate = (m) => runs[m]?.map((x) => x.committedPerSec);
  const ratios = {
    oursOverImmediate: pairedRatio(rate('ours'), rate('immediate')),
    oursOverFsne: pairedRatio(rate('ours'), rate('fsne')),
    syncOverImmediate: pairedRatio(rate('sync'), rate('immediate')),
  };
  heading(`5. ${title} (${procs} processes × ${transactions} transactions, WAL, synchronous=NORMAL; ${rounds} round(s))`);
  table(
    ['mode', 'committed/s', 'committed', 'failed', 'failed %', 'failures by code', 'integrity_check', 'rows consistent', 'switches %', 'slow/fast', 'CPU µs/tx', 'ctx sw/tx', 'vs ours'],
    modes.map((m) => [
      MODES[m],
      fmt(s[m].committedPerSec),
      s[m].committed,
      s[m].failed,
      fmt((100 * s[m].failed) / s[m].attempted, 1),
      Object.entries(s[m].failedByCode).map(([c, n]) => `${c} ${n}`).join(', ') || '-',
      s[m].integrity,
      s[m].rowsMatch ? 'yes' : 'NO',
      fmt(s[m].switchesPct, 1),
      ratioText(s[m].slowestOverFastest),
      fmt(s[m].cpuUsPerTx),
      fmt(s[m].switchesPerTx),
      ratioText(pairedRatio(rate(m), rate('ours'))),
    ]),
    { left: [0, 5] },
  );
  console.log('  switches %: share of consecutive commits made by different processes (how often the write lock changed process)');
  console.log(`  ours/IMMEDIATE ${ratioText(ratios.oursOverImmediate)}   sync/IMMEDIATE ${ratioText(ratios.syncOverImmediate)}   ours/fs-native-extensions ${ratioText(ratios.oursOverFsne)}`);
  return { procs, rounds, transactions, runs, summary, ratios };
}
