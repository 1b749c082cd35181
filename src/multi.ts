import { argTypeError, argValueError } from './errors.js';
import { releaseHeldQuietly, type HeldLock } from './held-lock.js';
import { HeldLocks, releaseEach, type FileLocks } from './held-locks.js';
import { context } from './line.js';
import { holdWithin, type tryLock, type withFileLock } from './lock.js';
import { describe, validateOptions, validatePath, type LockOptions, type LockPath } from './options.js';
import { lockPathFor } from './paths.js';

export type { FileLocks } from './held-locks.js';

/**
 * One path of a set of locks, with its own settings: `lockfilePath` is that
 * path's lock file (default `<canonical path>.lock`); `shared` asks for a
 * shared (reader) lock on that path. Duplicates of one lock file are merged,
 * shared only if every entry for it is.
 *
 * @example
 * ```ts
 * await withFileLocks(['a.json', { path: 'b.json', lockfilePath: 'locks/b.lock' }], work);
 * ```
 */
export interface LockEntry {
  /** The resource to protect, as `lock`'s `path`. */
  path: LockPath;
  /** This path's own lock file instead of `<canonical path>.lock`, as `LockOptions.lockfilePath`. */
  lockfilePath?: LockPath;
  /** A shared lock for this path; where several entries name one lock file, shared only if every one asks for it. Default `false`. */
  shared?: boolean;
}

/**
 * Options of {@link withFileLocks}, {@link lockAll} and {@link tryLockAll}:
 * those of {@link lock} but `lockfilePath`, which names one lock file and is
 * given per entry instead ({@link LockEntry}). `timeout` is one deadline for
 * the whole set.
 */
export type LockAllOptions = Omit<LockOptions, 'lockfilePath'>;

/**
 * Runs `fn` while holding the exclusive lock of every path, and releases
 * them all however `fn` ends. Resolves to `fn`'s value; rejects with `fn`'s
 * error unchanged.
 *
 * The locks are taken one at a time in one canonical order: sorted by
 * canonical lock path, duplicates merged. Callers that name the same paths in
 * any order, in any thread or process using this library, therefore never
 * deadlock. All or nothing: on a timeout, an abort or an error nothing stays
 * held or open. `options.timeout` is one deadline for the whole set. Each lock
 * is taken as by {@link withFileLock}: inside `fn`, a call for any of the
 * paths is reentrant, and a path that an enclosing `fn` already holds is
 * reentrant here (it is then held before the paths sorted ahead of it, which
 * gives up the ordering guarantee for that call).
 *
 * **Platform-specific behavior** (may change): each lock is `flock(2)` on
 * Linux and macOS (`flock(fd, LOCK_EX)`), `LockFileEx` on Windows, and on
 * NFS and SMB/CIFS (Linux) a server-arbitrated whole-file record lock. Peers
 * that lock the same files in another order (flock(1) scripts) are not
 * ordered by this call.
 *
 * @param paths - A non-empty array (or iterable) of paths ({@link LockPath}) or entries ({@link LockEntry}).
 * @param fn - The work to run under the locks, sync or async.
 * @param options - {@link LockAllOptions}: `timeout` (for the whole set), `signal`, `removeLockFile`.
 * @returns A promise of `fn`'s awaited value.
 * @throws {LockTimeoutError} `ELOCKTIMEOUT`: the deadline passed; nothing is held. Its `path` is the lock file waited for.
 * @throws {FileLockError} `EDEADLK`: this thread holds one of the locks (not in an enclosing `fn`) and nothing left could release it.
 * @throws {FileLockError} `ELOCKUNSUPPORTED`: a file system cannot lock; `EAGAIN`: no wait thread could be started.
 * @throws {FileLockError} From a lock file: `ENOENT`, `ENOTDIR`, `EACCES`/`EPERM`, `EROFS`, `ELOOP`, `EISDIR`, `ENAMETOOLONG`, `EBADF`.
 * @throws `options.signal.reason` when the signal aborts, also when it was aborted before the call.
 * @throws {TypeError} `paths` not a non-empty iterable of paths or entries, a bad entry, `fn` or option (`RangeError`: a negative or NaN `timeout`).
 * @throws Whatever `fn` throws, unchanged, after the locks are released.
 * @example
 * ```ts
 * await withFileLocks(['accounts/alice.json', 'accounts/bob.json'], () => transfer('alice', 'bob', 10), { timeout: 5000 });
 * ```
 */
