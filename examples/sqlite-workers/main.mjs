// A pool of worker processes writing one SQLite database in WAL mode.
//
//   node examples/sqlite-workers/main.mjs [--no-lock] [--workers 4] [--tasks 50] [--dir folder]
//
// With the lock every transaction commits; with --no-lock some fail with SQLITE_BUSY.
import Database from 'better-sqlite3';
import { fork } from 'node:child_process';
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { parseArgs } from 'node:util';

const { values: options } = parseArgs({
  options: {
    'no-lock': { type: 'boolean', default: false },
    workers: { type: 'string', default: '4' },
    tasks: { type: 'string', default: '50' },
    dir: { type: 'string' },
  },
});
// The workers run in this folder and write tasks.db there, as README.md's first example does.
const dir = options.dir ?? mkdtempSync(join(tmpdir(), 'sqlite-workers-'));
const file = join(dir, 'tasks.db');
const workers = Number(options.workers);
const mode = options['no-lock'] ? 'no-lock' : 'lock';

const pool = Array.from({ length: workers }, () =>
  fork(new URL('./worker.mjs', import.meta.url), [options.tasks, mode], { cwd: dir }),
);
const message = (child) =>
  new Promise((resolve, reject) => {
    child.once('message', resolve);
    child.once('exit', (code) => reject(new Error(`worker ${child.pid} exited with code ${code}`)));
  });

// Start the transactions together, once every worker has migrated.
await Promise.all(pool.map(message));
const reports = Promise.all(pool.map(message));
for (const child of pool) child.send('go');

const results = await reports;
const ids = results.flatMap((r) => r.ids);
const failures = results.flatMap((r) => r.failures);
const failed = (step, busy) =>
  failures.filter((f) => f.step === step && f.code.startsWith('SQLITE_BUSY') === busy).length;

const db = new Database(file, { readonly: true });
const rows = db.prepare('SELECT count(*) AS n FROM tasks').get().n;
const integrity = db.pragma('integrity_check', { simple: true });
const version = db.pragma('user_version', { simple: true });
db.close();

const unique = new Set(ids).size === ids.length;
console.log(`database: ${file} (${mode})`);
console.log(`migrations: ${failed('migration', true) + failed('migration', false)} of ${workers} failed`);
console.log(`transactions: ${workers * Number(options.tasks)} attempted, ${ids.length} committed, ${failed('task', true)} failed with SQLITE_BUSY, ${failed('task', false)} failed otherwise`);
console.log(`rows: ${rows}, ids unique: ${unique ? 'yes' : 'no'}, user_version: ${version}, integrity_check: ${integrity}`);
for (const error of new Set(failures.map((f) => `${f.step}: ${f.code}: ${f.message}`))) console.log(`  ${error}`);

const ok = failures.length === 0 && unique && rows === ids.length && integrity === 'ok';
// Losing transactions is what --no-lock demonstrates; with the lock it is a failure.
process.exitCode = ok || mode === 'no-lock' ? 0 : 1;
