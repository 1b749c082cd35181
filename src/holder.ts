import { lstatSync } from 'node:fs';

import { existingLine, lineFor } from './line.js';
import { ACQUIRED, BUSY, failureError, native } from './native.js';
import { validateOptions, validatePath, type LockOptions, type LockPath } from './options.js';
import { lockPathFor } from './paths.js';
import { procLocksReadable, readProcLocks, seesEveryPid, type LockState } from './proc-locks.js';
// For the {@link} references in the docs below.
import type { withFileLock } from './lock.js';

export type { LockHolder, LockState } from './proc-locks.js';

/**
 * Tells whether the lock for `path` is held, by whom and how many wait,
 * without waiting. The lock file is the one the lock calls use
 * (`<canonical path>.lock`, or `options.lockfilePath`; only that option is
 * read). A missing lock file is `{ locked: false }`, and is not created.
 * A lock this process holds counts as locked (holder: this process's pid).
 * The answer is a snapshot: the lock may change hands right after.
 *
 * **Platform-specific behavior** (may change):
 * - Linux: read from `/proc/locks` by the lock file's device and inode; the
 *   lock is never taken. `flock` holders and whole-file record locks (NFS,
 *   `fcntl`/`lockf`) count; `waiting` counts blocked waiters and queue
 *   tickets. In a child pid namespace (a container) /proc/locks leaves out
 *   holders outside it (recent kernels), so a lock it shows free there is
 *   confirmed by one try, as below (`pid: undefined` when busy).
 * - macOS, Windows (and Linux without `/proc`): the lock is **tried once and
 *   released at once** (exclusive, then shared if that was busy, to tell
 *   shared holders apart). No pid is known unless this thread holds it, and
 *   `waiting` is not reported. For the instant of the try this call holds the
 *   lock, so another process's tryLock at that instant may find it busy.
 *
 * @param path - The resource (as given to {@link withFileLock}): a string, a `file:` URL or a UTF-8 Buffer.
 * @param options - {@link LockOptions}; only `lockfilePath` is used.
 * @returns A {@link LockState}.
 * @throws {FileLockError} The lock path could not be resolved (`ENOENT` for its directory, `EACCES`, ...),
 *   or, when tried, the lock file could not be locked.
 * @throws {TypeError} A bad `path` or option.
 * @example
 * ```ts
 * const state = inspect('data.db');
 * if (state.locked) console.log(`held by pid ${state.holder?.pid ?? 'unknown'}`);
 * ```
 */
export function inspect(path: LockPath, options?: LockOptions): LockState {
  const resource = validatePath(path, 'path');
  const { lockfilePath } = validateOptions(options);
  const { lockPath, key } = lockPathFor(resource, lockfilePath);
  if (procLocksReadable()) {
    const state = readProcLocks(lockPath);
    // In a child pid namespace (a container) /proc/locks leaves out the
    // locks of processes it cannot see: a lock it shows free is tried.
    if (state !== undefined && (state.locked || seesEveryPid())) return state;
  }
  return tryAndRelease(lockPath, key, resource);
}

/**
 * Whether the lock for `path` is held right now (see {@link inspect}, which
 * this calls: on macOS and Windows it tries the lock and releases it at once).
 *
 * @param path - The resource: a string, a `file:` URL or a UTF-8 Buffer.
 * @param options - {@link LockOptions}; only `lockfilePath` is used.
 * @returns `true` if a process, a thread or this thread holds it.
 * @throws Like {@link inspect}.
 * @example
 * ```ts
 * if (isLocked('data.db')) console.log('busy');
 * ```
 */
export function isLocked(path: LockPath, options?: LockOptions): boolean {
  return inspect(path, options).locked;
}

// --- elsewhere: try once, release at once ------------------------------------

function tryAndRelease(lockPath: string, key: string, resource: string): LockState {
  // This thread's own hold: the line would answer busy without saying whose.
  const own = existingLine(key);
  if (own !== undefined && own.holders > 0) {
    const holder = { pid: process.pid };
    return { locked: true, shared: own.shared, holder, holders: [holder] };
  }
  try {
    lstatSync(lockPath);
  } catch (error) {
    // Trying would create it.
    if ((error as NodeJS.ErrnoException).code === 'ENOENT') return { locked: false };
  }
  if (tryOnce(lockPath, key, resource, false)) return { locked: false };
  // Busy exclusively: a shared try tells shared holders from an exclusive one
  // (it is also busy while a writer waits, and then reads as exclusive).
  const shared = tryOnce(lockPath, key, resource, true);
  const holder = { pid: undefined };
  return { locked: true, shared, holder, holders: [holder] };
}

/** One attempt through this thread's line and the process-wide slot, given back at once: true if it was free. */
function tryOnce(lockPath: string, key: string, resource: string, shared: boolean): boolean {
  const line = lineFor(lockPath, key);
  if (!line.tryEnter(shared)) return false;
  let result;
  try {
    result = native.acquire(line.slot, false, shared);
    if (result === ACQUIRED) {
      const released = native.release(line.slot, false);
      if (released !== ACQUIRED) throw failureError(released, lockPath, resource);
      return true;
    }
  } finally {
    line.leave();
  }
  if (result === BUSY) return false;
  throw failureError(result, lockPath, resource);
}
