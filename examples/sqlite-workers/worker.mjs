// One worker process: migrates the schema, then adds tasks, each in a read-then-write
// transaction. Started by main.mjs in the database's folder with: <tasks> <lock|no-lock>.
import Database from 'better-sqlite3';
import * as nativeFileLock from 'native-file-lock';

const [tasks, mode] = process.argv.slice(2);
const report = { ids: [], failures: [] };

// The region below is README.md's first example, word for word. Here its withFileLock also
// records a failed step instead of ending the process (unlocked, a transaction that loses a race
// is lost, not retried), and with --no-lock runs the step with no lock at all.
let steps = 0;
async function withFileLock(path, fn) {
  const step = steps++ === 0 ? 'migration' : 'task';
  try {
    return await (mode === 'lock' ? nativeFileLock.withFileLock(path, fn) : fn());
  } catch (error) {
    report.failures.push({ step, code: error.code ?? error.name, message: error.message });
  }
}

// #region README.md's first example
const db = new Database('tasks.db');

// Schema steps, each run once and in order; PRAGMA user_version records how far the database got.
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

// Setting WAL mode and migrating write too: a writer that starts while a transaction of
// another process is between its read and its write makes that transaction fail.
await withFileLock('tasks.db', () => {
  db.pragma('journal_mode = WAL');
  migrate();
});

const addTask = db.transaction((title) => {
  const { next } = db.prepare('SELECT coalesce(max(id), 0) + 1 AS next FROM tasks').get();
  db.prepare('INSERT INTO tasks (id, title, worker) VALUES (?, ?, ?)').run(next, title, process.pid);
  return next;
});

// Every process that writes tasks.db does this; tasks.db.lock sits next to it.
const id = await withFileLock('tasks.db', () => addTask('write the README'));
// #endregion

if (id !== undefined) report.ids.push(id);

// Wait for the others, so that every worker writes at the same time.
process.send('ready');
await new Promise((resolve) => process.once('message', resolve));

for (let i = 1; i < Number(tasks); i++) {
  const next = await withFileLock('tasks.db', () => addTask(`task ${i} of ${process.pid}`));
  if (next !== undefined) report.ids.push(next);
}

db.close();
process.send(report);
