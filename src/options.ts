import { fileURLToPath } from 'node:url';

import { argRangeError, argTypeError, argValueError } from './errors.js';
import { DEFAULT_ON_WAIT_AFTER_MS, type VisibleOptions, type WaitInfo } from './visible-wait.js';
// For the {@link} references in the docs below.
import type { lock, tryLock, withFileLock } from './lock.js';

/**
 * A path as Node's fs takes it: a string, a `file:` URL, or a Buffer holding
 * UTF-8. Relative paths are resolved against the current directory at the
 * time of the call. Anything else, an empty path, a NUL byte, another URL
 * scheme or a Buffer that is not UTF-8 is a `TypeError`.
 *
 * @example
 * ```ts
 * await withFileLock(new URL('./data.db', import.meta.url), work);
 * ```
 */
export type LockPath = string | URL | Buffer;

/**
 * Options shared by {@link withFileLock}, {@link lock} and {@link tryLock}.
 * Validated on each call: an unknown name (a misspelled `timeOut`) or a value
 * of the wrong type is a `TypeError`, so it never silently waits forever.
 *
 * @example
 * ```ts
 * await withFileLock('data.db', work, { timeout: 5000, signal: AbortSignal.timeout(10_000) });
 * ```
 */
export interface LockOptions {
  /**
   * Milliseconds to wait for the lock, in this thread's line and for other
   * threads and processes, before rejecting with a `LockTimeoutError`
   * (code `'ELOCKTIMEOUT'`, nothing held).
   *
   * Default: `Infinity`, wait forever. `0` makes one attempt. Must be a
   * number (else `TypeError`), not negative and not NaN (else `RangeError`).
   * Ignored by tryLock, which never waits.
   */
  timeout?: number;
  /**
   * Aborts the wait: the call rejects at once with `signal.reason`, also when
   * the signal is already aborted before the call (tryLock included), and
   * nothing stays held, even if the lock was granted in the same instant.
   *
   * Default: none. Must be an `AbortSignal` (else `TypeError`).
   */
  signal?: AbortSignal;
  /**
   * The lock file to use instead of `<canonical path>.lock`. Its directory is
   * resolved as the kernel walks it (symlinks first, then `..`) and must
   * exist (`ENOENT`); the file itself is created if missing and must not be a
   * symlink (`ELOOP`) or a directory (`EISDIR`).
   *
   * Default: `<canonical path>.lock`, next to the resource. Validated like
   * `path`: a string, a `file:` URL or a UTF-8 Buffer, not empty, no NUL
   * byte (else `TypeError`).
   */
  lockfilePath?: LockPath;
  /**
   * Takes a shared (reader) lock: `flock(LOCK_SH)` on Linux and macOS,
   * `LockFileEx` without `LOCKFILE_EXCLUSIVE_LOCK` on Windows. Any number of
   * shared holders, in this thread, other threads and other processes, hold
   * it at once; an exclusive holder excludes them all. Writers are
   * preferred: while an exclusive caller waits, new shared callers of this
   * library wait behind it (across processes on Linux only). Inside a
   * `withFileLock` callback that holds the lock exclusively, a shared call
   * runs at once; inside a shared one, an exclusive call fails with
   * `EDEADLK` (a shared lock cannot be upgraded atomically).
   *
   * Default: `false`, an exclusive lock. Must be a boolean (else `TypeError`).
   */
  shared?: boolean;
  /**
   * Deletes the lock file at release, while still holding it exclusively, if
   * its path still names the file that was locked, so that lock files do not
   * pile up (one per key of a cache, say). Every holder in this library
   * checks after locking that the path still names the file it locked, and
   * starts over if not, so this is safe among processes that use this
   * library; it is not with peers that lock the path without that check
   * (`flock(1)`, Python's `fcntl.flock`): see the README, "Lock files that
   * do not pile up". A shared holder deletes it only if no other holder is
   * left, in this process or any other.
   *
   * Default: `false`, the lock file stays. Must be a boolean (else `TypeError`).
   */
  removeLockFile?: boolean;
  /**
   * Called while the call waits for the lock: first when the wait has lasted
   * `onWaitAfterMs`, then again every `onWaitAfterMs` until it ends, with
   * `{ waitedMs, path, resource }` (`path`: the lock file). Never called
   * once the wait has ended (lock taken, timeout, abort or error) and never
   * by tryLock, which does not wait. An exception it throws (or a promise it
   * returns that rejects) becomes a process warning (`NativeFileLockWarning`,
   * code `'NFL_ON_WAIT_FAILED'`) and the wait goes on. Its timer is unref'd,
   * so it cannot be what releases a lock this thread holds: a wait for such
   * a lock fails with `EDEADLK` before it runs.
   *
   * Default: none. Must be a function (else `TypeError`).
   */
  onWait?: (info: WaitInfo) => unknown;
  /**
   * Milliseconds of waiting before the first `onWait` call, and between calls.
   *
   * Default: `1000`. Must be a number (else `TypeError`), finite and not negative (else `RangeError`).
   */
  onWaitAfterMs?: number;
  /**
   * Emits one process warning (`NativeFileLockWarning`, code
   * `'NFL_HELD_LONG'`, naming the lock file and the time held) when this
   * hold lasts longer than this many milliseconds. Nothing is released or
   * taken: it only tells. Its timer is unref'd and cleared at release.
   *
   * Default: `Infinity`, no warning. Must be a number (else `TypeError`), not negative and not NaN (else `RangeError`).
   */
  warnAfterMs?: number;
}

