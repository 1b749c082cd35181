import type { AsyncLocalStorage } from 'node:async_hooks';

import { argTypeError } from './errors.js';
import { HeldLock, releaseHeld, releaseHeldQuietly, reentrantHeld, type FileLock } from './held-lock.js';
import type { WaitLimits } from './limits.js';
import { context, lineFor, type Line } from './line.js';
import { ACQUIRED, BUSY, failureError, native, STALE, type Result } from './native.js';
import { validateOptions, validatePath, type LockOptions, type LockPath, type ValidOptions } from './options.js';
import { cachedLockPath, lockPathFor } from './paths.js';
import { noteWaitFailed, watchWait } from './visible-wait.js';
import { noteHeld } from './watch-held.js';
import { waitForFile } from './wait.js';

export type { FileLock } from './held-lock.js';

/**
 * Runs `fn` while holding the lock for `path`, exclusive or, with
 * `options.shared`, shared, and releases it however `fn` ends. Resolves to `fn`'s value; rejects with `fn`'s error
 * unchanged. A call for the same path inside `fn` (its async context, at any
 * depth of nesting, awaited or not) runs at once, sharing this hold.
 *
 * The lock is taken on the empty sidecar file `<canonical path>.lock` (or
 * `options.lockfilePath`), never on `path` itself: callers in this thread
 * queue in FIFO order (shared callers side by side, none past a waiting
 * exclusive one), then one attempt `flock(fd, LOCK_EX | LOCK_NB)`
 * (`LOCK_SH` when shared; `LockFileEx` on Windows); a busy lock is waited for on one of the addon's
 * wait threads, within `options.timeout` and `options.signal`. The kernel
 * drops the lock if the process dies.
 *
 * **Platform-specific behavior** (may change):
 * - Linux, macOS: `flock(2)`, advisory: it excludes only programs that
 *   `flock` the same file (flock(1), Python's `fcntl.flock`); on local Linux
 *   file systems `fcntl`/`lockf` record locks do not see it. A wait blocks in
 *   `flock(LOCK_EX)` (on Linux behind a queue ticket, an OFD lock on byte 0),
 *   or polls every 1 ms if the host has taken over the addon's wake signal.
 * - Windows: `LockFileEx(LOCKFILE_EXCLUSIVE_LOCK | LOCKFILE_FAIL_IMMEDIATELY)`
 *   on bytes 0 to 2^64−1 of the lock file, a mandatory lock; a wait polls it
 *   every 1 ms.
 * - NFS, SMB/CIFS (Linux): `flock` is emulated with a whole-file record lock
 *   that the server arbitrates and that every `fcntl`/`lockf` lock on the file
 *   sees; waiters take no ticket. A file system that cannot lock at all fails
 *   with `ELOCKUNSUPPORTED`: `fn` never runs unlocked.
 *
 * @param path - The resource to protect (it need not exist): a string, a `file:` URL or a UTF-8 Buffer.
 * @param fn - The work to run under the lock, sync or async.
 * @param options - {@link LockOptions}: `timeout`, `signal`, `lockfilePath`, `shared`, `removeLockFile`.
 * @returns A promise of `fn`'s awaited value.
 * @throws {LockTimeoutError} `ELOCKTIMEOUT`: `options.timeout` ran out; nothing is held.
 * @throws {FileLockError} `EDEADLK`: this thread already holds the lock (not in an enclosing `fn`) and nothing left could release it;
 *   or an exclusive call inside an `fn` that holds the lock shared (no atomic upgrade).
 * @throws {FileLockError} `ELOCKUNSUPPORTED`: the file system cannot lock; `EAGAIN`: no wait thread could be started.
 * @throws {FileLockError} From the lock file: `ENOENT`, `ENOTDIR`, `EACCES`/`EPERM`, `EROFS`, `ELOOP` (a symlink there),
 *   `EISDIR`, `ENAMETOOLONG`, `EBADF` (NFS, read-only lock file). Each names the lock file in `path`.
 * @throws `options.signal.reason` when the signal aborts, also when it was aborted before the call.
 * @throws {TypeError} A bad `path`, `fn` or option, or an unknown option name (`RangeError`: a negative or NaN `timeout`).
 * @throws Whatever `fn` throws, unchanged, after the lock is released.
 * @example
 * ```ts
 * const id = await withFileLock('tasks.db', () => addTask('write the README'), { timeout: 5000 });
 * ```
 * @see The package README, "Errors" and "Guarantees and limits".
 */
