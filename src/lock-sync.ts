import { inspect } from 'node:util';

import { argTypeError, argValueError, FileLockError, LockTimeoutError } from './errors.js';
import { HeldLock, releaseHeld, releaseHeldQuietly, reentrantHeld, type FileLock } from './held-lock.js';
import { context, lineFor, type Line } from './line.js';
import { ACQUIRED, BUSY, failureError, native, type Result } from './native.js';
import { validateOptions, validatePath, type LockOptions, type LockPath, type ValidOptions } from './options.js';
import { lockPathFor } from './paths.js';
import { holderFor } from './proc-locks.js';
import { noteHeld } from './watch-held.js';
// tryLock and withFileLock: for the {@link} references in the docs below.
import { attemptCached, type tryLock, type withFileLock } from './lock.js';

/**
 * Options of the synchronous calls: those of {@link LockOptions} but
 * `signal` and `onWait`, which nothing could deliver or call while the
 * thread is blocked.
 */
export type SyncLockOptions = Omit<LockOptions, 'signal' | 'onWait' | 'onWaitAfterMs'>;

/**
 * A held lock taken with lockSync or tryLockSync: a {@link FileLock} whose
 * release is synchronous. Release it once; further calls do nothing.
 */
export interface SyncFileLock extends Omit<FileLock, 'release' | typeof Symbol.asyncDispose> {
  /**
   * Unlocks (`flock(fd, LOCK_UN)`, `UnlockFileEx` on Windows) and returns;
   * hands the lock to the next caller of this thread as `FileLock.release()` does.
   *
   * @throws {FileLockError} When the unlock call fails; the descriptor is closed, which drops the lock anyway.
   */
  release(): void;
}

/**
 * Runs `fn` while holding the lock for `path` (exclusive, or shared with
 * `options.shared`), and releases it however `fn` ends; returns `fn`'s value
 * or throws `fn`'s error unchanged. The same lock as {@link withFileLock}'s,
 * taken the same way and in the same fair order among the waiters of every
 * thread and process; while it is busy this thread blocks without using CPU
 * (its event loop does not run), within `options.timeout`.
 *
 * A call for the same path inside `fn`, synchronous or not, runs at once,
 * sharing this hold; so does this call inside a `withFileLock` callback for
 * the same path. Anywhere else in a thread that holds the lock, or that has
 * an async caller waiting for it ahead, a call that would wait throws
 * `EDEADLK` at once: the blocked thread could never let that caller go on.
 *
 * **Platform-specific behavior** (may change): as {@link withFileLock}'s.
 * The wait is one of the addon's waits, blocked in `flock(2)` on a wait
 * thread (on Linux behind a queue ticket) or polling `LockFileEx` every
 * 1 ms on Windows; this thread sleeps on a condition variable until it
 * ends, waking every 100 ms only to notice that Node is stopping it (a
 * worker terminated, the process exiting): then it gives up holding nothing.
 *
 * @param path - The resource to protect (it need not exist): a string, a `file:` URL or a UTF-8 Buffer.
 * @param fn - Synchronous work to run under the lock.
 * @param options - {@link SyncLockOptions}: `timeout`, `lockfilePath`, `shared`, `removeLockFile`.
 * @returns `fn`'s value.
 * @throws {LockTimeoutError} `ELOCKTIMEOUT`: `options.timeout` ran out; nothing is held.
 * @throws {FileLockError} `EDEADLK`: this thread holds the lock (not in an enclosing callback) or an async caller of
 *   this thread waits for it. Other codes as {@link withFileLock}'s.
 * @throws {TypeError} `ERR_INVALID_RETURN_VALUE`: `fn` returned a promise (the lock was released when `fn` returned;
 *   use `withFileLock` for async work). `ERR_INVALID_ARG_VALUE`: `options.signal` was given. A bad `path`, `fn` or option.
 * @example
 * ```ts
 * const config = withFileLockSync('config.json', () => JSON.parse(readFileSync('config.json', 'utf8')), { timeout: 5000 });
 * ```
 */
