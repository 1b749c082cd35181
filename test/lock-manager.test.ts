import { randomUUID } from 'node:crypto';
import { existsSync, readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import * as workerThreads from 'node:worker_threads';
import { beforeEach, describe, expect, expectTypeOf, it } from 'vitest';

import { createLockManager, FileLockError, type FileLockManager, type LockManagerLock, type LockManagerRequestOptions } from 'native-file-lock';

import { fixture, rejection, runNode, skipWithout, sleep, tempDir, waitFor } from './helpers.js';

// Node's own LockManager (Node >= 24.5): one process only, the reference for the shapes and outcomes.
const nodeLocks = (workerThreads as { locks?: FileLockManager }).locks;

/** A gate a callback waits on until the test opens it. */
function gate(): { opened: Promise<void>; open: () => void } {
  let open!: () => void;
  const opened = new Promise<void>((resolve) => (open = resolve));
  return { opened, open };
}

/**
 * A request that holds name until release() is called; resolves once it holds.
 * `done` settles when its callback has returned and the lock is let go.
 */
async function holdUntilReleased(locks: FileLockManager, name: string, options: { mode?: 'shared' | 'exclusive' } = {}): Promise<{ release: () => void; done: Promise<unknown> }> {
  const release = gate();
  const holding = gate();
  const done = locks.request(name, options, async () => {
    holding.open();
    await release.opened;
  });
  await holding.opened;
  return { release: release.open, done };
}

const managers: [string, () => FileLockManager | undefined][] = [
  ['createLockManager(dir)', () => createLockManager(tempDir())],
  ["Node's worker_threads.locks", () => nodeLocks],
];

describe.each(managers)('The Web Locks semantics, the same with %s', (label, make) => {
  beforeEach((ctx) => {
    if (make() === undefined) ctx.skip(`${label} is not in Node ${process.version} (added in 24.5)`);
  });
  // Names are process-wide for Node's manager: every test uses its own.
  const unique = () => `test-${randomUUID()}`;

  it('runs exclusive requests for one name one after the other', async () => {
    const locks = make()!;
    const name = unique();
    const events: string[] = [];
    const first = gate();
    const a = locks.request(name, async (lock) => {
      events.push(`a ${lock?.mode}`);
      await first.opened;
      events.push('a end');
    });
    const b = locks.request(name, (lock) => {
      events.push(`b ${lock?.mode}`);
    });
    await waitFor(() => events.length > 0, 'the first callback to run');
    // Time enough for a wrong grant of b to show up before a ends.
    await sleep(50);
    first.open();
    await Promise.all([a, b]);
    expect(events).toEqual(['a exclusive', 'a end', 'b exclusive']);
  });

  it('holds shared requests for one name at the same time', async () => {
    const locks = make()!;
    const name = unique();
    let inside = 0;
    const both = gate();
    const reader = () =>
      locks.request(name, { mode: 'shared' }, async (lock) => {
        if (++inside === 2) both.open();
        // Returns only once the other reader is inside too: they overlap.
        await both.opened;
        return lock?.mode;
      });
    await expect(Promise.all([reader(), reader()])).resolves.toEqual(['shared', 'shared']);
  });

  it('gives the callback a lock with the name and mode, and resolves with its value after releasing it', async () => {
    const locks = make()!;
    const name = unique();
    let seen: { name: string; mode: string } | undefined;
    const value = await locks.request(name, { mode: 'shared' }, (lock: LockManagerLock | null) => {
      seen = { name: lock!.name, mode: lock!.mode };
      return 42;
    });
    expect(value).toBe(42);
    expect(seen).toEqual({ name, mode: 'shared' });
    await expect(locks.request(name, async () => 'async value')).resolves.toBe('async value');
    // Released: an ifAvailable request gets it.
    await expect(locks.request(name, { ifAvailable: true }, (lock) => lock?.mode)).resolves.toBe('exclusive');
  });

  it('rejects with the very error the callback throws and releases the lock', async () => {
    const locks = make()!;
    const name = unique();
    const error = new Error('boom');
    await expect(
      locks.request(name, async () => {
        throw error;
      }),
    ).rejects.toBe(error);
    await expect(locks.request(name, { ifAvailable: true }, (lock) => lock !== null)).resolves.toBe(true);
  });

  it('calls an ifAvailable callback with null at once when the lock is held, and with a lock when it is free', async () => {
    const locks = make()!;
    const name = unique();
    const holder = await holdUntilReleased(locks, name, { mode: 'shared' });
    await expect(locks.request(name, { ifAvailable: true }, (lock) => lock)).resolves.toBeNull();
    await expect(locks.request(name, { mode: 'shared', ifAvailable: true }, (lock) => lock?.mode)).resolves.toBe('shared');
    holder.release();
    await holder.done;
    await expect(locks.request(name, { ifAvailable: true }, (lock) => lock?.mode)).resolves.toBe('exclusive');
  });

  it('rejects a waiting request with the signal reason when the signal aborts, and never calls its callback', async () => {
    const locks = make()!;
    const name = unique();
    const holder = await holdUntilReleased(locks, name);
    const controller = new AbortController();
    let called = false;
    const waiting = locks.request(name, { signal: controller.signal }, () => (called = true));
    const reason = new Error('no longer needed');
    controller.abort(reason);
    await expect(waiting).rejects.toBe(reason);
    holder.release();
    await holder.done;
    expect(called).toBe(false);
  });

  it('rejects with the reason of a signal aborted before the call', async () => {
    const locks = make()!;
    let called = false;
    await expect(locks.request(unique(), { signal: AbortSignal.abort('why') }, () => (called = true))).rejects.toBe('why');
    expect(called).toBe(false);
  });

  it('lists held and pending requests of this process in query()', async () => {
    const locks = make()!;
    const name = unique();
    const holder = await holdUntilReleased(locks, name);
    const waiter = locks.request(name, { mode: 'shared' }, () => {});
    const mine = (infos: { name?: string; mode?: string }[] = []) => infos.filter((i) => i.name === name).map((i) => i.mode);
    const snapshot = await locks.query();
    expect(mine(snapshot.held)).toEqual(['exclusive']);
    expect(mine(snapshot.pending)).toEqual(['shared']);
    holder.release();
    await Promise.all([holder.done, waiter]);
    const after = await locks.query();
    expect(mine(after.held)).toEqual([]);
    expect(mine(after.pending)).toEqual([]);
  });

  it('refuses names starting with a hyphen with a NotSupportedError', async () => {
    const error = await rejection(() => make()!.request('-reserved', () => {}));
    expect(error).toBeInstanceOf(DOMException);
    expect((error as DOMException).name).toBe('NotSupportedError');
  });

  it('refuses the option combinations the Web Locks API refuses with a NotSupportedError', async () => {
    const locks = make()!;
    for (const options of [
      { steal: true, ifAvailable: true },
      { steal: true, mode: 'shared' as const },
      { ifAvailable: true, signal: new AbortController().signal },
    ]) {
      const error = await rejection(() => locks.request(unique(), options, () => {}));
      expect((error as DOMException).name, JSON.stringify(options)).toBe('NotSupportedError');
    }
  });

  it('refuses a missing callback and an unknown mode with a TypeError', async () => {
    const locks = make()!;
    const noCallback = await rejection(() => (locks.request as (name: string) => Promise<unknown>)(unique()));
    expect(noCallback).toBeInstanceOf(TypeError);
    expect((noCallback as { code?: string }).code).toBe('ERR_INVALID_ARG_TYPE');
    const badMode = await rejection(() => locks.request(unique(), { mode: 'bogus' as 'shared' }, () => {}));
    expect(badMode).toBeInstanceOf(TypeError);
    expect((badMode as { code?: string }).code).toBe('ERR_INVALID_ARG_VALUE');
  });
});

describe('createLockManager across processes', () => {
  it('never lets two processes hold one name exclusively at the same time', async () => {
    const dir = tempDir();
    const log = join(dir, 'log');
    writeFileSync(log, '');
    const procs = [0, 1, 2].map(() => runNode(fixture('lock-manager.mjs'), ['loop', dir, 'the name', 'exclusive', '40', log]));
    await Promise.all(procs.map((p) => p.waitForOutput('ready')));
    for (const p of procs) p.child.stdin!.write('go\n');
    await Promise.all(procs.map((p) => p.succeeded()));
    const lines = readFileSync(log, 'utf8').trim().split('\n');
    expect(lines).toHaveLength(3 * 40 * 2);
    // Each '+pid' is followed by the same process's '-pid' before anyone else enters.
    for (let i = 0; i < lines.length; i += 2) {
      expect(lines[i]!.startsWith('+')).toBe(true);
      expect(lines[i + 1]).toBe(`-${lines[i]!.slice(1)}`);
    }
  });

  it('lets shared requests of two processes overlap, and keeps exclusive ones out', async () => {
    const dir = tempDir();
    const holder = runNode(fixture('lock-manager.mjs'), ['hold', dir, 'config', 'shared']);
    await holder.waitForOutput('held');
    const shared = runNode(fixture('lock-manager.mjs'), ['try', dir, 'config', 'shared']);
    await shared.succeeded();
    expect(JSON.parse(shared.stdout)).toEqual({ name: 'config', mode: 'shared' });
    const exclusive = runNode(fixture('lock-manager.mjs'), ['try', dir, 'config', 'exclusive']);
    await exclusive.succeeded();
    expect(JSON.parse(exclusive.stdout)).toBeNull();
    holder.child.stdin!.write('release\n');
    await holder.succeeded();
  });

  it("sees another process's lock with ifAvailable, and waits for it to be released", async () => {
    const dir = tempDir();
    const locks = createLockManager(dir);
    const holder = runNode(fixture('lock-manager.mjs'), ['hold', dir, 'Report ✓', 'exclusive']);
    await holder.waitForOutput('held');
    await expect(locks.request('Report ✓', { ifAvailable: true }, (lock) => lock)).resolves.toBeNull();
    await expect(locks.request('report ✓', { ifAvailable: true }, (lock) => lock?.name)).resolves.toBe('report ✓');
    let granted = false;
    const waiting = locks.request('Report ✓', (lock) => {
      granted = true;
      return lock?.mode;
    });
    // Time enough for a wrong grant to show up.
    await sleep(50);
    expect(granted).toBe(false);
    holder.child.stdin!.write('release\n');
    await expect(waiting).resolves.toBe('exclusive');
    await holder.succeeded();
  });

  it('rejects a request waiting on another process when its signal aborts', async () => {
    const dir = tempDir();
    const holder = runNode(fixture('lock-manager.mjs'), ['hold', dir, 'job', 'exclusive']);
    await holder.waitForOutput('held');
    const reason = new Error('gave up');
    const waiting = createLockManager(dir).request('job', { signal: AbortSignal.timeout(100) }, () => 'ran');
    const error = await rejection(() => waiting);
    expect((error as DOMException).name).toBe('TimeoutError');
    const controller = new AbortController();
    const second = createLockManager(dir).request('job', { signal: controller.signal }, () => 'ran');
    controller.abort(reason);
    await expect(second).rejects.toBe(reason);
    holder.child.stdin!.write('release\n');
    await holder.succeeded();
  });
});

describe.each([
  ['from /proc/locks', false],
  ['by one try, as on macOS and Windows', true],
])('createLockManager query() across processes, %s', (_how, tryOnce) => {
  beforeEach((ctx) => {
    if (!tryOnce) skipWithout(ctx, 'linux');
    const saved = process.env.NATIVE_FILE_LOCK_TEST_NO_PROC_LOCKS;
    if (tryOnce) process.env.NATIVE_FILE_LOCK_TEST_NO_PROC_LOCKS = '1';
    return () => {
      if (saved === undefined) delete process.env.NATIVE_FILE_LOCK_TEST_NO_PROC_LOCKS;
      else process.env.NATIVE_FILE_LOCK_TEST_NO_PROC_LOCKS = saved;
    };
  });

  it("lists another process's held lock by its name and mode, and its pid where the platform tells", async () => {
    const dir = tempDir();
    const locks = createLockManager(dir);
    const holder = runNode(fixture('lock-manager.mjs'), ['hold', dir, 'Report ✓', 'exclusive']);
    await holder.waitForOutput('held');
    const { held, pending } = await locks.query();
    const expected = tryOnce ? { name: 'Report ✓', mode: 'exclusive' } : { name: 'Report ✓', mode: 'exclusive', clientId: `node-${holder.pid}` };
    expect(held).toEqual([expected]);
    expect(pending).toEqual([]);
    holder.child.stdin!.write('release\n');
    await holder.succeeded();
    expect(await locks.query()).toEqual({ held: [], pending: [] });
  });

  it('lists a shared lock this process holds once, and the other process sharing it where the platform tells', async () => {
    const dir = tempDir();
    const locks = createLockManager(dir);
    const holder = runNode(fixture('lock-manager.mjs'), ['hold', dir, 'config', 'shared']);
    await holder.waitForOutput('held');
    const snapshot = await locks.request('config', { mode: 'shared' }, () => locks.query());
    const byClient = (snapshot.held ?? []).map((i) => `${i.name} ${i.mode} ${i.clientId}`).sort();
    const mine = `config shared node-${process.pid}-${workerThreads.threadId}`;
    // One try finds only this thread's own hold: it cannot tell who else shares it.
    expect(byClient).toEqual(tryOnce ? [mine] : [`config shared node-${holder.pid}`, mine].sort());
    holder.child.stdin!.write('release\n');
    await holder.succeeded();
  });

  it('lists only lock files it named, and tells names back however they were encoded', async () => {
    const dir = tempDir();
    writeFileSync(join(dir, 'foreign.txt'), '');
    writeFileSync(join(dir, 'Upper.lock'), '');
    const locks = createLockManager(dir);
    const names = ['A b', '', 'con', 'é/ü', 'x'.repeat(10)];
    const seen = await nest(locks, names, async () => (await locks.query()).held!.map((i) => i.name));
    expect(seen.sort()).toEqual([...names].sort());
  });
});

describe('createLockManager query() from /proc/locks', () => {
  it('lists a request of another process waiting for the lock as pending', async (ctx) => {
    // Only /proc/locks shows the processes blocked on a lock file.
    skipWithout(ctx, 'linux');
    const dir = tempDir();
    const locks = createLockManager(dir);
    const holder = await holdUntilReleased(locks, 'job');
    const waiter = runNode(fixture('lock-manager.mjs'), ['hold', dir, 'job', 'exclusive']);
    const snapshot = (await waitFor(async () => {
      const s = await locks.query();
      return s.pending!.length > 0 ? s : undefined;
    }, 'the other process to wait for the lock'))!;
    expect(snapshot.pending).toEqual([{ name: 'job' }]);
    expect(snapshot.held).toEqual([{ name: 'job', mode: 'exclusive', clientId: `node-${process.pid}-${workerThreads.threadId}` }]);
    holder.release();
    await holder.done;
    await waiter.waitForOutput('held');
    waiter.child.stdin!.write('release\n');
    await waiter.succeeded();
  });

});

/** Holds every name (nested requests), then runs fn. */
async function nest<T>(locks: FileLockManager, names: string[], fn: () => Promise<T>): Promise<T> {
  if (names.length === 0) return fn();
  return locks.request(names[0]!, () => nest(locks, names.slice(1), fn));
}

describe('createLockManager', () => {
  it('creates the directory when it is missing', async () => {
    const dir = join(tempDir(), 'a', 'b');
    const locks = createLockManager(dir);
    expect(existsSync(dir)).toBe(true);
    expect(locks.dir).toBe(dir);
    await locks.request('x', () => {});
    expect(readdirSync(dir)).toEqual(['x.lock']);
  });

  it('rejects steal with ENOTSUP: a kernel lock cannot be taken from its holder', async () => {
    const locks = createLockManager(tempDir());
    let called = false;
    const error = await rejection(() => locks.request('x', { steal: true }, () => (called = true)));
    expect(error).toBeInstanceOf(FileLockError);
    expect((error as FileLockError).code).toBe('ENOTSUP');
    expect((error as FileLockError).path).toBe(join(locks.dir, 'x.lock'));
    expect(called).toBe(false);
  });

  it('refuses a directory path that names a file, or runs through one, with a FileLockError ENOTDIR naming it', () => {
    const file = join(tempDir(), 'file');
    writeFileSync(file, '');
    for (const dir of [file, join(file, 'sub')]) {
      let error: unknown;
      try {
        createLockManager(dir);
      } catch (e) {
        error = e;
      }
      expect(error).toBeInstanceOf(FileLockError);
      expect(error).toMatchObject({ code: 'ENOTDIR', path: dir, syscall: 'mkdir' });
      expect((error as Error).message).toContain(dir);
    }
  });

  it('refuses a bad directory and unknown options with a TypeError', async () => {
    expect(() => createLockManager('' as string)).toThrow(TypeError);
    expect(() => createLockManager(42 as unknown as string)).toThrow(TypeError);
    const locks = createLockManager(tempDir());
    await expect(locks.request('x', { timeout: 5 } as never, () => {})).rejects.toThrow(/Unknown option 'timeout'/);
    await expect(locks.request('x', { signal: 'no' } as never, () => {})).rejects.toThrow(TypeError);
  });

  it('keeps names distinct as file names, also those differing only in case, and safe on Windows', async () => {
    const dir = tempDir();
    const locks = createLockManager(dir);
    const names = ['a', 'A', 'con', 'CON', 'nul', '', '.', '..', 'a/b', 'a\\b', 'a%41', 'aA', 'x'.repeat(300), 'x'.repeat(301), 'é', 'e\u0301', '\uD800', '\uFFFD', 'trailing. '];
    for (const name of names) await locks.request(name, () => {});
    const files = readdirSync(dir);
    expect(files).toHaveLength(names.length);
    expect(new Set(files.map((f) => f.toLowerCase())).size).toBe(names.length);
    for (const file of files) {
      expect(file).toMatch(/^[a-z0-9_%~A-F-]+\.lock$/);
      expect(file.length).toBeLessThanOrEqual(255);
      expect(file).not.toMatch(/^(con|prn|aux|nul|com\d|lpt\d)\./i);
    }
  });

  it('fails a request nested in a callback holding the same name with EDEADLK once nothing else could release it', async () => {
    const child = runNode(fixture('lock-manager.mjs'), ['nested', tempDir(), 'x']);
    await child.succeeded();
    expect(child.stdout.trim()).toBe('EDEADLK');
  });

  it('names the lock file of an upper-case letter by its escape, and of the empty name by ~', async () => {
    const dir = tempDir();
    const locks = createLockManager(dir);
    await locks.request('Report', () => {});
    await locks.request('', () => {});
    expect(readdirSync(dir).sort()).toEqual(['%52eport.lock', '~.lock']);
  });

  it('holds each name on its own: another name is free while one is held', async () => {
    const locks = createLockManager(tempDir());
    const inner = await locks.request('one', () => locks.request('two', { ifAvailable: true }, (lock) => lock?.name));
    expect(inner).toBe('two');
  });
});

// lib.dom's LockManager as TypeScript 5.9 declares it (tsconfig has no DOM lib).
interface DomLock {
  readonly mode: 'exclusive' | 'shared';
  readonly name: string;
}
interface DomLockOptions {
  ifAvailable?: boolean;
  mode?: 'exclusive' | 'shared';
  signal?: AbortSignal;
  steal?: boolean;
}
interface DomLockInfo {
  clientId?: string;
  mode?: 'exclusive' | 'shared';
  name?: string;
}
interface DomLockManager {
  query(): Promise<{ held?: DomLockInfo[]; pending?: DomLockInfo[] }>;
  request<T>(name: string, callback: (lock: DomLock | null) => T): Promise<T>;
  request<T>(name: string, options: DomLockOptions, callback: (lock: DomLock | null) => T): Promise<T>;
}

describe('createLockManager types', () => {
  it("fit where lib.dom's LockManager is expected, and infer the callback's awaited value", () => {
    expectTypeOf<FileLockManager>().toMatchTypeOf<DomLockManager>();
    expectTypeOf<LockManagerRequestOptions>().toEqualTypeOf<Required<DomLockOptions> extends infer R ? { [K in keyof R]?: R[K] } : never>();
    // Types only: never called.
    const locks = (): FileLockManager => createLockManager('.');
    expectTypeOf(() => locks().request('x', async () => 42)).returns.toEqualTypeOf<Promise<number>>();
    expectTypeOf(() => locks().request('x', { mode: 'shared' }, (lock) => lock?.mode)).returns.toEqualTypeOf<Promise<'exclusive' | 'shared' | undefined>>();
  });
});
