// The synchronous API: withFileLockSync, lockSync, tryLockSync. A thread
// blocked in a synchronous wait runs no JavaScript, so the tests observe it
// from other processes (agents), other threads and /proc/locks.
import { spawnSync } from 'node:child_process';
import { appendFileSync, existsSync, mkdirSync, readFileSync, symlinkSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { describe, expect, expectTypeOf, it } from 'vitest';

import {
  FileLockError,
  LockTimeoutError,
  lock,
  lockSync,
  tryLock,
  tryLockSync,
  withFileLock,
  withFileLockSync,
  type SyncFileLock,
  type SyncLockOptions,
} from 'native-file-lock';

import { Agent, agentForFile, blockedOn, expectFree, fdsOpenedSince, fixture, lockFileOf, openFiles, Proc, requires, resourceIn, runNode, settlesWithin, skipWithout, sleep, tempDir, Thread, waitFor } from './helpers.js';

const root = fileURLToPath(new URL('..', import.meta.url));

const agent = agentForFile();

// Loose typing on purpose: these calls pass what TypeScript would refuse.
const anyLockSync = lockSync as (...args: unknown[]) => unknown;
const anyTryLockSync = tryLockSync as (...args: unknown[]) => unknown;
const anyWithFileLockSync = withFileLockSync as (...args: unknown[]) => unknown;

const entryPoints = [
  ['withFileLockSync', (path: unknown, options?: unknown) => anyWithFileLockSync(path, () => 'ran', options)],
  ['lockSync', (path: unknown, options?: unknown) => (anyLockSync(path, options) as { release(): void }).release()],
  ['tryLockSync', (path: unknown, options?: unknown) => (anyTryLockSync(path, options) as { release(): void } | undefined)?.release()],
] as const;

/** What a synchronous call threw; fails if it returned. */
function thrown(call: () => unknown): unknown {
  try {
    call();
  } catch (error) {
    return error;
  }
  throw new Error('returned instead of throwing');
}

/**
 * Whether another process can take the lock right now, asked while this
 * thread's event loop is blocked (inside a synchronous callback).
 */
function freeElsewhereSync(path: string): boolean {
  const code = `import('native-file-lock').then(async ({ tryLock }) => { const h = await tryLock(${JSON.stringify(path)}); if (h) await h.release(); process.exit(h ? 0 : 3); })`;
  const result = spawnSync(process.execPath, ['-e', code], { cwd: root, encoding: 'utf8' });
  if (result.status !== 0 && result.status !== 3) throw new Error(`probe failed: ${result.stderr}`);
  return result.status === 0;
}

describe('the synchronous API', () => {
  it('withFileLockSync returns what fn returns and holds the lock while fn runs', async () => {
    const path = resourceIn(tempDir());
    let freeDuring: boolean | undefined;
    const value = withFileLockSync(path, () => {
      freeDuring = freeElsewhereSync(path);
      return { answer: 42 };
    });
    expect(value).toEqual({ answer: 42 });
    expect(freeDuring).toBe(false);
    expect(await agent().canLock(path)).toBe(true);
  });

  it('lockSync returns a held lock whose release() is synchronous, returns undefined and unlocks', async () => {
    const path = resourceIn(tempDir());
    const held = lockSync(path);
    expect(held.path).toBe(lockFileOf(path));
    expect(held.resource).toBe(path);
    expect(held.released).toBe(false);
    expect(await agent().canLock(path)).toBe(false);
    expect(held.release()).toBeUndefined();
    expect(held.released).toBe(true);
    expect(await agent().canLock(path)).toBe(true);
    // Once only: a second release does nothing, even while someone else holds the lock.
    await agent().call('lock', { path });
    expect(held.release()).toBeUndefined();
    expect(await agent().canLock(path)).toBe(false);
    await agent().call('release', { path });
  });

  it('[Symbol.dispose] releases a lock taken with lockSync', async () => {
    const path = resourceIn(tempDir());
    const held = lockSync(path);
    held[Symbol.dispose]();
    expect(held.released).toBe(true);
    expect(await agent().canLock(path)).toBe(true);
  });

  it('tryLockSync takes a free lock, and returns undefined at once while another process holds it', async () => {
    const path = resourceIn(tempDir());
    await agent().call('lock', { path });
    const started = performance.now();
    expect(tryLockSync(path, { timeout: 30_000 })).toBeUndefined();
    expect(performance.now() - started).toBeLessThan(5_000); // the timeout is ignored: it never waits
    await agent().call('release', { path });
    const held = tryLockSync(path);
    expect(held).toBeDefined();
    expect(await agent().canLock(path)).toBe(false);
    held!.release();
    expect(await agent().canLock(path)).toBe(true);
  });

  it('withFileLockSync releases the lock and rethrows fn\'s error unchanged when fn throws', async () => {
    const path = resourceIn(tempDir());
    const failure = new Error('fn failed');
    expect(
      thrown(() =>
        withFileLockSync(path, () => {
          throw failure;
        }),
      ),
    ).toBe(failure);
    expect(await agent().canLock(path)).toBe(true);
  });

  it('withFileLockSync refuses an fn that returns a promise, after releasing the lock, since the lock cannot be held across an await', async () => {
    const path = resourceIn(tempDir());
    let freeAfterFn: boolean | undefined;
    const error = thrown(() =>
      withFileLockSync(path, async () => {
        await sleep(50);
        freeAfterFn = await agent().canLock(path);
      }),
    );
    expect(error).toBeInstanceOf(TypeError);
    expect((error as NodeJS.ErrnoException).code).toBe('ERR_INVALID_RETURN_VALUE');
    expect((error as Error).message).toMatch(/promise/i);
    expect((error as Error).message).toMatch(/withFileLock\b/);
    expect(await agent().canLock(path)).toBe(true);
    await waitFor(() => freeAfterFn !== undefined, 'the async fn to finish');
    expect(freeAfterFn).toBe(true);
  });
});

describe('the published types', () => {
  // Checked by `tsc -p tsconfig.json` (npm test runs it before vitest).
  it('withFileLockSync returns fn\'s type, a SyncFileLock releases synchronously, and the options have no signal', () => {
    expectTypeOf(() => withFileLockSync('x', () => 42)).returns.toEqualTypeOf<number>();
    expectTypeOf(lockSync).returns.toEqualTypeOf<SyncFileLock>();
    expectTypeOf(tryLockSync).returns.toEqualTypeOf<SyncFileLock | undefined>();
    expectTypeOf<SyncFileLock>().toHaveProperty('release').returns.toEqualTypeOf<void>();
    expectTypeOf<SyncFileLock>().toMatchTypeOf<Disposable>();
    expectTypeOf<SyncFileLock['shared']>().toEqualTypeOf<boolean>();
    expectTypeOf<SyncLockOptions>().not.toHaveProperty('signal');
  });
});

describe('options and errors', () => {
  describe.each(entryPoints)('%s', (_name, call) => {
    it('refuses a signal, onWait and onWaitAfterMs with a TypeError saying why a blocked thread cannot use them', async () => {
      const path = resourceIn(tempDir());
      for (const signal of [new AbortController().signal, AbortSignal.abort()]) {
        const error = thrown(() => call(path, { signal }));
        expect(error).toBeInstanceOf(TypeError);
        expect((error as NodeJS.ErrnoException).code).toBe('ERR_INVALID_ARG_VALUE');
        expect((error as Error).message).toMatch(/options\.signal/);
        expect((error as Error).message).toMatch(/event loop/);
      }
      for (const [name, value] of [['onWait', () => {}], ['onWaitAfterMs', 100]] as const) {
        const error = thrown(() => call(path, { [name]: value }));
        expect(error).toBeInstanceOf(TypeError);
        expect(error).toMatchObject({ code: 'ERR_INVALID_ARG_VALUE', message: expect.stringMatching(new RegExp(`options\\.${name} is not supported`)) });
      }
      expect(await agent().canLock(path)).toBe(true);
    });

    it('refuses bad paths and options with the same errors as the async API', () => {
      const path = resourceIn(tempDir());
      expect(() => call(42)).toThrow(/path must be a string, a file: URL or a Buffer, got number 42/);
      expect(() => call('')).toThrow(TypeError);
      expect(() => call('a\0b')).toThrow(/NUL/);
      expect(() => call(path, { timeout: -1 })).toThrow(RangeError);
      expect(() => call(path, { timeout: '5' })).toThrow(/options\.timeout must be a number/);
      expect(() => call(path, { colour: 'red' })).toThrow(/Unknown option 'colour'/);
      expect(() => call(path, null)).toThrow(/options must be an object/);
    });

    it('throws ELOOP naming a lock file that is a symbolic link, and leaves no descriptor open', (ctx) => {
      skipWithout(ctx, '/proc');
      const dir = tempDir();
      const path = resourceIn(dir);
      symlinkSync(join(dir, 'target'), lockFileOf(path));
      const before = openFiles();
      const error = thrown(() => call(path, { timeout: 1_000 }));
      expect(error).toBeInstanceOf(FileLockError);
      expect(error).toMatchObject({ code: 'ELOOP', path: lockFileOf(path), resource: path });
      expect((error as Error).message).toContain(lockFileOf(path));
      expect(fdsOpenedSince(before)).toEqual([]);
    });

    it('throws EISDIR naming a lock path that is a directory, leaves no descriptor open, and works once it is gone', (ctx) => {
      skipWithout(ctx, '/proc');
      const path = resourceIn(tempDir());
      mkdirSync(lockFileOf(path));
      const before = openFiles();
      const error = thrown(() => call(path));
      expect(error).toMatchObject({ code: 'EISDIR', path: lockFileOf(path) });
      expect(fdsOpenedSince(before)).toEqual([]);
      spawnSync('rmdir', [lockFileOf(path)]);
      call(path);
    });
  });
});

describe('exclusion', () => {
  it('processes and worker threads mixing withFileLockSync and withFileLock lose no update', async () => {
    const file = join(tempDir(), 'counter');
    writeFileSync(file, '0'.padStart(12, '0'));
    const n = 40;
    const modes = ['sync', 'sync', 'lock'] as const;
    const children = modes.map((mode) => runNode(fixture('counter.mjs'), [file, String(n), mode]));
    await Promise.all(children.map((child) => child.waitForOutput('ready')));
    for (const child of children) child.child.stdin!.end('go\n');
    const threads = modes.map((mode) => new Thread(fixture('counter.mjs'), { file, n, mode }));
    await Promise.all([...children.map((child) => child.succeeded()), ...threads.map((thread) => thread.next('done', 60_000))]);
    expect(Number(readFileSync(file, 'utf8'))).toBe(2 * modes.length * n);
  });

  it('lockSync in a worker waits while the main thread holds the lock asynchronously, and gets it once released', async () => {
    const path = resourceIn(tempDir());
    const held = await lock(path);
    const thread = new Thread(fixture('sync-thread.mjs'), { op: 'lock-sync', path, options: { timeout: 30_000 } });
    await thread.next('waiting');
    await sleep(300);
    expect(thread.messages.map((m) => m.type)).toEqual(['waiting']);
    await held.release();
    await thread.next('locked');
    await thread.next('done');
    await expectFree(agent(), path);
  });
});

describe.each([
  ['another process', () => ({ take: (path: string) => agent().call('lock', { path }), release: (path: string) => agent().call('release', { path }) })],
  [
    'another thread',
    () => {
      const threads = new Map<string, Thread>();
      return {
        async take(path: string) {
          const thread = new Thread(fixture('sync-thread.mjs'), { op: 'hold-async', path });
          threads.set(path, thread);
          await thread.next('holding');
        },
        async release(path: string) {
          const thread = threads.get(path)!;
          thread.worker.postMessage('release');
          await thread.next('done');
        },
      };
    },
  ],
] as const)('while %s holds the lock', (_name, makeHolder) => {
  it('lockSync with a timeout throws LockTimeoutError after about that long and holds nothing afterwards', async () => {
    const path = resourceIn(tempDir());
    const holder = makeHolder();
    await holder.take(path);
    const started = performance.now();
    const error = thrown(() => lockSync(path, { timeout: 300 }));
    const elapsed = performance.now() - started;
    expect(error).toBeInstanceOf(LockTimeoutError);
    const timeout = error as LockTimeoutError;
    expect(timeout.code).toBe('ELOCKTIMEOUT');
    expect(timeout.path).toBe(lockFileOf(path));
    expect(timeout.resource).toBe(path);
    expect(timeout.message).toContain(`after ${timeout.waited} ms`);
    expect(timeout.waited).toBeGreaterThanOrEqual(280);
    expect(elapsed).toBeGreaterThanOrEqual(280);
    expect(elapsed).toBeLessThan(5_000);
    await holder.release(path);
    await expectFree(agent(), path);
  });

  it('withFileLockSync with a timeout throws LockTimeoutError without running fn', async () => {
    const path = resourceIn(tempDir());
    const holder = makeHolder();
    await holder.take(path);
    let ran = false;
    const error = thrown(() =>
      withFileLockSync(path, () => {
        ran = true;
      }, { timeout: 100 }),
    );
    expect(error).toMatchObject({ code: 'ELOCKTIMEOUT', name: 'LockTimeoutError' });
    expect(ran).toBe(false);
    await holder.release(path);
    await expectFree(agent(), path);
  });

  it('timeout 0 makes one attempt and throws at once', async () => {
    const path = resourceIn(tempDir());
    const holder = makeHolder();
    await holder.take(path);
    const started = performance.now();
    expect(thrown(() => lockSync(path, { timeout: 0 }))).toBeInstanceOf(LockTimeoutError);
    expect(performance.now() - started).toBeLessThan(5_000);
    await holder.release(path);
    await expectFree(agent(), path);
  });

  it('tryLockSync returns undefined', async () => {
    const path = resourceIn(tempDir());
    const holder = makeHolder();
    await holder.take(path);
    expect(tryLockSync(path)).toBeUndefined();
    await holder.release(path);
    await expectFree(agent(), path);
  });
});

describe('CPU while blocked', () => {
  requires('linux');

  it('a process blocked in lockSync until its one-second timeout uses little CPU', async () => {
    const path = resourceIn(tempDir());
    const held = await lock(path);
    const result = await agent().call<{ code: string | null; wallMs: number; cpuMs: number }>('measureLockSync', { path, options: { timeout: 1_000 } });
    await held.release();
    expect(result.code).toBe('ELOCKTIMEOUT');
    expect(result.wallMs).toBeGreaterThanOrEqual(950);
    // A spinning wait would use the whole second; a blocked one a few milliseconds.
    expect(result.cpuMs).toBeLessThan(200);
    await expectFree(agent(), path);
  });

  it('a process blocked in lockSync for a second until the holder lets go gets the lock, using little CPU meanwhile', async () => {
    const path = resourceIn(tempDir());
    const held = await lock(path);
    const measuring = agent().call<{ code: string | null; wallMs: number; cpuMs: number }>('measureLockSync', { path, options: { timeout: 30_000 } });
    await waitFor(() => blockedOn(held.path) >= 1, 'the agent to block on the lock');
    await sleep(1_000);
    await held.release();
    const result = await measuring;
    expect(result.code).toBe(null);
    expect(result.wallMs).toBeGreaterThanOrEqual(1_000);
    expect(result.cpuMs).toBeLessThan(200);
    await expectFree(agent(), path);
  });
});

describe('fair order with async waiters', () => {
  requires('linux');

  function logOf(log: string): string[] {
    return readFileSync(log, 'utf8').trim().split('\n');
  }

  /** A worker that waits in withFileLockSync for path, then appends 'sync' to log. */
  function syncWaiter(path: string, log: string): { start: () => Promise<void>; done: () => Promise<unknown> } {
    let thread: Thread | undefined;
    return {
      start: async () => {
        thread = new Thread(fixture('sync-thread.mjs'), { op: 'log-sync', path, log, name: 'sync' });
        await thread.next('waiting');
      },
      done: () => thread!.next('done'),
    };
  }

  /** Starts the two waiters, the one named first, then the other once the first is blocked on lockPath. */
  async function startInOrder(first: 'sync' | 'async', lockPath: string, startSync: () => Promise<void>, startAsync: () => void): Promise<void> {
    if (first === 'sync') await startSync();
    else startAsync();
    await waitFor(() => blockedOn(lockPath) >= 1, `the ${first} waiter to block`);
    if (first === 'sync') startAsync();
    else await startSync();
  }

  describe.each(['sync', 'async'] as const)('%s waiter first', (first) => {
    it('a sync waiter in a worker and an async waiter of the main thread are served in the order they asked', async () => {
      const dir = tempDir();
      const path = resourceIn(dir);
      const log = join(dir, 'log');
      await agent().call('lock', { path });
      const sync = syncWaiter(path, log);
      let waiting: Promise<unknown> | undefined;
      await startInOrder(first, lockFileOf(path), sync.start, () => {
        waiting = withFileLock(path, () => appendFileSync(log, 'async\n'));
      });
      await sleep(200);
      await agent().call('release', { path });
      await waiting;
      await sync.done();
      expect(logOf(log)).toEqual(first === 'sync' ? ['sync', 'async'] : ['async', 'sync']);
    });

    it('a sync waiter of this process and an async waiter of another process are served in the order they asked', async () => {
      const dir = tempDir();
      const path = resourceIn(dir);
      const log = join(dir, 'log');
      const peer = await Agent.start();
      try {
        await agent().call('lock', { path });
        const lockPath = lockFileOf(path);
        const sync = syncWaiter(path, log);
        let waiting: Promise<unknown> | undefined;
        await startInOrder(first, lockPath, sync.start, () => {
          waiting = peer.call('logUnder', { path, log, name: 'async', sync: false });
        });
        await waitFor(() => blockedOn(lockPath) >= 2, 'the second waiter to queue');
        await agent().call('release', { path });
        await waiting;
        await sync.done();
        expect(logOf(log)).toEqual(first === 'sync' ? ['sync', 'async'] : ['async', 'sync']);
      } finally {
        await peer.stop();
      }
    });
  });

  it('a sync waiter queued behind another process keeps its place ahead of a later waiter, however long it waits', async () => {
    const dir = tempDir();
    const path = resourceIn(dir);
    const lockPath = lockFileOf(path);
    const log = join(dir, 'log');
    const [early, late] = await Promise.all([Agent.start(), Agent.start()]);
    try {
      await agent().call('lock', { path });
      const first = early.call('logUnder', { path, log, name: 'early', sync: false });
      await waitFor(() => blockedOn(lockPath) >= 1, 'the early waiter to block');
      const sync = syncWaiter(path, log);
      await sync.start();
      await waitFor(() => blockedOn(lockPath) >= 2, 'the sync waiter to queue');
      const last = late.call('logUnder', { path, log, name: 'late', sync: false });
      await waitFor(() => blockedOn(lockPath) >= 3, 'the late waiter to queue');
      // Several times the 100 ms at which a blocked synchronous wait looks
      // whether its thread is being stopped.
      await sleep(600);
      await agent().call('release', { path });
      await Promise.all([first, last, sync.done()]);
      expect(logOf(log)).toEqual(['early', 'sync', 'late']);
    } finally {
      await Promise.all([early.stop(), late.stop()]);
    }
  });
});

describe('shared locks', () => {
  it('lockSync with shared: true holds with other shared holders of this thread and other processes, and keeps writers out', async () => {
    const path = resourceIn(tempDir());
    await agent().call('lock', { path, options: { shared: true } });
    const first = lockSync(path, { shared: true, timeout: 5_000 });
    const second = lockSync(path, { shared: true, timeout: 5_000 });
    expect(first.shared).toBe(true);
    expect(await agent().canLock(path, { shared: true })).toBe(true);
    await agent().call('release', { path });
    expect(await agent().canLock(path)).toBe(false);
    first.release();
    expect(await agent().canLock(path)).toBe(false);
    second.release();
    expect(await agent().canLock(path)).toBe(true);
  });

  it('a shared withFileLockSync waits for a writer of another process and runs once it lets go', async () => {
    const path = resourceIn(tempDir());
    await agent().call('lock', { path });
    const thread = new Thread(fixture('sync-thread.mjs'), { op: 'lock-sync', path, options: { shared: true, timeout: 30_000 } });
    await thread.next('waiting');
    await waitFor(() => blockedOn(lockFileOf(path)) >= 1, 'the shared waiter to block');
    expect(thread.messages.map((m) => m.type)).toEqual(['waiting']);
    await agent().call('release', { path });
    await thread.next('done');
    await expectFree(agent(), path);
  });

  it('an exclusive sync call on a thread that holds the lock shared throws EDEADLK, a shared one runs at once', async () => {
    const path = resourceIn(tempDir());
    const held = await lock(path, { shared: true });
    const error = thrown(() => lockSync(path, { timeout: 3_000 }));
    expect(error).toMatchObject({ code: 'EDEADLK', path: lockFileOf(path) });
    expect(withFileLockSync(path, () => 'reader', { shared: true, timeout: 3_000 })).toBe('reader');
    await held.release();
    await expectFree(agent(), path);
  });
});

describe('removeLockFile', () => {
  it('withFileLockSync and lockSync with removeLockFile delete the lock file as they release, and the path locks again afterwards', async () => {
    const path = resourceIn(tempDir());
    let existed = false;
    withFileLockSync(path, () => (existed = existsSync(lockFileOf(path))), { removeLockFile: true });
    expect(existed).toBe(true);
    expect(existsSync(lockFileOf(path))).toBe(false);
    const held = lockSync(path, { removeLockFile: true });
    expect(existsSync(held.path)).toBe(true);
    held.release();
    expect(existsSync(held.path)).toBe(false);
    await expectFree(agent(), path);
  });
});

describe('never a deadlock', () => {
  function expectDeadlock(error: unknown, path: string): void {
    expect(error).toBeInstanceOf(FileLockError);
    expect(error).toMatchObject({ code: 'EDEADLK', path: lockFileOf(path), resource: path });
    expect((error as Error).message).toContain(lockFileOf(path));
  }

  it('a sync call on a thread that holds the lock from lock() throws EDEADLK naming the lock file at once', async () => {
    const path = resourceIn(tempDir());
    const held = await lock(path);
    let ran = false;
    const started = performance.now();
    // The timeouts only keep a broken build from hanging the test run.
    expectDeadlock(thrown(() => lockSync(path, { timeout: 3_000 })), path);
    expectDeadlock(
      thrown(() =>
        withFileLockSync(path, () => {
          ran = true;
        }, { timeout: 3_000 }),
      ),
      path,
    );
    expectDeadlock(thrown(() => lockSync(path, { timeout: 0 })), path);
    expect(performance.now() - started).toBeLessThan(2_000);
    expect(ran).toBe(false);
    expect(held.released).toBe(false);
    expect(await agent().canLock(path)).toBe(false);
    await held.release();
    expect(withFileLockSync(path, () => 'free again')).toBe('free again');
  });

  it('a sync call outside a running withFileLock callback throws EDEADLK', async () => {
    const path = resourceIn(tempDir());
    const running = withFileLock(path, async () => {
      await sleep(100);
      return 'outer';
    });
    expectDeadlock(thrown(() => lockSync(path, { timeout: 3_000 })), path);
    await expect(running).resolves.toBe('outer');
    await expectFree(agent(), path);
  });

  it('a sync call while an async caller of this thread waits ahead of it in line throws EDEADLK', async () => {
    const path = resourceIn(tempDir());
    await agent().call('lock', { path });
    const waiting = withFileLock(path, () => 'async caller');
    const started = performance.now();
    expectDeadlock(thrown(() => lockSync(path, { timeout: 3_000 })), path);
    expect(performance.now() - started).toBeLessThan(2_000);
    expect(await settlesWithin(waiting, 100)).toBe('pending');
    await agent().call('release', { path });
    await expect(waiting).resolves.toBe('async caller');
    await expectFree(agent(), path);
  });

  it('tryLockSync on a thread that holds the lock returns undefined, as tryLock does', async () => {
    const path = resourceIn(tempDir());
    const held = await lock(path);
    expect(tryLockSync(path)).toBeUndefined();
    await expect(tryLock(path)).resolves.toBeUndefined();
    await held.release();
    await expectFree(agent(), path);
  });

  it('inside the holder\'s own withFileLock callback the sync API is reentrant and runs at once', async () => {
    const path = resourceIn(tempDir());
    const value = await withFileLock(path, async () => {
      const inner = withFileLockSync(path, () => 'inner', { timeout: 3_000 });
      await sleep(1);
      const nested = lockSync(path, { timeout: 3_000 });
      nested.release();
      const tried = tryLockSync(path);
      expect(tried).toBeDefined();
      tried!.release();
      // The nested releases leave the outer hold in place.
      expect(await agent().canLock(path)).toBe(false);
      return inner;
    });
    expect(value).toBe('inner');
    await expectFree(agent(), path);
  });

  it('inside a withFileLockSync callback nested sync and async calls for the same path run at once', async () => {
    const path = resourceIn(tempDir());
    let nestedAsync: Promise<string> | undefined;
    const value = withFileLockSync(path, () => {
      const inner = withFileLockSync(path, () => 'inner', { timeout: 3_000 });
      lockSync(path, { timeout: 3_000 }).release();
      nestedAsync = withFileLock(path, () => 'async inside');
      return inner;
    });
    expect(value).toBe('inner');
    await expect(nestedAsync).resolves.toBe('async inside');
    await expectFree(agent(), path);
  });
});

describe('a thread blocked in lockSync', () => {
  requires('linux');

  it('ends when its worker is terminated, and what its wait still gets is given back', async () => {
    const path = resourceIn(tempDir());
    await agent().call('lock', { path });
    const thread = new Thread(fixture('sync-thread.mjs'), { op: 'lock-sync', path });
    await thread.next('waiting');
    await waitFor(() => blockedOn(lockFileOf(path)) >= 1, 'the worker to block');
    expect(await settlesWithin(thread.worker.terminate(), 5_000)).toBe('settled');
    await agent().call('release', { path });
    await expectFree(agent(), path);
  });

  it('does not keep process.exit() from ending the process', async () => {
    const path = resourceIn(tempDir());
    const code = `
      import { Worker } from 'node:worker_threads';
      import { lock } from 'native-file-lock';
      const path = ${JSON.stringify(path)};
      await lock(path);
      const worker = new Worker(${JSON.stringify(fixture('sync-thread.mjs'))}, { workerData: { op: 'lock-sync', path }, execArgv: [] });
      worker.on('message', (m) => {
        if (m.type !== 'waiting') return;
        console.log('waiting');
        setTimeout(() => process.exit(7), 300);
      });`;
    const child = new Proc(process.execPath, ['--input-type=module', '-e', code], { cwd: root });
    await child.waitForOutput('waiting');
    expect(await settlesWithin(child.exited, 10_000)).toBe('settled');
    expect((await child.exited).code).toBe(7);
  });
});