export function withFileLock<T>(path: LockPath, fn: () => T | PromiseLike<T>, options?: LockOptions): Promise<Awaited<T>> {
  try {
    if (typeof fn !== 'function') throw argTypeError(`fn must be a function, got ${fn === null ? 'null' : typeof fn}`);
    const held = hold(path, options, true);
    if (held instanceof HeldLock) return runHolding(held, fn);
    return (held as Promise<HeldLock>).then((h) => runHolding(h, fn));
  } catch (error) {
    return Promise.reject(error);
  }
}

// Written without async/await: every promise costs a hook call per
// AsyncLocalStorage on Node 20, and a synchronous fn needs none until the end.
function runHolding<T>(held: HeldLock, fn: () => T | PromiseLike<T>): Promise<Awaited<T>> {
  let result: T | PromiseLike<T>;
  try {
    // Every fn runs in its own hold's context, nested ones too: a same-path
    // call at any depth finds a live hold even after the outer fn returned.
    result = context.run(held, fn);
  } catch (error) {
    releaseHeldQuietly(held);
    return Promise.reject(error);
  }
  if (isThenable(result)) {
    return Promise.resolve(result).then(
      (value) => {
        releaseHeld(held);
        return value as Awaited<T>;
      },
      (error: unknown) => {
        releaseHeldQuietly(held);
        throw error;
      },
    );
  }
  try {
    releaseHeld(held);
  } catch (error) {
    return Promise.reject(error);
  }
  return Promise.resolve(result as Awaited<T>);
}

function isThenable(value: unknown): value is PromiseLike<unknown> {
  return value !== null && (typeof value === 'object' || typeof value === 'function') && typeof (value as PromiseLike<unknown>).then === 'function';
}

/**
 * Waits for the lock for `path` (exclusive, or shared with `options.shared`) and returns it held; release it
 * with `release()`, or `await using`. Prefer {@link withFileLock}, which
 * cannot forget to release.
 *
 * One attempt `flock(fd, LOCK_EX | LOCK_NB)` (`LOCK_SH` when shared;
 * `LockFileEx` on Windows) on the lock file `<canonical path>.lock` (or `options.lockfilePath`); while it is
 * busy, callers of this thread queue in FIFO order, and the head waits on one
 * of the addon's wait threads, within `options.timeout` and `options.signal`.
 * A second `lock` of the same path in this thread waits for the first to be
 * released, on every platform (inside a `withFileLock` callback it is
 * reentrant instead); other `worker_threads` wait like other processes.
 *
 * **Platform-specific behavior** (may change):
 * - Linux, macOS: `flock(2)`, advisory; a wait blocks in `flock(LOCK_EX)`
 *   (on Linux behind a queue ticket, an OFD lock on byte 0).
 * - Windows: `LockFileEx` on bytes 0 to 2^64−1 of the lock file, mandatory;
 *   a wait polls it every 1 ms.
 * - NFS, SMB/CIFS (Linux): `flock` is emulated with a server-arbitrated
 *   whole-file record lock that `fcntl`/`lockf` locks see too; a file system
 *   that cannot lock fails with `ELOCKUNSUPPORTED`.
 *
 * @param path - The resource to protect (it need not exist): a string, a `file:` URL or a UTF-8 Buffer.
 * @param options - {@link LockOptions}: `timeout`, `signal`, `lockfilePath`, `shared`, `removeLockFile`.
 * @returns The held lock, a {@link FileLock}.
 * @throws {LockTimeoutError} `ELOCKTIMEOUT`: `options.timeout` ran out; nothing is held.
 * @throws {FileLockError} `EDEADLK`: this thread holds the lock and nothing left could release it; or an
 *   exclusive call inside a `withFileLock` callback that holds the lock shared.
 * @throws {FileLockError} `ELOCKUNSUPPORTED`: the file system cannot lock; `EAGAIN`: no wait thread could be started.
 * @throws {FileLockError} From the lock file: `ENOENT`, `ENOTDIR`, `EACCES`/`EPERM`, `EROFS`, `ELOOP`, `EISDIR`,
 *   `ENAMETOOLONG`, `EBADF`. See the README's "Errors" table.
 * @throws `options.signal.reason` when the signal aborts, also when it was aborted before the call.
 * @throws {TypeError} A bad `path` or option, or an unknown option name (`RangeError`: a negative or NaN `timeout`).
 * @example
 * ```ts
 * await using held = await lock('data.db', { timeout: 5000 });
 * // held.release() runs at the end of the block
 * ```
 */
