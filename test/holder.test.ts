// Who holds a lock: inspect(), isLocked() and the holder named by a timeout,
// against real holders (this library in other processes, flock(1), Python).
import { existsSync, mkdirSync, realpathSync } from 'node:fs';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';

import { inspect, isLocked, lock, lockSync, LockTimeoutError, tryLock, withFileLock, withFileLockSync, type LockState } from 'native-file-lock';

import { fileLockError, fixture, plainEnv, Proc, requirementsEnforced, requires, runNode, runSync, skipWithout, tempDir, waitFor } from './helpers.js';
import { flockProbe, letGo, pythonHolder, runFlock } from './peers.js';

/** A resource in a fresh directory and its lock file (the directory is real, so no symlink to resolve). */
function fresh(): { path: string; lockPath: string } {
  const dir = realpathSync(tempDir());
  const path = join(dir, 'data');
  return { path, lockPath: `${path}.lock` };
}

/** This library holding path in another process (shared with shared), once it has printed 'locked'. */
async function libraryHolder(path: string, shared = false): Promise<Proc> {
  const holder = runNode(fixture('holder.mjs'), ['hold', path, ...(shared ? ['shared'] : [])]);
  await holder.waitForOutput('locked');
  return holder;
}

/** inspect() and isLocked() asked by another process. */
async function inspectElsewhere(path: string, env: NodeJS.ProcessEnv = process.env, lockfilePath?: string): Promise<{ state: LockState; isLocked: boolean }> {
  const child = runNode(fixture('holder.mjs'), ['inspect', path, ...(lockfilePath === undefined ? [] : [lockfilePath])], { env });
  await child.succeeded();
  return JSON.parse(child.stdout) as { state: LockState; isLocked: boolean };
}

function pids(state: LockState): number[] {
  return (state.holders ?? []).map((h) => h.pid!).sort((a, b) => a - b);
}

