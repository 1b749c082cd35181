import { statSync } from 'node:fs';
import { dirname } from 'node:path';
import { getSystemErrorMap, getSystemErrorName } from 'node:util';

/**
 * A {@link FileLockError}'s `code`. The library's own codes:
 * - `'ELOCKTIMEOUT'`: `options.timeout` ran out ({@link LockTimeoutError}).
 * - `'ELOCKUNSUPPORTED'`: the file system cannot lock (`flock` answered
 *   `ENOLCK`, `EOPNOTSUPP`, `ENOSYS` or `EINVAL`); the library fails closed.
 * - `'EDEADLK'`: a wait for a lock this thread holds, with nothing left in the
 *   thread that could release it; a synchronous call that would block on a
 *   lock this thread holds or waits for; an exclusive call inside a shared
 *   hold of the same lock (`flock` cannot upgrade atomically).
 * - `'ENOTSUP'`: `steal: true` in a lock manager request; a kernel lock
 *   cannot be taken from the process holding it.
 *
 * Any other string is a system error's libuv name, the same on POSIX and
 * Windows: `'ENOENT'`, `'ENOTDIR'`, `'EACCES'`, `'EPERM'`, `'EROFS'`,
 * `'ELOOP'`, `'EISDIR'`, `'EFTYPE'`, `'ENOSPC'`, `'ENAMETOOLONG'`, `'EBADF'`,
 * `'EAGAIN'` (no wait thread). The README's "Errors" table says what to do
 * for each.
 *
 * @example
 * ```ts
 * if (error instanceof FileLockError && error.code === 'ELOCKTIMEOUT') retryLater();
 * ```
 */
export type FileLockErrorCode = 'ELOCKTIMEOUT' | 'ELOCKUNSUPPORTED' | 'EDEADLK' | (string & {});

/**
 * Every failure to lock or unlock: a system error (code such as `'EACCES'`,
 * with `errno` and `syscall`) or one of the library's own codes (see
 * {@link FileLockErrorCode}). The message names the lock file. Nothing is
 * held when a lock call rejects with it. Bad arguments are a `TypeError` or
 * `RangeError` instead, and an abort rejects with the signal's reason.
 *
 * @example
 * ```ts
 * try {
 *   await withFileLock('/var/lib/app/data.db', work);
 * } catch (error) {
 *   if (error instanceof FileLockError) console.error(error.code, error.path);
 *   throw error;
 * }
 * ```
 */
export class FileLockError extends Error {
  override name = 'FileLockError';
  /** What went wrong: one of the library's codes or a system error's libuv name. */
  readonly code: FileLockErrorCode;
  /** For system errors: the negative libuv error number (as Node's fs errors have it). */
  readonly errno?: number;
  /**
   * For system errors: the failed call. `'flock'` on Linux and macOS,
   * `'LockFileEx'`/`'UnlockFileEx'` on Windows, `'pthread_create'`/`'CreateThread'`
   * for a wait thread, or the file call that failed (`'open'`, `'realpath'`, ...).
   */
  readonly syscall?: string;
  /** The lock file. */
  readonly path: string;
  /** The path the caller asked to protect. */
  readonly resource?: string;

  constructor(
    message: string,
    fields: { code: FileLockErrorCode; path: string; resource?: string; errno?: number; syscall?: string; cause?: unknown },
  ) {
    super(message, fields.cause === undefined ? undefined : { cause: fields.cause });
    this.code = fields.code;
    this.path = fields.path;
    if (fields.resource !== undefined) this.resource = fields.resource;
    if (fields.errno !== undefined) this.errno = fields.errno;
    if (fields.syscall !== undefined) this.syscall = fields.syscall;
  }
}

/**
 * The wait ran out of `options.timeout`; nothing is held. Its code is
 * `'ELOCKTIMEOUT'`, `path` the lock file.
 *
 * @example
 * ```ts
 * await withFileLock('data.db', work, { timeout: 1000 }).catch((error) => {
 *   if (!(error instanceof LockTimeoutError)) throw error;
 *   console.warn(`busy for ${error.waited} ms, held by pid ${error.holder?.pid ?? 'unknown'}`);
 * });
 * ```
 */
export class LockTimeoutError extends FileLockError {
  override name = 'LockTimeoutError';
  /** Whole milliseconds spent waiting, the figure the message gives. */
  readonly waited: number;
  /**
   * The process holding the lock when the wait ran out, if known (Linux, from
   * `/proc/locks`; the first of several shared holders); `undefined` when it
   * cannot be known (another pid namespace, macOS, Windows).
   */
  readonly holder: { readonly pid: number } | undefined;

