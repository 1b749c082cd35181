import { describe, expect, expectTypeOf, it } from 'vitest';

import {
  FileLockError,
  LockTimeoutError,
  lock,
  lockAll,
  tryLock,
  tryLockAll,
  withFileLock,
  withFileLocks,
  type FileLock,
  type FileLocks,
  type LockAllOptions,
  type LockEntry,
  type LockOptions,
  type LockPath,
  type WaitInfo,
} from 'native-file-lock';

// These assertions are checked by `tsc -p tsconfig.json` (run by `npm test`
// before vitest) and keep the published declarations honest.
describe('the published types', () => {
  it('withFileLock resolves to the awaited value of fn, sync or async', () => {
    // Functions that are never called: only their types matter here.
    expectTypeOf(withFileLock<number>).returns.toEqualTypeOf<Promise<number>>();
    expectTypeOf(() => withFileLock('x', async () => 'text')).returns.toEqualTypeOf<Promise<string>>();
    expectTypeOf(() => withFileLock('x', () => 42)).returns.toEqualTypeOf<Promise<number>>();
    expectTypeOf(() => withFileLock('x', () => Promise.resolve({ ok: true as const }))).returns.toEqualTypeOf<Promise<{ ok: true }>>();
  });

  it('lock and tryLock return held locks that can be disposed', () => {
    expectTypeOf(lock).returns.toEqualTypeOf<Promise<FileLock>>();
    expectTypeOf(tryLock).returns.toEqualTypeOf<Promise<FileLock | undefined>>();
    expectTypeOf<FileLock>().toHaveProperty('release').returns.toEqualTypeOf<Promise<void>>();
    expectTypeOf<FileLock>().toMatchTypeOf<AsyncDisposable>();
    expectTypeOf<FileLock>().toMatchTypeOf<Disposable>();
    expectTypeOf<FileLock['path']>().toEqualTypeOf<string>();
  });

  it('a held lock declares exactly its documented members, all of them read-only', () => {
    expectTypeOf<keyof FileLock>().toEqualTypeOf<'path' | 'resource' | 'shared' | 'released' | 'release' | typeof Symbol.asyncDispose | typeof Symbol.dispose>();
    const assignReleased = (fileLock: FileLock) => {
      // @ts-expect-error released is read-only
      fileLock.released = true;
    };
    expectTypeOf(assignReleased).toBeFunction();
  });

  it('options accept exactly timeout, signal, lockfilePath, shared, removeLockFile, onWait, onWaitAfterMs and warnAfterMs', () => {
    expectTypeOf<LockOptions>().toEqualTypeOf<{
      timeout?: number;
      signal?: AbortSignal;
      lockfilePath?: LockPath;
      shared?: boolean;
      removeLockFile?: boolean;
      onWait?: (info: WaitInfo) => unknown;
      onWaitAfterMs?: number;
      warnAfterMs?: number;
    }>();
    expectTypeOf<FileLock['shared']>().toEqualTypeOf<boolean>();
    expectTypeOf<LockPath>().toEqualTypeOf<string | URL | Buffer>();
  });

  it('errors carry a code, the lock path and, for timeouts, the time waited', () => {
    expectTypeOf<LockTimeoutError>().toMatchTypeOf<FileLockError>();
    expectTypeOf<FileLockError['path']>().toEqualTypeOf<string>();
    expectTypeOf<LockTimeoutError['waited']>().toEqualTypeOf<number>();
    const error = new LockTimeoutError('/x.lock', '/x', 12.4);
    expect(error).toBeInstanceOf(FileLockError);
    expect(error.code).toBe('ELOCKTIMEOUT');
    expect(error.message).toContain("'/x.lock'");
    expect(error.message).toContain('12 ms');
    expect(error.waited).toBe(12);
  });

  it('several locks: withFileLocks resolves to fn\'s value, lockAll and tryLockAll to FileLocks, entries and options typed', () => {
    expectTypeOf(() => withFileLocks(['a', 'b'], async () => 42)).returns.toEqualTypeOf<Promise<number>>();
    expectTypeOf(lockAll).returns.toEqualTypeOf<Promise<FileLocks>>();
    expectTypeOf(tryLockAll).returns.toEqualTypeOf<Promise<FileLocks | undefined>>();
    expectTypeOf<keyof FileLocks>().toEqualTypeOf<'locks' | 'released' | 'release' | typeof Symbol.asyncDispose | typeof Symbol.dispose>();
    expectTypeOf<FileLocks['locks']>().toEqualTypeOf<readonly FileLock[]>();
    expectTypeOf<FileLocks>().toMatchTypeOf<AsyncDisposable & Disposable>();
    expectTypeOf<LockEntry>().toEqualTypeOf<{ path: LockPath; lockfilePath?: LockPath; shared?: boolean }>();
    expectTypeOf<LockAllOptions>().toEqualTypeOf<Omit<LockOptions, 'lockfilePath'>>();
    expectTypeOf(lockAll).parameter(0).toEqualTypeOf<Iterable<LockPath | LockEntry>>();
  });

  it('the CommonJS entry point declares the same API as the ES module one', () => {
    // `require('native-file-lock')` resolves to dist/cjs/index.d.ts through the "require" condition.
    type Cjs = typeof import('native-file-lock', { with: { 'resolution-mode': 'require' } });
    expectTypeOf<Cjs['withFileLock']>().toEqualTypeOf(withFileLock);
    expectTypeOf<Cjs['lock']>().toEqualTypeOf(lock);
    expectTypeOf<Cjs['tryLock']>().toEqualTypeOf(tryLock);
    expectTypeOf<Cjs['withFileLocks']>().toEqualTypeOf(withFileLocks);
    expectTypeOf<Cjs['lockAll']>().toEqualTypeOf(lockAll);
    expectTypeOf<Cjs['tryLockAll']>().toEqualTypeOf(tryLockAll);
    expectTypeOf<InstanceType<Cjs['FileLockError']>>().toEqualTypeOf<FileLockError>();
    expectTypeOf<InstanceType<Cjs['LockTimeoutError']>>().toEqualTypeOf<LockTimeoutError>();
  });
});
