// A wait made visible: onWait calls, and the debug lines of a wait and of its end.
import { debug, debugging, since } from './debug.js';
import type { WaitLimits } from './limits.js';
import { procLocksReadable, readProcLocks, type LockHolder } from './proc-locks.js';
// For the {@link} references in the docs below.
import type { inspect } from './holder.js';

/** What `options.onWait` is called with while a call waits for a lock. */
export interface WaitInfo {
  /** Milliseconds this call has waited so far (in this thread's line and for the file lock). */
  readonly waitedMs: number;
  /** The lock file waited for: `<canonical path>.lock` or `options.lockfilePath`. */
  readonly path: string;
  /** The path the lock protects, as the caller gave it. */
  readonly resource: string;
  /**
   * Who holds the lock at the time of the call, when it can be known: on
   * Linux from `/proc/locks` (as {@link inspect} reads it; `pid` is
   * `undefined` for a holder in another pid namespace, and is this process's
   * own pid when another thread or caller of this process holds it). Absent
   * on macOS and Windows, where finding out would mean trying the lock.
   */
  readonly holder?: LockHolder;
}

/** The options this module reads (src/options.ts validates them). */
export interface VisibleOptions {
  onWait: ((info: WaitInfo) => unknown) | undefined;
  onWaitAfterMs: number;
  warnAfterMs: number;
}

export const DEFAULT_ON_WAIT_AFTER_MS = 1000;

/** The `type` of every process warning this package emits. */
export const WARNING_TYPE = 'NativeFileLockWarning';

const nothing = (): void => {};

/**
 * Calls options.onWait once the wait of limits has lasted onWaitAfterMs, then
 * again every onWaitAfterMs, until the returned function is called (however
 * the wait ends). The timer is unref'd: a wait alone keeps the process alive
 * through the native wait, not through this. An exception or rejection of
 * onWait becomes a process warning (NFL_ON_WAIT_FAILED) and the wait goes on.
 */
export function watchWait(options: VisibleOptions, limits: WaitLimits): () => void {
  if (debugging) debug("wait '%s' (for '%s'), held by pid %s", limits.lockPath, limits.resource, holderOf(limits.lockPath)?.pid ?? 'unknown');
  const onWait = options.onWait;
  if (onWait === undefined) return nothing;
  const every = options.onWaitAfterMs;
  let timer: ReturnType<typeof setTimeout> | undefined;
  const call = () => {
    timer = setTimeout(call, every);
    timer.unref?.();
    const info: { -readonly [K in keyof WaitInfo]: WaitInfo[K] } = { waitedMs: since(limits.started), path: limits.lockPath, resource: limits.resource };
    const holder = holderOf(limits.lockPath);
    if (holder !== undefined) info.holder = holder;
    try {
      const result = onWait(info);
      if (isThenable(result)) result.then(undefined, (error: unknown) => onWaitFailed(error, info));
    } catch (error) {
      onWaitFailed(error, info);
    }
  };
  // Counted from the start of the wait, which may have begun before this call.
  timer = setTimeout(call, Math.max(0, every - (performance.now() - limits.started)));
  timer.unref?.();
  return () => {
    if (timer !== undefined) clearTimeout(timer);
    timer = undefined;
  };
}

/** The lock's holder from /proc/locks (Linux), never by trying the lock; undefined when not known. */
function holderOf(lockPath: string): LockHolder | undefined {
  if (!procLocksReadable()) return undefined;
  try {
    const state = readProcLocks(lockPath);
    return state?.locked ? state.holder : undefined;
  } catch {
    return undefined; // Telling never gets in the way of the wait.
  }
}

function onWaitFailed(error: unknown, info: WaitInfo): void {
  const message = error instanceof Error ? error.message : String(error);
  process.emitWarning(`options.onWait threw while waiting for '${info.path}' (the wait goes on): ${message}`, {
    type: WARNING_TYPE,
    code: 'NFL_ON_WAIT_FAILED',
    detail: error instanceof Error ? error.stack : undefined,
  });
}

function isThenable(value: unknown): value is PromiseLike<unknown> {
  return value !== null && (typeof value === 'object' || typeof value === 'function') && typeof (value as PromiseLike<unknown>).then === 'function';
}

/** The debug line for a wait that ended in a timeout or an abort (or another error). */
export function noteWaitFailed(error: unknown, limits: WaitLimits): void {
  if (!debugging) return;
  const waited = since(limits.started);
  if (limits.signal?.aborted && error === limits.signal.reason) debug("abort '%s' after waiting %d ms", limits.lockPath, waited);
  else if ((error as { code?: unknown } | null)?.code === 'ELOCKTIMEOUT') debug("timeout '%s' after waiting %d ms", limits.lockPath, waited);
  else debug("wait failed '%s' after %d ms: %s", limits.lockPath, waited, (error as Error)?.message ?? String(error));
}
