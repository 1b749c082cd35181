import { execFileSync } from 'node:child_process';
import { chmodSync, chownSync, existsSync, mkdirSync, mkdtempSync, realpathSync, rmSync, rmdirSync, symlinkSync, unlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';

import { createLockManager, FileLockError, lock, lockSync, tryLock, withFileLock, withFileLockSync, withFileLocks } from 'native-file-lock';
import properLockfile from 'proper-lockfile';

import { Agent, fdCount, lockFileOf, missing, openFiles, rejection, requires, resourceIn, skipWithout, tempDir } from './helpers.js';
import { flockProbe } from './peers.js';

let agent: Agent;
beforeAll(async () => {
  agent = await Agent.start();
});
afterAll(async () => {
  await agent.stop();
});

// Loose typing on purpose: these calls pass what TypeScript would refuse.
const anyWithFileLock = withFileLock as (...args: unknown[]) => Promise<unknown>;
const anyLock = lock as (...args: unknown[]) => Promise<unknown>;
const anyTryLock = tryLock as (...args: unknown[]) => Promise<unknown>;

describe('bad arguments', () => {
  const entryPoints = [
    ['withFileLock', (path: unknown, options?: unknown) => anyWithFileLock(path, () => 'ran', options)],
    ['lock', (path: unknown, options?: unknown) => anyLock(path, options)],
    ['tryLock', (path: unknown, options?: unknown) => anyTryLock(path, options)],
  ] as const;

  describe.each(entryPoints)('%s', (_name, call) => {
    let path: string;
    beforeAll(() => {
      path = join(mkdtempSync(join(tmpdir(), 'nfl-errors-')), 'data');
      writeFileSync(path, 'x');
    });
    afterAll(() => rmSync(join(path, '..'), { recursive: true, force: true }));

    it.each([
      ['a number', 42, TypeError, 'ERR_INVALID_ARG_TYPE', /path must be a string, a file: URL or a Buffer, got number 42/],
      ['undefined', undefined, TypeError, 'ERR_INVALID_ARG_TYPE', /path must be a string, a file: URL or a Buffer, got undefined/],
      ['null', null, TypeError, 'ERR_INVALID_ARG_TYPE', /path must be a string, a file: URL or a Buffer, got null/],
      ['an http: URL', new URL('http://example.com/data'), TypeError, 'ERR_INVALID_ARG_VALUE', /path must be a file: URL, got a http: URL/],
      ['a file: URL with a remote host', new URL('file://server/share/data'), TypeError, 'ERR_INVALID_ARG_VALUE', /path is not a file path: file:\/\/server/],
      ['a Buffer that is not UTF-8', Buffer.from([0x2f, 0x74, 0xff, 0x78]), TypeError, 'ERR_INVALID_ARG_VALUE', /path must hold UTF-8 when it is a Buffer/],
      ['a file: URL with an encoded NUL', new URL('file:///tmp/a%00b'), TypeError, 'ERR_INVALID_ARG_VALUE', /path must not contain NUL|path is not a file path/],
      ['empty', '', TypeError, 'ERR_INVALID_ARG_VALUE', /path must not be empty/],
      ['containing NUL', '/tmp/a\0b', TypeError, 'ERR_INVALID_ARG_VALUE', /path must not contain NUL/],
    ])('rejects a path that is %s with a TypeError carrying Node\'s code', async (_what, bad, type, code, message) => {
      const error = await rejection(() => call(bad));
      expect(error).toBeInstanceOf(type);
      expect((error as NodeJS.ErrnoException).code).toBe(code);
      expect((error as Error).message).toMatch(message);
    });

    it.each([
      ['options that are a string', 'fast', TypeError, 'ERR_INVALID_ARG_TYPE', /options must be an object, got string "fast"/],
      ['options that are null', null, TypeError, 'ERR_INVALID_ARG_TYPE', /options must be an object, got null/],
      ['an unknown option key', { timeOut: 5 }, TypeError, 'ERR_INVALID_ARG_VALUE', /Unknown option 'timeOut'.*timeout/],
      ['a negative timeout', { timeout: -1 }, RangeError, 'ERR_OUT_OF_RANGE', /options\.timeout must be a non-negative number.*-1/],
      ['a NaN timeout', { timeout: NaN }, RangeError, 'ERR_OUT_OF_RANGE', /options\.timeout .*NaN/],
      ['a string timeout', { timeout: '100' }, TypeError, 'ERR_INVALID_ARG_TYPE', /options\.timeout must be a number of milliseconds, got string "100"/],
      ['a signal that is not an AbortSignal', { signal: { aborted: 'no' } }, TypeError, 'ERR_INVALID_ARG_TYPE', /options\.signal must be an AbortSignal/],
      ['an empty lockfilePath', { lockfilePath: '' }, TypeError, 'ERR_INVALID_ARG_VALUE', /options\.lockfilePath must not be empty/],
      ['a lockfilePath that is not a string', { lockfilePath: 7 }, TypeError, 'ERR_INVALID_ARG_TYPE', /options\.lockfilePath must be a string/],
      ['an unknown key next to known ones', { timeout: 10, retries: 3 }, TypeError, 'ERR_INVALID_ARG_VALUE', /Unknown option 'retries'/],
      ['a boolean timeout', { timeout: true }, TypeError, 'ERR_INVALID_ARG_TYPE', /options\.timeout must be a number of milliseconds, got boolean true/],
      ['a negative infinite timeout', { timeout: -Infinity }, RangeError, 'ERR_OUT_OF_RANGE', /options\.timeout must be a non-negative number or Infinity, got -Infinity/],
    ])('rejects %s with the error type and Node\'s code for it', async (_what, options, type, code, message) => {
      const error = await rejection(() => call(path, options));
      expect(error).toBeInstanceOf(type);
      expect((error as NodeJS.ErrnoException).code).toBe(code);
      expect((error as Error).message).toMatch(message);
      // A rejected call must not leave the lock taken.
      expect(await agent.canLock(path)).toBe(true);
    });
  });

  it.each([
    ['a string', 'not a function', /fn must be a function, got string/],
    ['undefined', undefined, /fn must be a function, got undefined/],
    ['null', null, /fn must be a function, got null/],
  ])('withFileLock rejects fn that is %s, holding nothing', async (_what, fn, message) => {
    const path = resourceIn(tempDir());
    const error = await rejection(() => anyWithFileLock(path, fn));
    expect(error).toBeInstanceOf(TypeError);
    expect((error as NodeJS.ErrnoException).code).toBe('ERR_INVALID_ARG_TYPE');
    expect((error as Error).message).toMatch(message);
    expect(await agent.canLock(path)).toBe(true);
  });
  it('gives the same codes from the several-lock, synchronous and lock manager calls', async () => {
    const path = resourceIn(tempDir());
    const codeOf = (call: () => unknown) => {
      try {
        call();
      } catch (error) {
        return (error as NodeJS.ErrnoException).code;
      }
      return 'no error';
    };
    const loose = { withFileLocks, lockSync, withFileLockSync, createLockManager } as unknown as Record<string, (...args: unknown[]) => unknown>;
    expect(await rejection(() => loose.withFileLocks!([], () => 1) as Promise<unknown>)).toMatchObject({ code: 'ERR_INVALID_ARG_VALUE' });
    expect(await rejection(() => loose.withFileLocks!(path, () => 1) as Promise<unknown>)).toMatchObject({ code: 'ERR_INVALID_ARG_TYPE' });
    expect(await rejection(() => loose.withFileLocks!([{ path, colour: 'red' }], () => 1) as Promise<unknown>)).toMatchObject({ code: 'ERR_INVALID_ARG_VALUE' });
    expect(codeOf(() => loose.lockSync!(path, { timeout: -1 }))).toBe('ERR_OUT_OF_RANGE');
    expect(codeOf(() => loose.lockSync!(42))).toBe('ERR_INVALID_ARG_TYPE');
    expect(codeOf(() => loose.withFileLockSync!(path, 'not a function'))).toBe('ERR_INVALID_ARG_TYPE');
    expect(codeOf(() => loose.createLockManager!(''))).toBe('ERR_INVALID_ARG_VALUE');
    await expect(createLockManager(tempDir()).request('x', { timeout: 5 } as never, () => {})).rejects.toMatchObject({ code: 'ERR_INVALID_ARG_VALUE' });
    expect(await agent.canLock(path)).toBe(true);
  });
});

/** Asserts a coded FileLockError that names the path, and that no descriptor was left open. */
async function expectCodedError(
  call: () => Promise<unknown>,
  code: string,
  named: string,
  extra?: RegExp,
): Promise<FileLockError> {
  // Descriptors are counted where /proc lists them.
  const countFds = missing('/proc') === undefined;
  const before = countFds ? fdCount() : 0;
  const error = await rejection(call);
  expect(error).toBeInstanceOf(FileLockError);
  const e = error as FileLockError;
  expect(e.code).toBe(code);
  expect(e.message).toContain(named);
  if (extra) expect(e.message).toMatch(extra);
  if (countFds) {
    expect(openFiles().filter((target) => target.startsWith(named))).toEqual([]);
    expect(fdCount()).toBeLessThanOrEqual(before);
  }
  return e;
}

describe('system errors name the path and leave nothing held', () => {
  it('a missing parent directory rejects with ENOENT', async () => {
    const dir = tempDir();
    const path = join(dir, 'missing', 'sub', 'data');
    const e = await expectCodedError(() => lock(path), 'ENOENT', join(dir, 'missing'));
    // path is the lock file, as for every lock error; resource what the caller passed.
    expect(e.path).toBe(path + '.lock');
    expect(e.message).toContain(`'${path}.lock'`);
    expect(e.resource).toBe(path);
    mkdirSync(join(dir, 'missing', 'sub'), { recursive: true });
    const fileLock = await tryLock(path);
    expect(fileLock).toBeDefined();
    await fileLock!.release();
  });

  it('a lockfilePath in a missing directory rejects with ENOENT', async () => {
    const dir = tempDir();
    const path = resourceIn(dir);
    const lockfilePath = join(dir, 'nowhere', 'x.lock');
    const e = await expectCodedError(() => withFileLock(path, () => 'ran', { lockfilePath }), 'ENOENT', join(dir, 'nowhere'));
    expect(e.path).toBe(lockfilePath);
    expect(e.resource).toBe(path);
  });

  it('an ENOENT where the directory exists blames the file system, not a missing directory (as /proc gives)', async (ctx) => {
    skipWithout(ctx, 'linux', '/proc');
    // /proc exists, but nothing can be created in it: open(O_CREAT) answers ENOENT.
    const e = await expectCodedError(() => lock('/proc/nfl-test-resource'), 'ENOENT', '/proc/nfl-test-resource.lock');
    expect(e.message).not.toMatch(/does not exist/);
    expect(e.message).toMatch(/file system/);
  });

  it('a parent that is a regular file rejects with ENOTDIR', async () => {
    const dir = tempDir();
    const file = resourceIn(dir, 'plain');
    await expectCodedError(() => lock(join(file, 'data')), 'ENOTDIR', file);
  });

  it('a lock directory left by proper-lockfile rejects with EISDIR and a message that explains the clash', async () => {
    const dir = tempDir();
    const path = resourceIn(dir);
    const release = await properLockfile.lock(path);
    try {
      const e = await expectCodedError(() => lock(path, { timeout: 100 }), 'EISDIR', realpathSync(path) + '.lock', /proper-lockfile/);
      expect(e.message).toMatch(/lockfilePath/);
    } finally {
      await release();
    }
    // With another lock file, both libraries can be used side by side during a migration.
    const held = await lock(path, { lockfilePath: join(dir, 'data.flock') });
    expect(await properLockfile.check(path)).toBe(false);
    await held.release();
  });

  it('a lock path that is a directory rejects with EISDIR', async () => {
    const dir = tempDir();
    const path = resourceIn(dir);
    const lockPath = realpathSync(path) + '.lock';
    mkdirSync(lockPath);
    const e = await expectCodedError(() => lock(path), 'EISDIR', lockPath);
    expect(e.path).toBe(lockPath);
    expect(e.resource).toBe(path);
    // Nothing stuck in this process: once the obstacle is gone the lock is free.
    rmdirSync(lockPath);
    const fileLock = await tryLock(path);
    expect(fileLock).toBeDefined();
    await fileLock!.release();
  });

  it('a FIFO at the lock path rejects with EFTYPE at once instead of blocking on the open', async (ctx) => {
    skipWithout(ctx, 'posix');
    const dir = tempDir();
    const path = resourceIn(dir);
    const lockPath = lockFileOf(path);
    execFileSync('mkfifo', [lockPath]);
    await expectCodedError(() => lock(path, { timeout: 1000 }), 'EFTYPE', lockPath, /not a regular file/);
    unlinkSync(lockPath);
    const fileLock = await tryLock(path);
    expect(fileLock).toBeDefined();
    await fileLock!.release();
  });

  it('a lock file that is a symbolic link rejects with ELOOP and an explanation, and is never followed', async () => {
    const dir = tempDir();
    const path = resourceIn(dir);
    const lockPath = realpathSync(path) + '.lock';
    const target = join(dir, 'target');
    symlinkSync(target, lockPath);
    const e = await expectCodedError(() => withFileLock(path, () => 'ran'), 'ELOOP', lockPath, /symbolic link/);
    expect(e.path).toBe(lockPath);
    // O_NOFOLLOW: the dangling link's target was not created.
    expect(existsSync(target)).toBe(false);

    writeFileSync(target, 'y');
    await expectCodedError(() => lock(path), 'ELOOP', lockPath, /symbolic link/);

    unlinkSync(lockPath);
    await expect(withFileLock(path, () => 'ran', { timeout: 0 })).resolves.toBe('ran');
  });

  it('a lockfilePath that is a symbolic link rejects with ELOOP', async () => {
    const dir = tempDir();
    const path = resourceIn(dir);
    const real = resourceIn(dir, 'real.lock');
    symlinkSync(real, join(dir, 'link.lock'));
    await expectCodedError(() => lock(path, { lockfilePath: join(dir, 'link.lock') }), 'ELOOP', join(realpathSync(dir), 'link.lock'));
    expect(await agent.canLock(path, { lockfilePath: real })).toBe(true);
  });
});

describe('permission denied (as an unprivileged user)', () => {
  requires('root', 'flock(1)', '/proc');
  // Root bypasses permission bits, so the locking process gives up its privileges first.
  it('a directory without write permission rejects with EACCES; an existing lock file is locked read-only', async () => {
    const dir = tempDir();
    chmodSync(dir, 0o755);
    const locked = join(dir, 'locked');
    mkdirSync(locked);
    const path = resourceIn(locked);
    const existing = resourceIn(locked, 'existing');
    writeFileSync(existing + '.lock', '');
    chmodSync(existing + '.lock', 0o644);
    chownSync(locked, 65534, 65534);
    chmodSync(locked, 0o500);

    const nobody = await Agent.start();
    try {
      expect(await nobody.call('dropPrivileges', { user: 65534, group: 65534 })).toEqual({ uid: 65534, gid: 65534 });
      const before = await nobody.call<number>('fdCount');
      const lockPath = join(realpathSync(locked), 'data.lock');

      const error = await nobody.failure('tryLock', { path });
      expect(error).toMatchObject({ name: 'FileLockError', code: 'EACCES' });
      expect(error.message).toContain(lockPath);
      // The failed attempt left nothing held in that process: a retry meets the same
      // obstacle, not a lock it still holds itself.
      expect(await nobody.failure('withFileLock', { path, options: { timeout: 0 } })).toMatchObject({ code: 'EACCES' });
      expect(await nobody.call<number>('fdCount')).toBe(before);
      expect(existsSync(lockPath)).toBe(false);

      // The lock file exists but may not be written: a read-only descriptor still locks.
      const existingLock = await nobody.call<string>('lock', { path: existing });
      expect(existingLock).toBe(realpathSync(existing) + '.lock');
      expect(flockProbe(existingLock)).toBe('held');
      expect(await agent.canLock(existing)).toBe(false);
      await nobody.call('release', { path: existing });
      expect(await agent.canLock(existing)).toBe(true);
    } finally {
      await nobody.stop();
    }
  });
});

describe('a read-only file system', () => {
  const canMount = requires('mount', 'flock(1)', '/proc');
  let mountPoint: string;
  beforeAll(() => {
    if (!canMount) return;
    mountPoint = mkdtempSync(join(tmpdir(), 'nfl-rofs-'));
    execFileSync('mount', ['-t', 'tmpfs', '-o', 'size=1m', 'tmpfs', mountPoint]);
    writeFileSync(join(mountPoint, 'data'), 'x');
    writeFileSync(join(mountPoint, 'existing'), 'x');
    writeFileSync(join(mountPoint, 'existing.lock'), '');
    execFileSync('mount', ['-o', 'remount,ro', mountPoint]);
  });
  afterAll(() => {
    if (!canMount || !mountPoint) return;
    try {
      // Lazy: cached lock-file descriptors (ours, the agent's) keep the mount busy until the idle sweep.
      execFileSync('umount', ['-l', mountPoint]);
    } finally {
      // Also when beforeAll failed before mounting.
      rmSync(mountPoint, { recursive: true, force: true });
    }
  });

  it('rejects with EROFS when the lock file does not exist', async () => {
    const path = join(mountPoint, 'data');
    const lockPath = join(realpathSync(mountPoint), 'data.lock');
    const e = await expectCodedError(() => lock(path), 'EROFS', lockPath);
    expect(e.path).toBe(lockPath);
    // Not left holding anything in-process: a one-attempt retry reports the same error, not a timeout.
    await expectCodedError(() => withFileLock(path, () => 'ran', { timeout: 0 }), 'EROFS', lockPath);
    // The same resource with its lock file elsewhere locks fine.
    const elsewhere = join(tempDir(), 'data.lock');
    await expect(withFileLock(path, () => 'ran', { lockfilePath: elsewhere })).resolves.toBe('ran');
  });

  it('locks through a read-only descriptor when the lock file already exists', async () => {
    const path = join(mountPoint, 'existing');
    const fileLock = await lock(path);
    try {
      expect(fileLock.path).toBe(join(realpathSync(mountPoint), 'existing.lock'));
      expect(flockProbe(fileLock.path)).toBe('held');
      expect(await agent.canLock(path)).toBe(false);
    } finally {
      await fileLock.release();
    }
    expect(flockProbe(fileLock.path)).toBe('free');
    expect(await agent.canLock(path)).toBe(true);
  });
});
