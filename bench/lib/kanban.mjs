// The kanban schema and transaction of the SQLite scenario, shared by the
// driver (which creates the database) and the workers.

export const SCHEMA = `
  CREATE TABLE IF NOT EXISTS tasks (id INTEGER PRIMARY KEY, title TEXT NOT NULL, status TEXT NOT NULL, worker INTEGER NOT NULL, created INTEGER NOT NULL);
  CREATE TABLE IF NOT EXISTS events (id INTEGER PRIMARY KEY, task_id INTEGER NOT NULL REFERENCES tasks(id), kind TEXT NOT NULL, at INTEGER NOT NULL);
  CREATE TABLE IF NOT EXISTS runs (id INTEGER PRIMARY KEY, task_id INTEGER NOT NULL REFERENCES tasks(id), worker INTEGER NOT NULL, status TEXT NOT NULL, started INTEGER NOT NULL);
  CREATE INDEX IF NOT EXISTS events_task ON events(task_id);
  CREATE INDEX IF NOT EXISTS runs_task ON runs(task_id);
`;

/** Opens path the way every mode does and returns the transaction (a better-sqlite3 transaction function). */
export function openKanban(Database, path, worker) {
  const db = new Database(path);
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
  return { db, body };
}
