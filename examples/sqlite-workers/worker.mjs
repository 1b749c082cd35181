// One worker process: migrates the schema, then adds tasks, each in a read-then-write
// transaction. Started by main.mjs with: <database> <tasks> <lock|no-lock>.
import Database from 'better-sqlite3';
import { withFileLock } from 'native-file-lock';

const [file, tasks, mode] = process.argv.slice(2);
const locked = mode === 'lock';
const db = new Database(file);

// Runs fn under the lock on the database, or bare with --no-lock to show what goes wrong.
const guarded = (fn) => (locked ? withFileLock(file, fn) : fn());

// Each step runs once, in order; PRAGMA user_version records how far the database got.
const migrations = [
  'CREATE TABLE tasks (id INTEGER PRIMARY KEY, title TEXT NOT NULL)',
  'ALTER TABLE tasks ADD COLUMN worker INTEGER',
];

const migrate = db.transaction(() => {
  const version = db.pragma('user_version', { simple: true });
  migrations.slice(version).forEach((sql, i) => {
    db.exec(sql);
    db.pragma(`user_version = ${version + i + 1}`);
  });
});

// A pause between the read and the write, standing in for real work: it widens the
// window in which another process can write (SQLite then fails this transaction).
const pause = (ms) => Atomics.wait(new Int32Array(new SharedArrayBuffer(4)), 0, 0, ms);

const addTask = db.transaction((title) => {
  const { next } = db.prepare('SELECT coalesce(max(id), 0) + 1 AS next FROM tasks').get();
  pause(1);
  db.prepare('INSERT INTO tasks (id, title, worker) VALUES (?, ?, ?)').run(next, title, process.pid);
  return next;
});

const report = { ids: [], failures: [] };
// Unlocked, a transaction that loses a race is lost: recorded, not retried.
const attempt = async (step, fn) => {
  try {
    return await guarded(fn);
  } catch (error) {
    report.failures.push({ step, code: error.code ?? error.name, message: error.message });
  }
};

// Setting WAL mode and migrating write too: a write outside the lock that lands between
// a locked transaction's read and its write makes that transaction fail at once.
await attempt('migration', () => {
  db.pragma('journal_mode = WAL');
  migrate();
});

// Wait for the others, so that every worker writes at the same time.
process.send('ready');
await new Promise((resolve) => process.once('message', resolve));

for (let i = 0; i < Number(tasks); i++) {
  const id = await attempt('task', () => addTask(`task ${i} of ${process.pid}`));
  if (id !== undefined) report.ids.push(id);
}

db.close();
process.send(report);
