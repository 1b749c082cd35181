// Kanban-style write transactions from several processes on one WAL
// database. Modes:
//   immediate  busy_timeout + BEGIN IMMEDIATE (SQLite's own answer)
//   deferred   busy_timeout + deferred BEGIN: a reader that later writes can
//              be refused with SQLITE_BUSY*, which busy_timeout cannot cure
//   fsne       fs-native-extensions lock around a deferred transaction
//   ours       withFileLock around a deferred transaction
// A failed transaction is counted, rolled back and not retried.
import Database from 'better-sqlite3';

import { args, finish, monoNs, nextLine, say, usage, usageSince } from '../lib/worker-io.mjs';
import { loadContender } from '../lib/contenders.mjs';

const a = args();
const mode = a.mode;
const count = Number(a.transactions);
const worker = Number(a.worker);

const db = new Database(a.db);
db.pragma('busy_timeout = 5000');
db.pragma('synchronous = NORMAL');

const maxId = db.prepare('SELECT max(id) AS m FROM tasks');
const insertTask = db.prepare("INSERT INTO tasks (id, title, status, worker, created) VALUES (?, ?, 'todo', ?, ?)");
const insertEvent = db.prepare('INSERT INTO events (task_id, kind, at) VALUES (?, ?, ?)');
const insertRun = db.prepare("INSERT INTO runs (task_id, worker, status, started) VALUES (?, ?, 'queued', ?)");
const updateStatus = db.prepare('UPDATE tasks SET status = ? WHERE id = ?');

const body = db.transaction(() => {
  const id = (maxId.get().m ?? 0) + 1;
  const now = Date.now();
  insertTask.run(id, `task ${id} from worker ${worker}`, worker, now);
  insertEvent.run(id, 'created', now);
  insertRun.run(id, worker, now);
  updateStatus.run('in_progress', id);
});

let transact;
if (mode === 'immediate') transact = () => body.immediate();
else if (mode === 'deferred') transact = () => body.deferred();
else if (mode === 'fsne' || mode === 'ours') {
  const { run } = await loadContender(mode, { contended: true });
  transact = () => run(a.db, () => body.deferred());
} else throw new Error(`unknown mode '${mode}'`);

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
db.close();
finish({ start, end, usage: usageSince(used), committed, failed });
