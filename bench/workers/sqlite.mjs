// Kanban-style write transactions from several processes on one WAL
// database. Modes:
//   immediate  busy_timeout + BEGIN IMMEDIATE (SQLite's own answer)
//   deferred   busy_timeout + deferred BEGIN: a reader that later writes can
//              be refused with SQLITE_BUSY*, which busy_timeout cannot cure
//   fsne       fs-native-extensions lock around a deferred transaction
//   ours       withFileLock around a deferred transaction
//   sync       withFileLockSync around a deferred transaction: better-sqlite3
//              is synchronous, and so is this whole transaction
// A failed transaction is counted, rolled back and not retried.
import { rmSync } from 'node:fs';

import Database from 'better-sqlite3';

import { args, finish, monoNs, nextLine, say, usage, usageSince } from '../lib/worker-io.mjs';
import { loadContender } from '../lib/contenders.mjs';
import { SCHEMA, openKanban } from '../lib/kanban.mjs';

const a = args();
const mode = a.mode;
const count = Number(a.transactions);
const worker = Number(a.worker);

let lockAround = (path, fn) => fn();
if (mode === 'fsne' || mode === 'ours') lockAround = (await loadContender(mode, { contended: true })).run;
else if (mode === 'sync') lockAround = (await loadContender(mode, { contended: true })).runSync;
else if (mode !== 'immediate' && mode !== 'deferred') throw new Error(`unknown mode '${mode}'`);

function transaction(path, body) {
  if (mode === 'immediate') return () => body.immediate();
  if (mode === 'deferred') return () => body.deferred();
  return () => lockAround(path, () => body.deferred());
}

// Warm the JIT (better-sqlite3's wrappers, the lock path, this loop) on a
// database of our own, so the measured run compares steady states. V8
// optimizes a function after thousands of calls, not hundreds: with a few
// hundred, the optimizing compiler ran during the measured run, on the same
// 2 CPUs, and charged the modes with the most JavaScript for it.
const warmPath = `${a.db}.warm-${process.pid}`;
{
  const warm = new Database(warmPath);
  warm.pragma('journal_mode = WAL');
  warm.exec(SCHEMA);
  warm.close();
  const { db, body } = openKanban(Database, warmPath, worker);
  const run = transaction(warmPath, body);
  for (let i = 0, n = Number(a.warmup ?? 200); i < n; i++) await run();
  db.close();
  for (const suffix of ['', '-wal', '-shm', '.lock']) rmSync(warmPath + suffix, { force: true });
}

const { db, body } = openKanban(Database, a.db, worker);
const transact = transaction(a.db, body);
let committed = 0;
const failed = {};
say('ready');
await nextLine();
const used = usage();
const start = monoNs();
for (let i = 0; i < count; i++) {
  try {
    await transact();
    committed++;
  } catch (error) {
    const code = error?.code ?? String(error);
    if (typeof code !== 'string' || !code.startsWith('SQLITE_')) throw error;
    failed[code] = (failed[code] ?? 0) + 1;
  }
}
const end = monoNs();
const spent = usageSince(used);
db.close();
finish({ start, end, usage: spent, committed, failed });
