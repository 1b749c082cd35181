import { createRequire } from 'node:module';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';

import { fixture, runNode, tempDir } from './helpers.js';

// better-sqlite3 ships no types and @types/better-sqlite3 is not installed: describe what is used.
interface Statement {
  get(...params: unknown[]): Record<string, unknown>;
  run(...params: unknown[]): unknown;
}
interface Database {
  exec(sql: string): void;
  pragma(sql: string, options?: { simple: boolean }): unknown;
  prepare(sql: string): Statement;
  close(): void;
}
const BetterSqlite3 = createRequire(import.meta.url)('better-sqlite3') as new (
  path: string,
  options?: { timeout: number },
) => Database;

interface WriterResult {
  committed: number;
  busy: number;
  other: string[];
}

const PROCESSES = 4;
const TRANSACTIONS = 50;

function createDatabase(): string {
  const path = join(tempDir(), 'db.sqlite');
  const db = new BetterSqlite3(path);
  db.pragma('journal_mode = WAL');
  db.exec(`
    CREATE TABLE items (id INTEGER PRIMARY KEY, worker INTEGER NOT NULL, seq INTEGER NOT NULL);
    CREATE TABLE counter (id INTEGER PRIMARY KEY, n INTEGER NOT NULL);
    INSERT INTO counter VALUES (1, 0);
  `);
  db.close();
  return path;
}

async function runWriters(database: string, mode: 'lock' | 'nolock'): Promise<WriterResult[]> {
  const writers = Array.from({ length: PROCESSES }, (_, worker) =>
    runNode(fixture('sqlite-writer.mjs'), [database, String(worker), String(TRANSACTIONS), mode]),
  );
  await Promise.all(writers.map((writer) => writer.waitForOutput('ready')));
  // Released together so that the transactions really overlap.
  for (const writer of writers) writer.child.stdin!.end('go\n');
  await Promise.all(writers.map((writer) => writer.succeeded()));
  return writers.map((writer) => JSON.parse(/^result (.*)$/m.exec(writer.stdout)![1]!) as WriterResult);
}

function inspect(database: string): { rows: number; maxId: number; counter: number; integrity: unknown } {
  const db = new BetterSqlite3(database);
  try {
    return {
      rows: db.prepare('SELECT count(*) AS c FROM items').get().c as number,
      maxId: db.prepare('SELECT max(id) AS m FROM items').get().m as number,
      counter: db.prepare('SELECT n FROM counter WHERE id = 1').get().n as number,
      integrity: db.pragma('integrity_check', { simple: true }),
    };
  } finally {
    db.close();
  }
}

describe('read-then-write SQLite transactions from several processes', () => {
  it('fail with SQLITE_BUSY without the lock (the workload really conflicts)', async () => {
    const database = createDatabase();
    const results = await runWriters(database, 'nolock');
    const busy = results.reduce((sum, r) => sum + r.busy, 0);
    const committed = results.reduce((sum, r) => sum + r.committed, 0);
    expect(results.flatMap((r) => r.other)).toEqual([]);
    expect(busy).toBeGreaterThan(0);
    expect(busy + committed).toBe(PROCESSES * TRANSACTIONS);
    // SQLite itself stays consistent; the failed transactions are simply lost work.
    const state = inspect(database);
    expect(state.rows).toBe(committed);
    expect(state.integrity).toBe('ok');
  });

  it('all commit under withFileLock, every row present and the database intact', async () => {
    const database = createDatabase();
    const results = await runWriters(database, 'lock');
    expect(results.flatMap((r) => r.other)).toEqual([]);
    expect(results.map((r) => r.busy)).toEqual(Array(PROCESSES).fill(0));
    expect(results.map((r) => r.committed)).toEqual(Array(PROCESSES).fill(TRANSACTIONS));
    const state = inspect(database);
    expect(state).toEqual({
      rows: PROCESSES * TRANSACTIONS,
      maxId: PROCESSES * TRANSACTIONS,
      counter: PROCESSES * TRANSACTIONS,
      integrity: 'ok',
    });
  });
});

describe('a write outside the lock', () => {
  it('fails a locked transaction between its read and its write at once, whatever the busy timeout', () => {
    // Why the README runs schema steps under the lock too: SQLite does not call the busy
    // handler when a read transaction asks to become a write transaction.
    const database = createDatabase();
    const locked = new BetterSqlite3(database, { timeout: 5000 });
    const outside = new BetterSqlite3(database, { timeout: 5000 });
    try {
      locked.exec('BEGIN');
      const { n } = locked.prepare('SELECT n FROM counter WHERE id = 1').get();
      outside.exec('BEGIN IMMEDIATE'); // a schema step or pragma of another process, mid-write
      const started = Date.now();
      expect(() => locked.prepare('UPDATE counter SET n = ? WHERE id = 1').run((n as number) + 1)).toThrow(
        expect.objectContaining({ code: 'SQLITE_BUSY' }),
      );
      // Well under the 5 s timeout: the busy handler never ran.
      expect(Date.now() - started).toBeLessThan(2500);
      outside.exec('ROLLBACK');
      locked.exec('ROLLBACK');
    } finally {
      locked.close();
      outside.close();
    }
  });
});