export function withFileLockSync<T>(path: LockPath, fn: () => T, options?: SyncLockOptions): T {
  if (typeof fn !== 'function') throw argTypeError(`fn must be a function, got ${fn === null ? 'null' : typeof fn}`);
  const held = holdSync(path, options, true)!;
  let result: T;
  try {
    result = context.run(held, fn);
  } catch (error) {
    releaseHeldQuietly(held);
    throw error;
  }
  releaseHeld(held);
  if (isThenable(result)) {
    throw Object.assign(
      new TypeError(
        `withFileLockSync: fn returned a promise, and the lock on '${held.path}' was released when fn returned, ` +
          'before the promise settled; use withFileLock for async work',
      ),
      { code: 'ERR_INVALID_RETURN_VALUE' },
    );
  }
  return result;
}

/**
 * Waits for the lock for `path` (exclusive, or shared with `options.shared`),
 * blocking this thread, and returns it held; `release()` is synchronous. Prefer {@link withFileLockSync},
 * which cannot forget to release. Waits, `EDEADLK` and platform behaviour as
 * {@link withFileLockSync}'s.
 *
 * @param path - The resource to protect (it need not exist): a string, a `file:` URL or a UTF-8 Buffer.
 * @param options - {@link SyncLockOptions}: `timeout`, `lockfilePath`, `shared`, `removeLockFile`.
 * @returns The held lock, a {@link SyncFileLock}.
 * @throws As {@link withFileLockSync}.
 * @example
 * ```ts
 * using held = lockSync('data.db', { timeout: 5000 });
 * // held.release() runs at the end of the block
 * ```
 */
export function lockSync(path: LockPath, options?: SyncLockOptions): SyncFileLock {
  return new SyncHeldLock(holdSync(path, options, true)!);
}

/**
 * Takes the lock for `path` (exclusive, or shared with `options.shared`) if
 * it is free right now, or returns `undefined`; never waits
 * (`options.timeout` is ignored), so it never deadlocks: a lock this thread
 * holds in a conflicting mode, or waits for, is busy, as for {@link tryLock}.
 * Inside a callback holding the same path it returns a reentrant held lock.
 *
 * @param path - The resource to protect (it need not exist): a string, a `file:` URL or a UTF-8 Buffer.
 * @param options - {@link SyncLockOptions}: `lockfilePath`, `shared`, `removeLockFile`.
 * @returns The held lock, a {@link SyncFileLock}, or `undefined` when the lock is busy.
 * @throws As {@link tryLock}, and a `TypeError` (`ERR_INVALID_ARG_VALUE`) for `options.signal`.
 * @example
 * ```ts
 * const held = tryLockSync('cron.job');
 * if (held === undefined) process.exit(75); // another run still holds it
 * try {
 *   runJob();
 * } finally {
 *   held.release();
 * }
 * ```
 */
export function tryLockSync(path: LockPath, options?: SyncLockOptions): SyncFileLock | undefined {
  const held = holdSync(path, options, false);
  return held === undefined ? undefined : new SyncHeldLock(held);
}

class SyncHeldLock implements SyncFileLock {
  readonly #held: HeldLock;

  constructor(held: HeldLock) {
    this.#held = held;
  }

  get path(): string {
    return this.#held.path;
  }

  get resource(): string {
    return this.#held.resource;
  }

  get shared(): boolean {
    return this.#held.shared;
  }

  get released(): boolean {
    return this.#held.released;
  }

