import { AsyncLocalStorage } from 'node:async_hooks';
import { closeSync, constants, fstatSync, openSync } from 'node:fs';

import { FileLockError, systemError, wrapFsError } from './errors.js';
import { PathLock } from './in-process.js';
import { ACQUIRED, BUSY, REPLACED, native } from './native.js';
import { validateOptions, validatePath, type LockOptions, type ValidOptions } from './options.js';
import { lockPathFor } from './paths.js';
import { Backoff, checkLimits, type WaitLimits } from './wait.js';

/** A held lock. Release it once; further calls do nothing. */
export interface FileLock {
  /** The lock file. */
  readonly path: string;
  /** The path the lock protects, as the caller gave it. */
  readonly resource: string;
  readonly released: boolean;
  /** Unlocks; the lock file stays in place (deleting it would let two holders in). */
  release(): Promise<void>;
  [Symbol.asyncDispose](): Promise<void>;
  [Symbol.dispose](): void;
}

/**
 * Runs fn while holding the lock for path and releases it however fn ends.
 * Resolves to fn's value and rejects with fn's error unchanged. A nested call
 * for the same path inside fn (same async context) runs at once.
 */
export function withFileLock<T>(path: string, fn: () => T | PromiseLike<T>, options?: LockOptions): Promise<Awaited<T>> {
  try {
    if (typeof fn !== 'function') throw new TypeError(`fn must be a function, got ${fn === null ? 'null' : typeof fn}`);
    const acquired = acquire(path, options, true);
    if (acquired instanceof Handle) return runHolding(acquired, fn);
    return (acquired as Promise<Handle>).then((handle) => runHolding(handle, fn));
  } catch (error) {
    return Promise.reject(error);
  }
}

// Written without async/await: every promise costs a hook call per
// AsyncLocalStorage on Node 20, and a synchronous fn needs none until the end.
function runHolding<T>(handle: Handle, fn: () => T | PromiseLike<T>): Promise<Awaited<T>> {
  let result: T | PromiseLike<T>;
  try {
    result = handle.nested ? fn() : context.run(handle, fn);
  } catch (error) {
    handle.releaseQuietly();
    return Promise.reject(error);
  }
  if (isThenable(result)) {
    return Promise.resolve(result).then(
      (value) => {
        handle.releaseSync();
        return value as Awaited<T>;
      },
      (error: unknown) => {
        handle.releaseQuietly();
        throw error;
      },
    );
  }
  try {
    handle.releaseSync();
  } catch (error) {
    return Promise.reject(error);
  }
  return Promise.resolve(result as Awaited<T>);
}

function isThenable(value: unknown): value is PromiseLike<unknown> {
  return value !== null && (typeof value === 'object' || typeof value === 'function') && typeof (value as PromiseLike<unknown>).then === 'function';
}

/** Waits for the lock for path (within options.timeout / options.signal) and returns it. */
export async function lock(path: string, options?: LockOptions): Promise<FileLock> {
  return (await acquire(path, options, true))!;
}

/** Takes the lock for path if it is free right now; never waits. */
export async function tryLock(path: string, options?: LockOptions): Promise<FileLock | undefined> {
  return acquire(path, options, false);
}

// --- acquisition -----------------------------------------------------------

/** This process's lock per lock file; see PathLock. */
const registry = new Map<string, PathLock>();
/** The innermost lock held by the running withFileLock callback, for reentrancy. */
const context = new AsyncLocalStorage<Handle>();

/**
 * In-process lock, then the file lock. Returns synchronously when neither
 * has to wait, which is the common case and the one that must be cheap.
 */
function acquire(pathArg: unknown, optionsArg: unknown, wait: boolean): Handle | undefined | Promise<Handle | undefined> {
  const resource = validatePath(pathArg, 'path');
  const options = validateOptions(optionsArg);
  if (options.signal?.aborted) throw options.signal.reason;
  const lockPath = lockPathFor(resource, options.lockfilePath);

  const outer = heldInContext(lockPath);
  if (outer !== undefined) return new Handle(outer.entry, resource, true);

  let entry = registry.get(lockPath);
  if (entry === undefined) {
    entry = new PathLock(lockPath);
    registry.set(lockPath, entry);
    startSweeper();
  }
  if (!entry.tryAcquire()) return wait ? acquireSlowly(entry, options, resource, false) : undefined;
  let locked: boolean;
  try {
    locked = attempt(entry, resource);
  } catch (error) {
    entry.release();
    throw error;
  }
  if (locked) return new Handle(entry, resource, false);
  if (wait) return acquireSlowly(entry, options, resource, true);
  entry.release();
  return undefined;
}

/** Waits in the in-process line (unless already first), then for the file lock. */
async function acquireSlowly(entry: PathLock, options: ValidOptions, resource: string, inLine: boolean): Promise<Handle> {
  const started = performance.now();
  const limits: WaitLimits = {
    signal: options.signal,
    deadline: started + options.timeout,
    started,
    lockPath: entry.lockPath,
    resource,
    minDelay: options.minDelay,
    maxDelay: options.maxDelay,
  };
  if (!inLine) await entry.acquire(limits);
  try {
    let backoff: Backoff | undefined;
    // A holder handed over in-process has not tried the file lock yet.
    while (inLine || !attempt(entry, resource)) {
      inLine = false;
      checkLimits(limits);
      await (backoff ??= new Backoff(limits)).pause();
    }
  } catch (error) {
    entry.release();
    throw error;
  }
  const handle = new Handle(entry, resource, false);
  // The abort may have landed while the last attempt succeeded: give it back.
  if (options.signal?.aborted) {
    handle.releaseQuietly();
    throw options.signal.reason;
  }
  return handle;
}