describe('inspect and isLocked on Linux, from /proc/locks', () => {
  requires('linux', '/proc');

  it('shows a lock another process of this library holds as locked, with that process as holder, seen from a third process too', async () => {
    const { path } = fresh();
    const holder = await libraryHolder(path);
    const here = inspect(path);
    expect(here).toMatchObject({ locked: true, shared: false, holder: { pid: holder.pid }, waiting: 0 });
    expect(pids(here)).toEqual([holder.pid]);
    expect(isLocked(path)).toBe(true);
    const there = await inspectElsewhere(path);
    expect(there.state).toMatchObject({ locked: true, shared: false, holder: { pid: holder.pid } });
    expect(there.isLocked).toBe(true);
    await letGo(holder);
    expect(inspect(path)).toMatchObject({ locked: false });
    expect(isLocked(path)).toBe(false);
  });

  it('lists a holder once and never reads it as free while other processes take and drop hundreds of locks', async (ctx) => {
    // /proc/locks is handed out a page per read, and a lock taken or dropped
    // between two pages shifts where the next one starts.
    skipWithout(ctx, 'python3');
    const { path } = fresh();
    const holder = await libraryHolder(path);
    const dir = tempDir();
    const churners = ['a', 'b'].map((prefix) => new Proc('python3', [fixture('flock-churn.py'), dir, prefix, '100'], { env: plainEnv }));
    try {
      await Promise.all(churners.map((c) => c.waitForOutput('churning')));
      const wrong: LockState[] = [];
      for (let i = 0; i < 1500; i++) {
        const state = inspect(path);
        if (!state.locked || pids(state).join() !== String(holder.pid)) wrong.push(state);
      }
      expect(wrong.slice(0, 3)).toEqual([]);
      expect(isLocked(path)).toBe(true);
    } finally {
      await Promise.all(churners.map((c) => letGo(c)));
    }
    await letGo(holder);
  });

  it('lists every process of a shared lock while other processes take and drop hundreds of locks', async (ctx) => {
    skipWithout(ctx, 'python3');
    const { path, lockPath } = fresh();
    const holders = [0, 1, 2].map(() => pythonHolder(lockPath, 'flock', 'LOCK_SH'));
    await Promise.all(holders.map((h) => h.waitForOutput('locked')));
    const expected = holders.map((h) => h.pid).sort((a, b) => a - b).join();
    const dir = tempDir();
    const churners = ['a', 'b'].map((prefix) => new Proc('python3', [fixture('flock-churn.py'), dir, prefix, '100'], { env: plainEnv }));
    try {
      await Promise.all(churners.map((c) => c.waitForOutput('churning')));
      const wrong: LockState[] = [];
      for (let i = 0; i < 1000; i++) {
        const state = inspect(path);
        if (!state.locked || !state.shared || pids(state).join() !== expected) wrong.push(state);
      }
      expect(wrong.slice(0, 3)).toEqual([]);
    } finally {
      await Promise.all(churners.map((c) => letGo(c)));
    }
    await Promise.all(holders.map((h) => letGo(h)));
  });

  it('names a util-linux flock(1) holder by its pid', async (ctx) => {
    skipWithout(ctx, 'flock(1)');
    const { path, lockPath } = fresh();
    const holder = runFlock([lockPath, 'sh', '-c', 'echo locked; read line']);
    await holder.waitForOutput('locked');
    expect(inspect(path)).toMatchObject({ locked: true, shared: false, holder: { pid: holder.pid } });
    expect(isLocked(path)).toBe(true);
    await letGo(holder);
    expect(isLocked(path)).toBe(false);
  });

  it('names a Python fcntl.flock holder by its pid, and a shared one as shared', async (ctx) => {
    skipWithout(ctx, 'python3');
    const { path, lockPath } = fresh();
    const holder = pythonHolder(lockPath);
    await holder.waitForOutput('locked');
    expect(inspect(path)).toMatchObject({ locked: true, shared: false, holder: { pid: holder.pid } });
    await letGo(holder);
    const reader = pythonHolder(lockPath, 'flock', 'LOCK_SH');
    await reader.waitForOutput('locked');
    expect(inspect(path)).toMatchObject({ locked: true, shared: true, holder: { pid: reader.pid } });
    await letGo(reader);
  });

  it('counts a whole-file record lock (Python fcntl.lockf) as a holder', async (ctx) => {
    skipWithout(ctx, 'python3');
    const { path, lockPath } = fresh();
    const holder = pythonHolder(lockPath, 'lockf');
    await holder.waitForOutput('locked');
    expect(inspect(path)).toMatchObject({ locked: true, holder: { pid: holder.pid } });
    await letGo(holder);
    expect(isLocked(path)).toBe(false);
  });

  it('lists every shared holder, each with its pid, and says the lock is shared', async () => {
    const { path } = fresh();
    const a = await libraryHolder(path, true);
    const b = await libraryHolder(path, true);
    const state = inspect(path);
    expect(state).toMatchObject({ locked: true, shared: true });
    expect(pids(state)).toEqual([a.pid, b.pid].sort((x, y) => x - y));
    expect(pids(state)).toContain(state.holder!.pid);
    await letGo(a);
    await letGo(b);
  });

  it('counts processes waiting for the lock: this library (behind a queue ticket) and flock(1)', async (ctx) => {
    skipWithout(ctx, 'flock(1)');
    const { path, lockPath } = fresh();
    const holder = await libraryHolder(path);
    const first = runNode(fixture('holder.mjs'), ['wait', path]);
    await waitFor(() => (inspect(path).waiting ?? 0) >= 1, 'the first waiter to block');
    const second = runNode(fixture('holder.mjs'), ['wait', path]);
    const third = runFlock([lockPath, 'sh', '-c', 'echo locked; read line']);
    await waitFor(() => (inspect(path).waiting ?? 0) >= 3, 'three waiters to be counted');
    // Waiters (and their queue tickets) are never taken for holders.
    expect(inspect(path)).toMatchObject({ locked: true, holder: { pid: holder.pid }, holders: [{ pid: holder.pid }] });
    await letGo(holder);
    for (const waiter of [first, second, third]) waiter.child.stdin!.end('\n');
    await Promise.all([first, second, third].map((w) => w.succeeded()));
    expect(inspect(path)).toEqual({ locked: false, waiting: 0 });
  });

  it('shows a lock this process holds as locked by this process, also inside its own withFileLock callback', async () => {
    const { path } = fresh();
    const held = await lock(path);
    expect(inspect(path)).toMatchObject({ locked: true, shared: false, holder: { pid: process.pid } });
    expect(isLocked(path)).toBe(true);
    await held.release();
    expect(isLocked(path)).toBe(false);
    const inside = await withFileLock(path, () => inspect(path));
    expect(inside).toMatchObject({ locked: true, holder: { pid: process.pid } });
  });

  it('honours lockfilePath', async () => {
    const { path } = fresh();
    const other = join(realpathSync(tempDir()), 'elsewhere.lock');
    const holder = runNode(fixture('holder.mjs'), ['hold', other]);
    await holder.waitForOutput('locked');
    // The holder locked `other.lock`'s resource name: its lock file is other + '.lock'.
    expect(inspect(path, { lockfilePath: `${other}.lock` })).toMatchObject({ locked: true, holder: { pid: holder.pid } });
    expect(isLocked(path)).toBe(false);
    expect((await inspectElsewhere(path, process.env, `${other}.lock`)).isLocked).toBe(true);
    await letGo(holder);
  });
});