export async function withFileLocks<T>(paths: Iterable<LockPath | LockEntry>, fn: () => T | PromiseLike<T>, options?: LockAllOptions): Promise<Awaited<T>> {
  if (typeof fn !== 'function') throw argTypeError(`fn must be a function, got ${describe(fn)}`);
  const held = (await holdAll(paths, options, true))!;
  let value: Awaited<T>;
  try {
    value = await context.run(held[held.length - 1]!, fn);
  } catch (error) {
    for (let i = held.length - 1; i >= 0; i--) releaseHeldQuietly(held[i]!);
    throw error;
  }
  releaseEach(held);
  return value;
}

/**
 * Waits for the exclusive lock of every path and returns them held together
 * ({@link FileLocks}); release them with `release()` or `await using`.
 * Prefer {@link withFileLocks}, which cannot forget to release.
 *
 * Taken as {@link withFileLocks} takes them: in one canonical order (sorted
 * canonical lock paths, duplicates merged), so callers naming the same paths
 * in any order never deadlock; all or nothing on a timeout, an abort or an
 * error; `options.timeout` is one deadline for the whole set.
 *
 * **Platform-specific behavior** (may change): each lock is `flock(2)` on
 * Linux and macOS, `LockFileEx` on Windows, and on NFS and SMB/CIFS (Linux) a
 * server-arbitrated whole-file record lock.
 *
 * @param paths - A non-empty array (or iterable) of paths ({@link LockPath}) or entries ({@link LockEntry}).
 * @param options - {@link LockAllOptions}: `timeout` (for the whole set), `signal`, `removeLockFile`.
 * @returns The held locks, a {@link FileLocks}.
 * @throws {LockTimeoutError} `ELOCKTIMEOUT`: the deadline passed; nothing is held.
 * @throws {FileLockError} `EDEADLK`: this thread holds one of the locks and nothing left could release it.
 * @throws {FileLockError} `ELOCKUNSUPPORTED`: a file system cannot lock; `EAGAIN`: no wait thread could be started.
 * @throws {FileLockError} From a lock file: `ENOENT`, `ENOTDIR`, `EACCES`/`EPERM`, `EROFS`, `ELOOP`, `EISDIR`, `ENAMETOOLONG`, `EBADF`.
 * @throws `options.signal.reason` when the signal aborts, also when it was aborted before the call.
 * @throws {TypeError} `paths` not a non-empty iterable of paths or entries, a bad entry or option (`RangeError`: a negative or NaN `timeout`).
 * @example
 * ```ts
 * await using held = await lockAll(['index.json', 'data.json'], { timeout: 5000 });
 * ```
 */
export async function lockAll(paths: Iterable<LockPath | LockEntry>, options?: LockAllOptions): Promise<FileLocks> {
  return new HeldLocks((await holdAll(paths, options, true))!);
}

/**
 * Takes the exclusive lock of every path if all are free right now, or none
 * and resolves to `undefined`; never waits (`options.timeout` is ignored).
 *
 * One attempt per lock (`flock(fd, LOCK_EX | LOCK_NB)`, `LockFileEx` with
 * `LOCKFILE_FAIL_IMMEDIATELY` on Windows), in canonical order; the locks
 * already taken are released as soon as one is busy.
 *
 * **Platform-specific behavior** (may change): as {@link tryLock} for each
 * path; on NFS and SMB/CIFS (Linux) `fcntl`/`lockf` locks on a lock file make
 * it busy too.
 *
 * @param paths - A non-empty array (or iterable) of paths ({@link LockPath}) or entries ({@link LockEntry}).
 * @param options - {@link LockAllOptions}: `signal` (checked once) and `removeLockFile`.
 * @returns The held locks, a {@link FileLocks}, or `undefined` when any of them is busy.
 * @throws {FileLockError} `ELOCKUNSUPPORTED`: a file system cannot lock.
 * @throws {FileLockError} From a lock file: `ENOENT`, `ENOTDIR`, `EACCES`/`EPERM`, `EROFS`, `ELOOP`, `EISDIR`, `ENAMETOOLONG`, `EBADF`.
 * @throws `options.signal.reason` when the signal was aborted before the call.
 * @throws {TypeError} `paths` not a non-empty iterable of paths or entries, a bad entry or option.
 * @example
 * ```ts
 * const held = await tryLockAll(['a.json', 'b.json']);
 * if (held === undefined) return; // one of them is busy
 * try { await merge(); } finally { await held.release(); }
 * ```
 */