/** One attempt at the file lock for an entry this caller holds in-process. */
function attempt(entry: PathLock, resource: string): boolean {
  for (let replaced = 0; replaced < 3; replaced++) {
    if (entry.fd < 0) openLockFile(entry, resource);
    const result = native.tryLockAt(entry.fd, true, entry.ref);
    if (result === ACQUIRED) return true;
    if (result === BUSY) return false;
    if (result !== REPLACED) throw systemError(result, native.lockSyscall, entry.lockPath, resource);
    // Deleted or replaced since we opened it: a lock on an orphan excludes
    // nobody. Start over with whatever is at the path now.
    closeLockFile(entry);
  }
  // Replaced again and again: wait like for a busy lock, then retry.
  return false;
}

// O_CLOEXEC is added by libuv: a spawned child never inherits the lock.
const OPEN_FLAGS = constants.O_RDWR | constants.O_CREAT | (constants.O_NOFOLLOW ?? 0);
const OPEN_READONLY = constants.O_RDONLY | (constants.O_NOFOLLOW ?? 0);

function openLockFile(entry: PathLock, resource: string): void {
  const path = entry.lockPath;
  let fd: number;
  try {
    // 0o666 & ~umask, like any file the user's tools create.
    fd = openSync(path, OPEN_FLAGS, 0o666);
  } catch (error) {
    const code = (error as NodeJS.ErrnoException).code;
    // A lock file that exists on a read-only file system, or that we may not
    // write, can still be locked through a read-only descriptor.
    let readonly: number | undefined;
    if (code === 'EROFS' || code === 'EACCES' || code === 'EPERM') {
      try {
        readonly = openSync(path, OPEN_READONLY);
      } catch {
        // Report the first failure: it names the real obstacle.
      }
    }
    if (readonly === undefined) {
      const hint = code === 'ELOOP' ? ' (the lock file is a symbolic link; lock files are never followed)' : '';
      const wrapped = wrapFsError(error, `open lock file${hint}`, path, resource);
      throw wrapped;
    }
    fd = readonly;
  }
  try {
    if (!fstatSync(fd).isFile()) {
      throw new FileLockError(`Cannot use '${path}' as a lock file: it is not a regular file`, {
        code: fstatSync(fd).isDirectory() ? 'EISDIR' : 'EINVAL',
        path,
        resource,
      });
    }
    const r = native.recordFd(fd, entry.ref);
    if (r !== 0) throw systemError(r, 'fstat', path, resource);
  } catch (error) {
    closeSync(fd);
    throw error;
  }
  entry.fd = fd;
}

function closeLockFile(entry: PathLock): void {
  if (entry.fd < 0) return;
  const fd = entry.fd;
  entry.fd = -1;
  try {
    closeSync(fd);
  } catch {
    // Closing can only fail for a descriptor that is already gone.
  }
}

function heldInContext(lockPath: string): Handle | undefined {
  for (let h = context.getStore(); h !== undefined; h = h.outer) {
    if (h.entry.lockPath === lockPath && !h.released) return h;
  }
  return undefined;
}

// --- release ---------------------------------------------------------------

class Handle implements FileLock {
  released = false;
  /** The lock held by the withFileLock callback this handle was taken in. */
  readonly outer: Handle | undefined;

  constructor(
    readonly entry: PathLock,
    readonly resource: string,
    /** A reentrant handle: the outer holder keeps the lock; releasing does nothing. */
    readonly nested: boolean,
  ) {
    this.outer = context.getStore();
  }

  get path(): string {
    return this.entry.lockPath;
  }

  release(): Promise<void> {
    try {
      this.releaseSync();
      return Promise.resolve();
    } catch (error) {
      return Promise.reject(error);
    }
  }

  [Symbol.asyncDispose](): Promise<void> {
    return this.release();
  }

  [Symbol.dispose](): void {
    this.releaseSync();
  }

  releaseSync(): void {
    if (this.released) return;
    this.released = true;
    if (this.nested) return;
    const entry = this.entry;
    const result = native.unlock(entry.fd);
    entry.idleSince = generation;
    if (result !== 0) {
      // Closing the only descriptor drops the lock whatever unlock said.
      closeLockFile(entry);
      entry.release();
      throw systemError(result, native.unlockSyscall, entry.lockPath, this.resource);
    }
    entry.release();
  }

  /** Release when an error is already on its way to the caller. */
  releaseQuietly(): void {
    try {
      this.releaseSync();
    } catch {
      // The caller's error matters more; the descriptor is closed either way.
    }
  }
}

// --- idle descriptors --------------------------------------------------------

// A lock file's descriptor stays open between holders (reopening costs more
// than the lock itself) and is closed once it has been idle for a full sweep
// interval. The timer is unref'd: it never keeps the process alive.
const SWEEP_MS = 1000;
let generation = 0;
let sweeper: ReturnType<typeof setInterval> | undefined;

function startSweeper(): void {
  if (sweeper !== undefined) return;
  sweeper = setInterval(sweep, SWEEP_MS);
  sweeper.unref?.();
}

function sweep(): void {
  generation++;
  for (const [lockPath, entry] of registry) {
    if (entry.idle && entry.idleSince < generation - 1) {
      closeLockFile(entry);
      registry.delete(lockPath);
    }
  }
  if (registry.size === 0 && sweeper !== undefined) {
    clearInterval(sweeper);
    sweeper = undefined;
  }
}