describe('inspect without /proc/locks: one try, released at once', () => {
  // The fallback of macOS, Windows and Linux without /proc, forced here.
  let saved: string | undefined;
  beforeEach(() => {
    saved = process.env.NATIVE_FILE_LOCK_TEST_NO_PROC_LOCKS;
    process.env.NATIVE_FILE_LOCK_TEST_NO_PROC_LOCKS = '1';
  });
  afterEach(() => {
    if (saved === undefined) delete process.env.NATIVE_FILE_LOCK_TEST_NO_PROC_LOCKS;
    else process.env.NATIVE_FILE_LOCK_TEST_NO_PROC_LOCKS = saved;
  });

  it("shows another process's exclusive hold as locked with no pid, and its release as free", async () => {
    const { path } = fresh();
    const holder = await libraryHolder(path);
    const state = inspect(path);
    expect(state.locked).toBe(true);
    expect(state.shared).toBe(false);
    expect(state.holder).toEqual({ pid: undefined });
    expect(state.waiting).toBeUndefined();
    expect(isLocked(path)).toBe(true);
    // From another process too.
    const there = await inspectElsewhere(path, { ...process.env, NATIVE_FILE_LOCK_TEST_NO_PROC_LOCKS: '1' });
    expect(there).toMatchObject({ state: { locked: true, shared: false }, isLocked: true });
    await letGo(holder);
    expect(inspect(path)).toEqual({ locked: false });
  });

  it('tells shared holders apart from an exclusive one', async () => {
    const { path } = fresh();
    const reader = await libraryHolder(path, true);
    expect(inspect(path)).toMatchObject({ locked: true, shared: true });
    await letGo(reader);
  });

  it('gives the lock back at once: another process can take it right after', async (ctx) => {
    skipWithout(ctx, 'flock(1)');
    const { path, lockPath } = fresh();
    await (await lock(path)).release();
    expect(inspect(path)).toEqual({ locked: false });
    expect(flockProbe(lockPath)).toBe('free');
    expect(await tryLock(path)).toBeDefined();
  });

  it('shows a lock this thread holds as locked by this process, also inside its own withFileLock callback', async () => {
    const { path } = fresh();
    const held = await lock(path, { shared: true });
    expect(inspect(path)).toMatchObject({ locked: true, shared: true, holder: { pid: process.pid } });
    await held.release();
    expect(isLocked(path)).toBe(false);
    const inside = await withFileLock(path, () => inspect(path));
    expect(inside).toMatchObject({ locked: true, shared: false, holder: { pid: process.pid } });
    expect(isLocked(path)).toBe(false);
  });
});