  release(): void {
    releaseHeld(this.#held);
  }

  [Symbol.dispose](): void {
    releaseHeld(this.#held);
  }

  toJSON(): { path: string; resource: string; shared: boolean; released: boolean } {
    return this.#held.toJSON();
  }

  [inspect.custom](_depth: number, options: object): string {
    return `SyncFileLock ${inspect(this.toJSON(), options)}`;
  }
}

/**
 * hold() for a thread that may not return to its event loop: the same line,
 * slot and file lock, but a busy lock is waited for by blocking this thread.
 */
function holdSync(pathArg: unknown, optionsArg: unknown, willWait: boolean): HeldLock | undefined {
  const resource = validatePath(pathArg, 'path');
  const options = validateSyncOptions(optionsArg);
  const store = context.getStore();
  if (store === undefined) {
    const held = attemptCached(resource, options, willWait, attemptedSync);
    if (held !== null) return held;
  }
  const { lockPath, key } = lockPathFor(resource, options.lockfilePath);
  const reentrant = reentrantHeld(store, key, resource, options.shared, options.removeLockFile);
  if (reentrant !== undefined) return reentrant;

  const line = lineFor(lockPath, key);
  if (!line.tryEnter(options.shared)) {
    if (!willWait) return undefined;
    throw deadlockError(line, resource);
  }
  return attemptedSync(line, native.acquire(line.slot, willWait, options.shared), options, resource, willWait, store);
}

/** holdSync() after its first attempt at the head of the line: held (after a wait, if busy and willWait), busy or failed. */
function attemptedSync(line: Line, result: Result, options: ValidOptions, resource: string, willWait: boolean, store: HeldLock | undefined): HeldLock | undefined {
  // The clock is read only for a wait: an uncontended cycle needs no time.
  let started = -1;
  if (result === BUSY && willWait) {
    started = performance.now();
    try {
      result = waitSync(line, options, resource, started);
    } catch (error) {
      line.leave();
      throw error;
    }
  }
  if (result === ACQUIRED) {
    const held = new HeldLock(line, resource, store, options.shared, options.removeLockFile);
    return noteHeld(held, options.warnAfterMs, started < 0 ? -1 : performance.now() - started);
  }
  line.leave();
  if (result === BUSY) return undefined;
  throw failureError(result, line.lockPath, resource);
}

/** Blocks this thread until the file lock is taken, or throws a timeout error holding nothing. */
function waitSync(line: Line, options: ValidOptions, resource: string, started: number): Result {
  if (options.timeout === 0) throw new LockTimeoutError(line.lockPath, resource, 0, holderFor(line.lockPath)?.holders);
  const result = native.waitSync(line.slot, options.shared, options.timeout);
  if (result === BUSY) throw new LockTimeoutError(line.lockPath, resource, performance.now() - started, holderFor(line.lockPath)?.holders);
  return result;
}

/** Options a blocked thread cannot honour, and why: refused rather than ignored. */
const NOT_SYNC: readonly (readonly [string, string])[] = Object.entries({
  signal: 'the thread is blocked while it waits, so there is no event loop to deliver an abort; use options.timeout, or lock() with a signal',
  onWait: 'no JavaScript runs on the thread while it waits; use options.timeout, or lock() with onWait',
  onWaitAfterMs: 'no JavaScript runs on the thread while it waits, so onWait is never called; use options.timeout, or lock() with onWait',
});

function validateSyncOptions(options: unknown): ValidOptions {
  if (options !== null && typeof options === 'object') {
    for (const [name, why] of NOT_SYNC) {
      if ((options as Record<string, unknown>)[name] !== undefined) {
        throw argValueError(`options.${name} is not supported by the synchronous calls: ${why}`);
      }
    }
  }
  return validateOptions(options);
}

function deadlockError(line: Line, resource: string): FileLockError {
  return new FileLockError(
    `EDEADLK: a synchronous wait for the lock on '${line.lockPath}' could never end: this thread holds that lock ` +
      '(outside the callback holding it) or has an async caller waiting for it, and a blocked thread can let neither go on',
    { code: 'EDEADLK', path: line.lockPath, resource },
  );
}

function isThenable(value: unknown): value is PromiseLike<unknown> {
  return value !== null && (typeof value === 'object' || typeof value === 'function') && typeof (value as PromiseLike<unknown>).then === 'function';
}