export interface ValidOptions extends VisibleOptions {
  timeout: number;
  signal: AbortSignal | undefined;
  lockfilePath: string | undefined;
  shared: boolean;
  removeLockFile: boolean;
}

const KNOWN = new Set(['timeout', 'signal', 'lockfilePath', 'shared', 'removeLockFile', 'onWait', 'onWaitAfterMs', 'warnAfterMs']);
const DEFAULTS: ValidOptions = {
  timeout: Infinity,
  signal: undefined,
  lockfilePath: undefined,
  shared: false,
  removeLockFile: false,
  onWait: undefined,
  onWaitAfterMs: DEFAULT_ON_WAIT_AFTER_MS,
  warnAfterMs: Infinity,
};

export function validatePath(value: unknown, name: string): string {
  if (typeof value !== 'string') value = pathString(value, name);
  if (typeof value !== 'string') throw argTypeError(`${name} must be a string, a file: URL or a Buffer, got ${describe(value)}`);
  if (value.length === 0) throw argValueError(`${name} must not be empty`);
  if (value.includes('\0')) throw argValueError(`${name} must not contain NUL bytes: ${JSON.stringify(value)}`);
  return value;
}

export function validateOptions(options: unknown): ValidOptions {
  if (options === undefined) return DEFAULTS;
  if (options === null || typeof options !== 'object') throw argTypeError(`options must be an object, got ${describe(options)}`);
  for (const key of Object.keys(options)) {
    if (!KNOWN.has(key)) throw argValueError(`Unknown option '${key}'; known options: ${[...KNOWN].join(', ')}`);
  }
  const o = options as LockOptions;
  const result: ValidOptions = { ...DEFAULTS };
  if (o.timeout !== undefined) result.timeout = duration(o.timeout, 'options.timeout');
  if (o.signal !== undefined) {
    if (!isAbortSignal(o.signal)) throw argTypeError(`options.signal must be an AbortSignal, got ${describe(o.signal)}`);
    result.signal = o.signal;
  }
  if (o.lockfilePath !== undefined) result.lockfilePath = validatePath(o.lockfilePath, 'options.lockfilePath');
  if (o.shared !== undefined) {
    if (typeof o.shared !== 'boolean') throw argTypeError(`options.shared must be a boolean, got ${describe(o.shared)}`);
    result.shared = o.shared;
  }
  if (o.removeLockFile !== undefined) {
    if (typeof o.removeLockFile !== 'boolean') throw argTypeError(`options.removeLockFile must be a boolean, got ${describe(o.removeLockFile)}`);
    result.removeLockFile = o.removeLockFile;
  }
  if (o.onWait !== undefined) {
    if (typeof o.onWait !== 'function') throw argTypeError(`options.onWait must be a function, got ${describe(o.onWait)}`);
    result.onWait = o.onWait;
  }
  if (o.onWaitAfterMs !== undefined) {
    result.onWaitAfterMs = duration(o.onWaitAfterMs, 'options.onWaitAfterMs');
    if (result.onWaitAfterMs === Infinity) throw argRangeError('options.onWaitAfterMs must be a finite number of milliseconds, got Infinity');
  }
  if (o.warnAfterMs !== undefined) result.warnAfterMs = duration(o.warnAfterMs, 'options.warnAfterMs');
  return result;
}

/** The string for a URL or Buffer path; anything else is returned unchanged for the caller to refuse. */
function pathString(value: unknown, name: string): unknown {
  if (value instanceof URL || isUrlLike(value)) {
    const url = value as URL;
    if (url.protocol !== 'file:') throw argValueError(`${name} must be a file: URL, got a ${url.protocol} URL: ${url.href}`);
    try {
      return fileURLToPath(url);
    } catch (error) {
      throw argValueError(`${name} is not a file path: ${url.href} (${(error as Error).message})`);
    }
  }
  if (Buffer.isBuffer(value) || value instanceof Uint8Array) {
    const text = Buffer.from(value.buffer, value.byteOffset, value.byteLength).toString('utf8');
    // Lock paths are UTF-8 end to end: bytes that do not decode cannot be named.
    if (!Buffer.from(text, 'utf8').equals(value)) throw argValueError(`${name} must hold UTF-8 when it is a Buffer: ${JSON.stringify(text)}`);
    return text;
  }
  return value;
}

// A URL from another realm (a vm context) or a WHATWG URL polyfill, as fs accepts them.
function isUrlLike(value: unknown): boolean {
  const v = value as URL | null;
  return typeof v === 'object' && v !== null && typeof v.href === 'string' && typeof v.protocol === 'string' && typeof v.pathname === 'string';
}

function duration(value: unknown, name: string): number {
  if (typeof value !== 'number') throw argTypeError(`${name} must be a number of milliseconds, got ${describe(value)}`);
  if (Number.isNaN(value) || value < 0) throw argRangeError(`${name} must be a non-negative number or Infinity, got ${value}`);
  return value;
}

function isAbortSignal(value: unknown): value is AbortSignal {
  if (typeof AbortSignal === 'function' && value instanceof AbortSignal) return true;
  const v = value as AbortSignal;
  return typeof v === 'object' && v !== null && typeof v.aborted === 'boolean' && typeof v.addEventListener === 'function';
}

export function describe(value: unknown): string {
  if (value === null) return 'null';
  if (typeof value === 'string') return `string ${JSON.stringify(value)}`;
  if (typeof value === 'object' || typeof value === 'function') return typeof value;
  return `${typeof value} ${String(value)}`;
}