export async function tryLockAll(paths: Iterable<LockPath | LockEntry>, options?: LockAllOptions): Promise<FileLocks | undefined> {
  const held = await holdAll(paths, options, false);
  return held === undefined ? undefined : new HeldLocks(held);
}

interface Wanted {
  readonly key: string;
  readonly path: string;
  readonly lockfilePath: string | undefined;
  shared: boolean;
}

/**
 * Every lock in canonical order, each taken as if inside the previous one's
 * callback (so fn sees them all, and reentrancy with the caller's holds
 * works for each); undefined when one is busy and willWait is false.
 */
async function holdAll(pathsArg: unknown, optionsArg: unknown, willWait: boolean): Promise<HeldLock[] | undefined> {
  const wanted = validateEntries(pathsArg);
  const options = validateOptions(optionsArg);
  if (optionsArg !== undefined && (optionsArg as LockOptions).lockfilePath !== undefined) {
    throw argValueError('options.lockfilePath names one lock file; give each entry its own: { path, lockfilePath }');
  }
  if (options.signal?.aborted) throw options.signal.reason;
  const deadline = performance.now() + options.timeout;
  const held: HeldLock[] = [];
  let outer = context.getStore();
  try {
    for (const entry of wanted) {
      // One deadline for the set: each wait gets what is left of it.
      const timeout = Math.max(0, deadline - performance.now());
      const each: Record<string, unknown> = { timeout, signal: options.signal, removeLockFile: options.removeLockFile, lockfilePath: entry.lockfilePath };
      // onWait and warnAfterMs apply to each lock of the set, each wait counted on its own.
      Object.assign(each, { onWait: options.onWait, onWaitAfterMs: options.onWaitAfterMs, warnAfterMs: options.warnAfterMs });
      if (entry.shared) each.shared = true;
      const h = await holdWithin(outer, entry.path, each, willWait);
      if (h === undefined) {
        for (const taken of held.reverse()) releaseHeldQuietly(taken);
        return undefined;
      }
      held.push(h);
      outer = h;
    }
    // The abort may have landed while the last lock was being granted.
    if (options.signal?.aborted) throw options.signal.reason;
  } catch (error) {
    for (const taken of held.reverse()) releaseHeldQuietly(taken);
    throw error;
  }
  return held;
}

/** The entries sorted by lock key, one per key (shared only if every entry for it is). */
function validateEntries(paths: unknown): Wanted[] {
  if (typeof paths === 'string' || paths instanceof URL || paths instanceof Uint8Array || paths === null || typeof (paths as Iterable<unknown>)?.[Symbol.iterator] !== 'function') {
    throw argTypeError(`paths must be an array (or iterable) of paths, got ${describe(paths)}; for one path use lock() or withFileLock()`);
  }
  const byKey = new Map<string, Wanted>();
  let i = 0;
  for (const item of paths as Iterable<unknown>) {
    const name = `paths[${i++}]`;
    let path: string;
    let lockfilePath: string | undefined;
    let shared = false;
    if (typeof item === 'object' && item !== null && !(item instanceof URL) && !(item instanceof Uint8Array) && !isUrlLike(item)) {
      const entry = item as Record<string, unknown>;
      for (const key of Object.keys(entry)) {
        if (key !== 'path' && key !== 'lockfilePath' && key !== 'shared') throw argValueError(`Unknown key '${key}' in ${name}; known keys: path, lockfilePath, shared`);
      }
      path = validatePath(entry.path, `${name}.path`);
      if (entry.lockfilePath !== undefined) lockfilePath = validatePath(entry.lockfilePath, `${name}.lockfilePath`);
      if (entry.shared !== undefined) {
        if (typeof entry.shared !== 'boolean') throw argTypeError(`${name}.shared must be a boolean, got ${describe(entry.shared)}`);
        shared = entry.shared;
      }
    } else {
      path = validatePath(item, name);
    }
    const { key } = lockPathFor(path, lockfilePath);
    const same = byKey.get(key);
    if (same === undefined) byKey.set(key, { key, path, lockfilePath, shared });
    else same.shared &&= shared;
  }
  if (byKey.size === 0) throw argValueError('paths must name at least one path');
  return [...byKey.values()].sort((a, b) => (a.key < b.key ? -1 : a.key > b.key ? 1 : 0));
}

function isUrlLike(value: object): boolean {
  const v = value as URL;
  return typeof v.href === 'string' && typeof v.protocol === 'string' && typeof v.pathname === 'string';
}
