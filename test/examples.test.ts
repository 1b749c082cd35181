// The examples, run as a user would: real processes writing real files in a temporary folder.
import { createHash } from 'node:crypto';
import { copyFileSync, existsSync, mkdirSync, readdirSync, readFileSync, symlinkSync, writeFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';

import { inspect } from 'native-file-lock';

import { Proc, runNode, skipWithout, tempDir, waitFor } from './helpers.js';

const root = fileURLToPath(new URL('..', import.meta.url));

// better-sqlite3 ships no types and @types/better-sqlite3 is not installed: describe what is used.
interface Database {
  prepare(sql: string): { pluck(): { get(): unknown; all(): unknown[] } };
  pragma(sql: string, options: { simple: true }): unknown;
  close(): void;
}
const Database = createRequire(import.meta.url)('better-sqlite3') as new (path: string, options: { readonly: true }) => Database;

/** Runs examples/<name>/main.mjs from the repository root and returns its output. */
async function example(name: string, args: readonly string[]): Promise<string> {
  const run = runNode(join(root, 'examples', name, 'main.mjs'), args, { cwd: root });
  await run.succeeded();
  return run.stdout;
}

/** The numbers a summary line reports, by the words after them. */
function count(output: string, pattern: RegExp): number {
  const match = pattern.exec(output);
  if (!match) throw new Error(`${pattern} not found in:\n${output}`);
  return Number(match[1]);
}

describe('examples/sqlite-workers', () => {
  const WORKERS = 4;
  const TASKS = 50;

  it('commits every transaction of four workers under the lock, with unique ids and an intact database', async () => {
    const dir = tempDir('nfl-sqlite-workers-');
    const db = join(dir, 'tasks.db');
    const output = await example('sqlite-workers', ['--workers', `${WORKERS}`, '--tasks', `${TASKS}`, '--dir', dir]);

    expect(output).toContain(`migrations: 0 of ${WORKERS} failed`);
    expect(count(output, /(\d+) committed/)).toBe(WORKERS * TASKS);
    expect(count(output, /(\d+) failed with SQLITE_BUSY/)).toBe(0);
    expect(count(output, /(\d+) failed otherwise/)).toBe(0);
    // The database itself, read independently of the example's summary.
    const check = new Database(db, { readonly: true });
    try {
      const ids = check.prepare('SELECT id FROM tasks ORDER BY id').pluck().all();
      expect(ids).toEqual(Array.from({ length: WORKERS * TASKS }, (_, i) => i + 1));
      const workers = check.prepare('SELECT count(DISTINCT worker) FROM tasks').pluck().get();
      expect(workers).toBe(WORKERS);
      expect(check.pragma('user_version', { simple: true })).toBe(2);
      expect(check.pragma('journal_mode', { simple: true })).toBe('wal');
      expect(check.pragma('integrity_check', { simple: true })).toBe('ok');
    } finally {
      check.close();
    }
  });

  it('loses transactions to SQLITE_BUSY when the same workload runs without the lock', async () => {
    const dir = tempDir('nfl-sqlite-workers-');
    const db = join(dir, 'tasks.db');
    // More tasks than above: a worker's tasks then last long enough to overlap the others' on a loaded machine.
    const tasks = 6 * TASKS;
    const output = await example('sqlite-workers', ['--no-lock', '--workers', `${WORKERS}`, '--tasks', `${tasks}`, '--dir', dir]);

    const committed = count(output, /(\d+) committed/);
    expect(committed).toBeLessThan(WORKERS * tasks);
    expect(count(output, /(\d+) failed with SQLITE_BUSY/)).toBeGreaterThan(0);
    const check = new Database(db, { readonly: true });
    try {
      // The lost transactions are really missing, and SQLite kept the database consistent.
      expect(check.prepare('SELECT count(*) FROM tasks').pluck().get()).toBe(committed);
      expect(check.pragma('integrity_check', { simple: true })).toBe('ok');
    } finally {
      check.close();
    }
  });
});

describe('examples/cache-dir', () => {
  const PROCESSES = 4;
  const KEYS = 8;
  const sha256 = (key: string) => createHash('sha256').update(key).digest('hex');

  it('computes each key exactly once across four processes and every other request reads the computed value', async () => {
    const dir = tempDir('nfl-cache-dir-');
    const output = await example('cache-dir', ['--processes', `${PROCESSES}`, '--keys', `${KEYS}`, '--dir', dir]);

    expect(count(output, /(\d+) computations/)).toBe(KEYS);
    expect(count(output, /(\d+) reads/)).toBe(PROCESSES * KEYS - KEYS);
    expect(output).toContain('each key computed once: yes');
    expect(output).toContain(`answers matching the computed value: ${PROCESSES * KEYS}/${PROCESSES * KEYS}`);
    for (let i = 0; i < KEYS; i++) {
      const entry = JSON.parse(readFileSync(join(dir, `key-${i}.json`), 'utf8'));
      expect(entry).toEqual({ value: sha256(`key-${i}`) });
    }
  });

  it('computes keys more than once when the same processes run without the lock', async () => {
    const dir = tempDir('nfl-cache-dir-');
    const output = await example('cache-dir', ['--no-lock', '--processes', `${PROCESSES}`, '--keys', `${KEYS}`, '--dir', dir]);

    expect(count(output, /(\d+) computations/)).toBeGreaterThan(KEYS);
    expect(output).toContain('each key computed once: no');
  });
});

describe('examples/cache-clear', () => {
  // Enough clears among enough gets that, without the directory lock, clear() moves the directory
  // under a get dozens of times per run (33 to 55 errors measured); seconds per run, tens under ASan.
  const PROCESSES = 4;
  const OPERATIONS = 300;
  const workload = ['--processes', `${PROCESSES}`, '--operations', `${OPERATIONS}`, '--keys', '8', '--clear-every', '20', '--compute-ms', '5'];
  const sha256 = (key: string) => createHash('sha256').update(key).digest('hex');

  it('clears the cache while four processes get keys, with no error and no key computed twice at once', async () => {
    const dir = tempDir('nfl-cache-clear-');
    const output = await example('cache-clear', [...workload, '--dir', dir]);

    expect(count(output, /(\d+) operations/)).toBe(PROCESSES * OPERATIONS);
    expect(count(output, /errors: (\d+)/)).toBe(0);
    expect(count(output, /duplicate computations: (\d+)/)).toBe(0);
    // Every process cleared in turn: the gets really raced with clears.
    expect(count(output, /(\d+) clears/)).toBe(PROCESSES * (OPERATIONS / 20));
    expect(count(output, /(\d+) computations/)).toBeGreaterThan(0);
    // What is left: one cache directory of complete entries, no moved-away copy.
    expect(readdirSync(dir).sort()).toEqual(['cache', 'cache.lock', 'computing']);
    for (const name of readdirSync(join(dir, 'cache')).filter((n) => n.endsWith('.json'))) {
      expect(JSON.parse(readFileSync(join(dir, 'cache', name), 'utf8'))).toEqual({ value: sha256(name.slice(0, -'.json'.length)) });
    }
  });

  it('fails gets or computes a key twice at once when the same workload runs without the directory lock', async () => {
    const dir = tempDir('nfl-cache-clear-');
    const output = await example('cache-clear', ['--no-dir-lock', ...workload, '--dir', dir]);

    expect(count(output, /(\d+) operations/)).toBe(PROCESSES * OPERATIONS);
    expect(count(output, /errors: (\d+)/) + count(output, /duplicate computations: (\d+)/)).toBeGreaterThan(0);
  });
});

describe('examples/npm-scripts', () => {
  it('runs two `npm run build` started together one after the other, both succeeding', async (ctx) => {
    skipWithout(ctx, 'posix', 'linux');
    // A copy of the example whose node_modules/.bin has this checkout's CLI, as npm install would.
    const dir = tempDir('nfl-npm-scripts-');
    for (const name of ['package.json', 'build.mjs']) copyFileSync(join(root, 'examples', 'npm-scripts', name), join(dir, name));
    mkdirSync(join(dir, 'node_modules', '.bin'), { recursive: true });
    symlinkSync(join(root, 'bin', 'native-file-lock.mjs'), join(dir, 'node_modules', '.bin', 'native-file-lock'));
    const go = join(dir, 'go');
    // The full environment: npm and the CLI are node, and a preloaded sanitizer runtime must stay for them.
    const npmRun = () => new Proc('npm', ['run', 'build', '--silent'], { cwd: dir, env: { ...process.env, BUILD_WAIT_FOR: go } });
    const log = () => (existsSync(join(dir, 'build.log')) ? readFileSync(join(dir, 'build.log'), 'utf8') : '');

    const first = npmRun();
    await waitFor(() => log().startsWith('start '), 'the first build to start', 60_000);
    const second = npmRun();
    // The second build waits on dist.lock while the first one builds.
    await waitFor(() => (inspect(join(dir, 'dist')).waiting ?? 0) >= 1, 'the second build to wait for the lock', 60_000);
    writeFileSync(go, '');
    await first.succeeded();
    await second.succeeded();
    const lines = log().trim().split('\n');
    expect(lines.map((l) => l.split(' ')[0])).toEqual(['start', 'end', 'start', 'end']);
    expect(lines[0]!.split(' ')[1]).toBe(lines[1]!.split(' ')[1]);
    expect(lines[2]!.split(' ')[1]).toBe(lines[3]!.split(' ')[1]);
    // Two npm runs and four node starts: minutes under a sanitizer build.
  }, 240_000);
});