export async function lock(path: LockPath, options?: LockOptions): Promise<FileLock> {
  return (await hold(path, options, true))!;
}

/**
 * Takes the lock for `path` (exclusive, or shared with `options.shared`) if
 * it is free right now, or resolves to `undefined`; never waits
 * (`options.timeout` is ignored). A shared tryLock also answers `undefined`
 * while an exclusive caller waits for the lock (writer preference).
 *
 * One `flock(fd, LOCK_EX | LOCK_NB)` (`LOCK_SH` when shared; `LockFileEx` with
 * `LOCKFILE_FAIL_IMMEDIATELY` on Windows) on the lock file
 * `<canonical path>.lock` (or `options.lockfilePath`). It answers
 * `undefined` when another process, worker thread or caller of this thread
 * holds the lock or is being granted it; inside a `withFileLock` callback
 * for the same path it returns a reentrant held lock.
 *
 * **Platform-specific behavior** (may change):
 * - Linux, macOS: `flock(2)`, advisory; `EWOULDBLOCK` (contention) means busy.
 * - Windows: `LockFileEx` on bytes 0 to 2^64−1 of the lock file, mandatory;
 *   `ERROR_LOCK_VIOLATION`, or a lock file another program opened sharing
 *   nothing or that is being deleted, means busy.
 * - NFS, SMB/CIFS (Linux): `flock` is emulated with a server-arbitrated
 *   whole-file record lock, so `fcntl`/`lockf` locks on the file make it busy
 *   too; a file system that cannot lock fails with `ELOCKUNSUPPORTED`.
 *
 * @param path - The resource to protect (it need not exist): a string, a `file:` URL or a UTF-8 Buffer.
 * @param options - {@link LockOptions}: `signal` (checked once), `lockfilePath`, `shared` and `removeLockFile`.
 * @returns The held lock, a {@link FileLock}, or `undefined` when the lock is busy.
 * @throws {FileLockError} `ELOCKUNSUPPORTED`: the file system cannot lock; `EDEADLK`: an exclusive call
 *   inside a `withFileLock` callback that holds the lock shared.
 * @throws {FileLockError} From the lock file: `ENOENT`, `ENOTDIR`, `EACCES`/`EPERM`, `EROFS`, `ELOOP`, `EISDIR`,
 *   `ENAMETOOLONG`, `EBADF`. See the README's "Errors" table.
 * @throws `options.signal.reason` when the signal was aborted before the call.
 * @throws {TypeError} A bad `path` or option, or an unknown option name (`RangeError`: a negative or NaN `timeout`).
 * @example
 * ```ts
 * const held = await tryLock('cache/index.json');
 * if (held === undefined) return; // someone else is updating it
 * try { await rebuildIndex(); } finally { await held.release(); }
 * ```
 */
export async function tryLock(path: LockPath, options?: LockOptions): Promise<FileLock | undefined> {
  return hold(path, options, false);
}

/** hold() as if inside outer's callback (src/multi.ts): reentrant with outer's chain of holds, and chained to it. */
export function holdWithin(outer: HeldLock | undefined, path: unknown, options: unknown, willWait: boolean): HeldLock | undefined | Promise<HeldLock | undefined> {
  return (context as AsyncLocalStorage<HeldLock | undefined>).run(outer, () => hold(path, options, willWait));
}

// --- holding: the per-thread line, the process-wide slot, the file lock ------

