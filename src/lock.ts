import { AsyncLocalStorage } from 'node:async_hooks';

import { PathLock } from './in-process.js';
import { HeldLock, releaseHeld, releaseHeldQuietly, reentrantHeld, type FileLock } from './held-lock.js';
import { ACQUIRED, BUSY, failureError, native } from './native.js';
import { validateOptions, validatePath, type LockOptions, type LockPath, type ValidOptions } from './options.js';
import { lockPathFor } from './paths.js';
import { waitForFile, type WaitLimits } from './wait.js';

export type { FileLock } from './held-lock.js';

/**
 * Runs fn while holding the lock for path and releases it however fn ends.
 * Resolves to fn's value and rejects with fn's error unchanged. A call for
 * the same path inside fn (its async context, at any depth of nesting, awaited
 * or not) runs at once while this hold lasts.
 */
export function withFileLock<T>(path: LockPath, fn: () => T | PromiseLike<T>, options?: LockOptions): Promise<Awaited<T>> {
  try {
    if (typeof fn !== 'function') throw new TypeError(`fn must be a function, got ${fn === null ? 'null' : typeof fn}`);
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

/** Waits for the lock for path (within options.timeout / options.signal) and returns it. */
export async function lock(path: LockPath, options?: LockOptions): Promise<FileLock> {
  return (await hold(path, options, true))!;
}

/** Takes the lock for path if it is free right now; never waits. */
export async function tryLock(path: LockPath, options?: LockOptions): Promise<FileLock | undefined> {
  return hold(path, options, false);
}

// --- acquisition -----------------------------------------------------------

interface ThreadState {
  /** This thread's per-thread line for each lock file, by LockPath.key; see PathLock. (The field's name is part of the v2 layout.) */
  readonly registry: Map<string, PathLock>;
  /** The innermost lock held by the running withFileLock callback, for reentrancy. */
  readonly context: AsyncLocalStorage<HeldLock>;
}

// Shared through the global object by every copy of this package loaded in
// the thread (two installs of it in one application), so that they queue in
// one line. The key names the layout: copies whose state or held locks differ
// (v1 held locks had public fields) keep apart.
const STATE = Symbol.for('native-file-lock.thread-state.v2');
const { registry: lines, context } = ((globalThis as Record<symbol, unknown>)[STATE] ??= {
  registry: new Map(),
  context: new AsyncLocalStorage(),
}) as ThreadState;

/**
 * The per-thread line, then the process-wide slot's claim and the file lock. Returns
 * synchronously when nothing has to wait, which is the common case and the
 * one that must be cheap.
 */
function hold(pathArg: unknown, optionsArg: unknown, willWait: boolean): HeldLock | undefined | Promise<HeldLock | undefined> {
  const resource = validatePath(pathArg, 'path');
  const options = validateOptions(optionsArg);
  if (options.signal?.aborted) throw options.signal.reason;
  const { lockPath, key } = lockPathFor(resource, options.lockfilePath);

  const store = context.getStore();
  const reentrant = reentrantHeld(store, key, resource);
  if (reentrant !== undefined) return reentrant;

  let entry = lines.get(key);
  if (entry === undefined) {
    entry = new PathLock(lockPath, key);
    lines.set(key, entry);
    startSweeper();
  }
  if (!entry.tryAcquire()) return willWait ? holdSlowly(entry, options, resource, false) : undefined;
  const result = native.acquire(entry.slot, willWait);
  if (result === ACQUIRED) return new HeldLock(entry, resource, store);
  if (result === BUSY && willWait) return holdSlowly(entry, options, resource, true);
  entry.release();
  if (result === BUSY) return undefined;
  throw failureError(result, lockPath, resource);
}

/** Waits for the head of the per-thread line (unless it is ours already), then for the file lock. */
async function holdSlowly(entry: PathLock, options: ValidOptions, resource: string, atHead: boolean): Promise<HeldLock> {
  const started = performance.now();
  const limits: WaitLimits = {
    signal: options.signal,
    deadline: started + options.timeout,
    started,
    lockPath: entry.lockPath,
    resource,
  };
  if (!atHead) await entry.acquire(limits);
  try {
    // Already at the head, the caller has just found the file lock busy.
    const result = atHead ? BUSY : native.acquire(entry.slot, true);
    if (result === BUSY) await waitForFile(entry.slot, limits);
    else if (result !== ACQUIRED) throw failureError(result, entry.lockPath, resource);
  } catch (error) {
    entry.release();
    throw error;
  }
  const held = new HeldLock(entry, resource, context.getStore());
  // The abort may have landed while the lock was being granted: give it back.
  if (options.signal?.aborted) {
    releaseHeldQuietly(held);
    throw options.signal.reason;
  }
  return held;
}

// --- idle descriptors --------------------------------------------------------

// A hot lock's descriptor stays open between holders (reopening costs more
// than the lock itself); the addon closes a cold lock's descriptor on
// release and keeps at most a few hot ones (native/registry.h), with no help
// from this timer, which a tight loop of locks never lets run. Once a
// second it closes kept descriptors not used since the previous sweep and
// forgets idle lines. It is unref'd: it never keeps the process alive.
const SWEEP_MS = 1000;
let sweeper: ReturnType<typeof setInterval> | undefined;

function startSweeper(): void {
  if (sweeper !== undefined) return;
  sweeper = setInterval(sweep, SWEEP_MS);
  sweeper.unref?.();
}

function sweep(): void {
  for (const [key, entry] of lines) {
    if (entry.idle) lines.delete(key);
  }
  const open = native.closeIdle();
  if (lines.size === 0 && open === 0 && sweeper !== undefined) {
    clearInterval(sweeper);
    sweeper = undefined;
  }
}
