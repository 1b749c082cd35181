import { AsyncLocalStorage } from 'node:async_hooks';

import { debug, debugging, since } from './debug.js';
import type { HeldLock } from './held-lock.js';
import { checkLimits, watchLimits, type WaitLimits } from './limits.js';
import { native, type Slot } from './native.js';
import { unwatchForDeadlock, watchForDeadlock } from './self-deadlock.js';

/**
 * The per-thread line: this JavaScript thread's callers for one lock file,
 * in front of the process-wide slot, a reader–writer line with writer
 * preference. The head of the line is one exclusive caller or any number
 * of shared ones; callers behind it are served in FIFO order, each handed
 * the head without polling, and consecutive shared callers are let in
 * together. A caller waiting in line holds back every caller after it, so
 * a queued exclusive caller stops later shared ones. Only callers at the
 * head talk to the addon: one native wait per lock file for an exclusive
 * head, one per shared caller at most (they usually join at once).
 */
export class Line {
  /** Callers at the head: one exclusive, or any number of shared ones. */
  #holders = 0;
  #shared = false;
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
    return this.#holders === 0 && this.waiters.size === 0;
  }

  /** Callers at the head now (src/holder.ts: a lock this thread holds). */
  get holders(): number {
    return this.#holders;
  }

  /** Whether the callers at the head hold it shared. */
  get shared(): boolean {
    return this.#holders > 0 && this.#shared;
  }

  /** Takes a place at the head at once if nobody waits in line and the head admits that mode. */
  tryEnter(shared = false): boolean {
    if (this.waiters.size > 0 || !this.#admits(shared)) return false;
    this.#admit(shared);
    return true;
  }

  /** Waits in line; resolves at the head of the line, or rejects holding nothing. */
  enter(limits: WaitLimits, shared = false): Promise<void> {
    if (this.tryEnter(shared)) return Promise.resolve();
    try {
      checkLimits(limits);
    } catch (error) {
      return Promise.reject(error);
    }
    return new Promise<void>((resolve, reject) => {
      const waiter: Waiter = {
        limits,
        shared,
        grant: resolve,
        fail: (reason) => {
          if (!this.waiters.delete(waiter)) return;
          waiter.stop();
          if (this.waiters.size === 0) unwatchForDeadlock(this);
          reject(reason);
          // The first in line gave up: those behind it may be admitted now.
          this.#admitWaiters();
        },
        stop: watchLimits(limits, (reason) => waiter.fail(reason)),
      };
      this.waiters.add(waiter);
      watchForDeadlock(this);
    });
  }

  /** Gives up a place at the head; the last to leave hands the head to the next in line. */
  leave(): void {
    // Nobody in line (the common case): nothing to hand on, and the deadlock
    // watch already forgot this line when its last waiter left.
    if (--this.#holders > 0 || this.waiters.size === 0) return;
    this.#admitWaiters();
  }

  /** Rejects every caller waiting here: the head of the line will never come. */
  failAll(error: (limits: WaitLimits) => unknown): void {
    for (const waiter of [...this.waiters]) waiter.fail(error(waiter.limits));
  }

  #admits(shared: boolean): boolean {
    return this.#holders === 0 || (shared && this.#shared);
  }

  #admit(shared: boolean): void {
    this.#holders++;
    this.#shared = shared;
  }

  /** Lets in the first waiter, and with a shared one every shared waiter right behind it. */
  #admitWaiters(): void {
    for (const waiter of this.waiters) {
      if (!this.#admits(waiter.shared)) break;
      this.waiters.delete(waiter);
      this.#admit(waiter.shared);
      waiter.stop();
      if (debugging) debug("hand-off '%s': head of this thread's line to a caller that waited %d ms", this.lockPath, since(waiter.limits.started));
      waiter.grant();
    }
    if (this.waiters.size === 0) unwatchForDeadlock(this);
  }
}

interface Waiter {
  readonly limits: WaitLimits;
  readonly shared: boolean;
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

/** This thread's line for the lock file if it has one, without making one. */
export function existingLine(key: string): Line | undefined {
  return lines.get(key);
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
