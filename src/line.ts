import { AsyncLocalStorage } from 'node:async_hooks';

import type { HeldLock } from './held-lock.js';
import { checkLimits, watchLimits, type WaitLimits } from './limits.js';
import { native, type Slot } from './native.js';
import { unwatchForDeadlock, watchForDeadlock } from './self-deadlock.js';

/**
 * The per-thread line: this JavaScript thread's callers for one lock file,
 * in front of the process-wide slot. They are served in FIFO order, each
 * handed the head of the line without polling; only the caller at the head
 * talks to the addon, so a thread never runs more than one native wait per
 * lock file.
 */
export class Line {
  private held = false;
  readonly slot: Slot;
  private readonly waiters = new Set<Waiter>();

  constructor(
    readonly lockPath: string,
    /** The line's identity in this process; see LockPath.key. */
    readonly key: string,
  ) {
    this.slot = native.slot(lockPath);
  }

  get idle(): boolean {
    return !this.held && this.waiters.size === 0;
  }

  /** Takes the head of the line at once if nobody here has it or waits for it. */
  tryEnter(): boolean {
    if (this.held || this.waiters.size > 0) return false;
    this.held = true;
    return true;
  }

  /** Waits in line; resolves at the head of the line, or rejects holding nothing. */
  enter(limits: WaitLimits): Promise<void> {
    if (this.tryEnter()) return Promise.resolve();
    try {
      checkLimits(limits);
    } catch (error) {
      return Promise.reject(error);
    }
    return new Promise<void>((resolve, reject) => {
      const waiter: Waiter = {
        limits,
        grant: resolve,
        fail: (reason) => {
          if (!this.waiters.delete(waiter)) return;
          waiter.stop();
          if (this.waiters.size === 0) unwatchForDeadlock(this);
          reject(reason);
        },
        stop: watchLimits(limits, (reason) => waiter.fail(reason)),
      };
      this.waiters.add(waiter);
      watchForDeadlock(this);
    });
  }

  /** Hands the head of the line to the first waiter, or leaves the line empty. */
  leave(): void {
    const next = this.waiters.values().next();
    if (next.done) {
      this.held = false;
      return;
    }
    const waiter = next.value;
    this.waiters.delete(waiter);
    if (this.waiters.size === 0) unwatchForDeadlock(this);
    waiter.stop();
    waiter.grant();
  }

  /** Rejects every caller waiting here: the head of the line will never come. */
  failAll(error: (limits: WaitLimits) => unknown): void {
    for (const waiter of [...this.waiters]) waiter.fail(error(waiter.limits));
  }
}

interface Waiter {
  readonly limits: WaitLimits;
  grant(): void;
  fail(reason: unknown): void;
  stop(): void;
}

// --- this thread's lines ---------------------------------------------------

interface ThreadState {
  /** This thread's line for each lock file, by LockPath.key. */
  readonly lines: Map<string, Line>;
  /** The innermost lock held by the running withFileLock callback, for reentrancy (src/lock.ts). */
  readonly context: AsyncLocalStorage<HeldLock>;
}

// Shared through the global object by every copy of this package loaded in
// the thread (two installs of it in one application), so that they queue in
// one line. The key names the layout: copies whose state or held locks differ
// (v1 held locks had public fields; v2 named the lines `registry`) keep apart.
const STATE = Symbol.for('native-file-lock.thread-state.v3');
const state = ((globalThis as Record<symbol, unknown>)[STATE] ??= {
  lines: new Map(),
  context: new AsyncLocalStorage(),
}) as ThreadState;
const lines = state.lines;

/** Where a withFileLock callback's hold is found by calls inside it. */
export const context = state.context;

/** This thread's line for the lock file (lockPath, key: see LockPath). */
export function lineFor(lockPath: string, key: string): Line {
  let line = lines.get(key);
  if (line === undefined) {
    line = new Line(lockPath, key);
    lines.set(key, line);
    startSweepTimer();
  }
  return line;
}

// --- the sweep timer ---------------------------------------------------------

// Which kept descriptors are idle, and when they close, the addon alone
// decides (native/registry.h: Registry::close_idle); this timer only gives it
// the chance once a second and forgets the lines nobody holds or waits in.
// It is unref'd, so it never keeps the process alive, and it stops once no
// line and no kept descriptor is left.
const SWEEP_MS = 1000;
let sweepTimer: ReturnType<typeof setInterval> | undefined;

function startSweepTimer(): void {
  if (sweepTimer !== undefined) return;
  sweepTimer = setInterval(sweep, SWEEP_MS);
  sweepTimer.unref?.();
}

function sweep(): void {
  for (const [key, line] of lines) {
    if (line.idle) lines.delete(key);
  }
  const kept = native.closeIdle();
  if (lines.size === 0 && kept === 0 && sweepTimer !== undefined) {
    clearInterval(sweepTimer);
    sweepTimer = undefined;
  }
}