describe('inspect never creates the lock file', () => {
  it.each([
    ['from /proc/locks', undefined],
    ['when it must try', '1'],
  ])('a missing lock file is free and stays missing (%s)', (_how, noProcLocks) => {
    const saved = process.env.NATIVE_FILE_LOCK_TEST_NO_PROC_LOCKS;
    if (noProcLocks === undefined) delete process.env.NATIVE_FILE_LOCK_TEST_NO_PROC_LOCKS;
    else process.env.NATIVE_FILE_LOCK_TEST_NO_PROC_LOCKS = noProcLocks;
    try {
      const { path, lockPath } = fresh();
      expect(inspect(path)).toMatchObject({ locked: false });
      expect(isLocked(path)).toBe(false);
      expect(existsSync(lockPath)).toBe(false);
      expect(existsSync(path)).toBe(false);
    } finally {
      if (saved === undefined) delete process.env.NATIVE_FILE_LOCK_TEST_NO_PROC_LOCKS;
      else process.env.NATIVE_FILE_LOCK_TEST_NO_PROC_LOCKS = saved;
    }
  });

  it('a bad path is a TypeError, a missing directory a FileLockError naming the lock file', async () => {
    expect(() => inspect('')).toThrow(TypeError);
    expect(() => inspect('x', { bogus: 1 } as never)).toThrow(TypeError);
    const dir = realpathSync(tempDir());
    const error = await fileLockError(async () => inspect(join(dir, 'no-such-dir', 'data')));
    expect(error.code).toBe('ENOENT');
    expect(error.path).toContain('no-such-dir');
  });
});

describe('inspect on something that is not a lock file', () => {
  it.each([
    ['from /proc/locks', undefined],
    ['when it must try', '1'],
  ])('a directory at the lock path is EISDIR, as lock() says, not free (%s)', async (_how, noProcLocks) => {
    const saved = process.env.NATIVE_FILE_LOCK_TEST_NO_PROC_LOCKS;
    if (noProcLocks === undefined) delete process.env.NATIVE_FILE_LOCK_TEST_NO_PROC_LOCKS;
    else process.env.NATIVE_FILE_LOCK_TEST_NO_PROC_LOCKS = noProcLocks;
    try {
      const dir = realpathSync(tempDir());
      const lockfilePath = join(dir, 'a-directory');
      mkdirSync(lockfilePath);
      const path = join(dir, 'data');
      const fromLock = await fileLockError(() => lock(path, { lockfilePath }));
      const fromInspect = await fileLockError(async () => inspect(path, { lockfilePath }));
      expect(fromInspect).toMatchObject({ code: 'EISDIR', path: lockfilePath });
      expect(fromInspect.code).toBe(fromLock.code);
      expect(() => isLocked(path, { lockfilePath })).toThrow(/EISDIR/);
    } finally {
      if (saved === undefined) delete process.env.NATIVE_FILE_LOCK_TEST_NO_PROC_LOCKS;
      else process.env.NATIVE_FILE_LOCK_TEST_NO_PROC_LOCKS = saved;
    }
  });
});