/**
 * A reentrant held lock if a callback around this call holds the lock file;
 * else the head of the per-thread line, then the slot's claim and the file
 * lock (native.acquire). Returns synchronously when nothing has to wait,
 * which is the common case and the one that must be cheap; without willWait
 * (tryLock) a busy lock is undefined.
 */
function hold(pathArg: unknown, optionsArg: unknown, willWait: boolean): HeldLock | undefined | Promise<HeldLock | undefined> {
  const resource = validatePath(pathArg, 'path');
  const options = validateOptions(optionsArg);
  if (options.signal?.aborted) throw options.signal.reason;
  const store = context.getStore();
  if (store === undefined) {
    const held = attemptCached(resource, options, willWait, attempted);
    if (held !== null) return held;
  }
  const { lockPath, key } = lockPathFor(resource, options.lockfilePath);
  const reentrant = reentrantHeld(store, key, resource, options.shared, options.removeLockFile);
  if (reentrant !== undefined) return reentrant;

  const line = lineFor(lockPath, key);
  if (!line.tryEnter(options.shared)) return willWait ? holdSlowly(line, options, resource, false) : undefined;
  return attempted(line, native.acquire(line.slot, willWait, options.shared), options, resource, willWait, store);
}

/**
 * The first attempt of hold() and holdSync() outside every callback, where
 * nothing is reentrant: a cached canonical path is checked by the attempt
 * itself, in the same call into the addon. null if no attempt was made or
 * the path was stale: the caller resolves the path afresh.
 */
export function attemptCached<T>(resource: string, options: ValidOptions, willWait: boolean, then: Attempted<T>): T | null {
  const cached = cachedLockPath(resource, options.lockfilePath);
  if (cached === undefined) return null;
  const line = lineFor(cached.lockPath, cached.key);
  if (!line.tryEnter(options.shared)) return null;
  const result = native.acquire(line.slot, willWait, options.shared, cached.probe, cached.missing);
  if (result !== STALE) return then(line, result, options, resource, willWait, undefined);
  line.leave();
  return null;
}

type Attempted<T> = (line: Line, result: Result, options: ValidOptions, resource: string, willWait: boolean, store: HeldLock | undefined) => T;

/** hold() after its first attempt at the head of the line: held, waiting for the file lock, busy or failed. */
function attempted(line: Line, result: Result, options: ValidOptions, resource: string, willWait: boolean, store: HeldLock | undefined): HeldLock | undefined | Promise<HeldLock | undefined> {
  if (result === ACQUIRED) return noteHeld(new HeldLock(line, resource, store, options.shared, options.removeLockFile), options.warnAfterMs, -1);
  if (result === BUSY && willWait) return holdSlowly(line, options, resource, true);
  line.leave();
  if (result === BUSY) return undefined;
  throw failureError(result, line.lockPath, resource);
}

/** Waits for the head of the per-thread line (unless it is ours already), then for the file lock. */
async function holdSlowly(line: Line, options: ValidOptions, resource: string, atHead: boolean): Promise<HeldLock> {
  const started = performance.now();
  const limits: WaitLimits = {
    signal: options.signal,
    deadline: started + options.timeout,
    started,
    lockPath: line.lockPath,
    resource,
  };
  const stopWatching = watchWait(options, limits);
  try {
    if (!atHead) await line.enter(limits, options.shared);
    try {
      // Already at the head, the caller has just found the file lock busy.
      const result = atHead ? BUSY : native.acquire(line.slot, true, options.shared);
      if (result === BUSY) await waitForFile(line.slot, limits, options.shared);
      else if (result !== ACQUIRED) throw failureError(result, line.lockPath, resource);
    } catch (error) {
      line.leave();
      throw error;
    }
  } catch (error) {
    noteWaitFailed(error, limits);
    throw error;
  } finally {
    stopWatching();
  }
  const held = noteHeld(new HeldLock(line, resource, context.getStore(), options.shared, options.removeLockFile), options.warnAfterMs, performance.now() - started);
  // The abort may have landed while the lock was being granted: give it back.
  if (options.signal?.aborted) {
    releaseHeldQuietly(held);
    throw options.signal.reason;
  }
  return held;
}