  constructor(path: string, resource: string | undefined, waited: number, holders: readonly number[] = []) {
    const ms = Math.round(waited);
    const by = holders.length === 0 ? '' : ` held by pid${holders.length > 1 ? 's' : ''} ${holders.join(', ')}`;
    super(`Timed out after ${ms} ms waiting for the lock on '${path}'${by}`, {
      code: 'ELOCKTIMEOUT',
      path,
      resource,
    });
    this.waited = ms;
    this.holder = holders.length === 0 ? undefined : { pid: holders[0]! };
  }
}

// flock(2) answers these where the file system cannot lock at all (some
// FUSE and network file systems). Treating them as "busy" would wait forever,
// treating them as "acquired" would let two holders in: fail closed instead.
const UNSUPPORTED = new Set(['ENOLCK', 'EOPNOTSUPP', 'ENOTSUP', 'ENOSYS', 'EINVAL']);
const LOCK_CALLS = new Set(['flock', 'fcntl', 'LockFileEx', 'UnlockFileEx']);

const HINTS: Record<string, string> = {
  ELOOP: 'the lock file is a symbolic link, and lock files are never followed',
  EISDIR:
    'the lock path is a directory; if proper-lockfile or another mkdir-based lock library made it (they create <file>.lock as a directory), ' +
    'give this library another lockfilePath while both are in use, and remove the directory once nothing uses the old scheme',
  ENOTDIR: 'a component of its directory is not a directory',
  EFTYPE: 'the lock path is not a regular file',
  ENOENT: 'its directory does not exist',
  EROFS: 'read-only file system, and the lock file does not exist yet',
  EACCES: 'permission denied',
};

/** A negative libuv error number from the addon, as an error naming the lock file. */
export function systemError(errno: number, syscall: string, path: string, resource?: string): FileLockError {
  const name = errorName(errno);
  if (LOCK_CALLS.has(syscall) && UNSUPPORTED.has(name)) {
    return new FileLockError(
      `The file system does not support locking '${path}' (${syscall}: ${name}); refusing to run unlocked`,
      { code: 'ELOCKUNSUPPORTED', errno, syscall, path, resource },
    );
  }
  const detail =
    name === 'EBADF' && LOCK_CALLS.has(syscall)
      ? 'the lock file could only be opened read-only, and this file system needs a writable descriptor for an exclusive lock'
      : name === 'ENOENT' && isDirectory(dirname(path))
        ? 'its directory exists, but the file system would not create the lock file there, as /proc and /sys do not'
        : (HINTS[name] ?? errorMessage(errno));
  return new FileLockError(`${name}: ${syscall} failed on lock file '${path}'${detail ? ` (${detail})` : ''}`, {
    code: name,
    errno,
    syscall,
    path,
    resource,
  });
}

function isDirectory(path: string): boolean {
  try {
    return statSync(path).isDirectory();
  } catch {
    return false;
  }
}

/** A Node fs error (open, realpath) wrapped so the message says what was being locked. */
export function wrapFsError(error: unknown, action: string, path: string, resource?: string): unknown {
  if (!(error instanceof Error) || typeof (error as NodeJS.ErrnoException).code !== 'string') return error;
  const e = error as NodeJS.ErrnoException;
  return new FileLockError(`Cannot ${action} '${path}': ${e.message}`, {
    code: e.code!,
    errno: e.errno,
    syscall: e.syscall,
    path,
    resource,
    cause: error,
  });
}

function errorName(errno: number): string {
  try {
    return getSystemErrorName(errno);
  } catch {
    return `E${-errno}`;
  }
}

function errorMessage(errno: number): string {
  try {
    return getSystemErrorMap().get(errno)?.[1] ?? '';
  } catch {
    return '';
  }
}

/**
 * Bad arguments, with Node's codes for them, so that callers can tell them
 * apart by `code` as they can Node's own: a wrong type, a value out of range,
 * any other invalid value.
 */
export function argTypeError(message: string): TypeError {
  return Object.assign(new TypeError(message), { code: 'ERR_INVALID_ARG_TYPE' });
}

export function argValueError(message: string): TypeError {
  return Object.assign(new TypeError(message), { code: 'ERR_INVALID_ARG_VALUE' });
}

export function argRangeError(message: string): RangeError {
  return Object.assign(new RangeError(message), { code: 'ERR_OUT_OF_RANGE' });
}