describe('a timeout names the holder', () => {
  it('on Linux the error carries the holding process in holder and in its message', async (ctx) => {
    skipWithout(ctx, 'linux', '/proc');
    const { path } = fresh();
    const holder = await libraryHolder(path);
    for (const call of [() => lock(path, { timeout: 50 }), () => withFileLock(path, () => 0, { timeout: 0 })]) {
      const error = await fileLockError(call);
      expect(error).toBeInstanceOf(LockTimeoutError);
      expect((error as LockTimeoutError).holder).toEqual({ pid: holder.pid });
      expect(error.message).toContain(`held by pid ${holder.pid}`);
    }
    await letGo(holder);
  });

  it('the synchronous calls name the holder in their timeout error too', async (ctx) => {
    skipWithout(ctx, 'linux', '/proc');
    const { path } = fresh();
    const holder = await libraryHolder(path);
    for (const call of [() => lockSync(path, { timeout: 50 }), () => withFileLockSync(path, () => 0, { timeout: 0 })]) {
      const error = await fileLockError(async () => call());
      expect(error).toBeInstanceOf(LockTimeoutError);
      expect((error as LockTimeoutError).holder).toEqual({ pid: holder.pid });
      expect(error.message).toContain(`held by pid ${holder.pid}`);
    }
    await letGo(holder);
  });

  it('names a flock(1) holder too', async (ctx) => {
    skipWithout(ctx, 'linux', '/proc', 'flock(1)');
    const { path, lockPath } = fresh();
    const holder = runFlock([lockPath, 'sh', '-c', 'echo locked; read line']);
    await holder.waitForOutput('locked');
    const error = (await fileLockError(() => lock(path, { timeout: 20 }))) as LockTimeoutError;
    expect(error.holder).toEqual({ pid: holder.pid });
    expect(error.message).toMatch(new RegExp(`held by pid ${holder.pid}$`));
    await letGo(holder);
  });

  it('says nothing about a holder it cannot know', async () => {
    const saved = process.env.NATIVE_FILE_LOCK_TEST_NO_PROC_LOCKS;
    process.env.NATIVE_FILE_LOCK_TEST_NO_PROC_LOCKS = '1';
    try {
      const { path } = fresh();
      const holder = await libraryHolder(path);
      const error = (await fileLockError(() => lock(path, { timeout: 20 }))) as LockTimeoutError;
      expect(error.code).toBe('ELOCKTIMEOUT');
      expect(error.holder).toBeUndefined();
      expect(error.message).not.toContain('held by');
      await letGo(holder);
    } finally {
      if (saved === undefined) delete process.env.NATIVE_FILE_LOCK_TEST_NO_PROC_LOCKS;
      else process.env.NATIVE_FILE_LOCK_TEST_NO_PROC_LOCKS = saved;
    }
  });
});

describe('inspect in a child pid namespace', () => {
  it('finds a lock held outside the namespace, which /proc/locks there leaves out, by one try: locked, pid unknown', async (ctx) => {
    skipWithout(ctx, 'linux', 'root', '/proc', 'flock(1)');
    if (runSync('unshare', ['--pid', '--fork', '--mount-proc', 'true']).status !== 0) {
      if (requirementsEnforced) throw new Error('unshare --pid --fork --mount-proc failed as root');
      ctx.skip('unshare --pid cannot make a pid namespace here');
    }
    const { path, lockPath } = fresh();
    const holder = runFlock([lockPath, 'sh', '-c', 'echo locked; read line']);
    await holder.waitForOutput('locked');
    const inside = new Proc('unshare', ['--pid', '--fork', '--mount-proc', process.execPath, fixture('holder.mjs'), 'inspect', path]);
    await inside.succeeded();
    const { state, isLocked: locked } = JSON.parse(inside.stdout) as { state: LockState; isLocked: boolean };
    expect(state).toMatchObject({ locked: true, shared: false, holders: [{}] });
    expect(state.holder?.pid).toBeUndefined();
    expect(locked).toBe(true);
    await letGo(holder);
    const after = new Proc('unshare', ['--pid', '--fork', '--mount-proc', process.execPath, fixture('holder.mjs'), 'inspect', path]);
    await after.succeeded();
    expect(JSON.parse(after.stdout)).toMatchObject({ state: { locked: false }, isLocked: false });
  });
});
