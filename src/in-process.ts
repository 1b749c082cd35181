import { native, type Slot } from './native.js';
import { checkLimits, watchLimits, type WaitLimits } from './wait.js';

/**
 * This JavaScript thread's line for one lock file, in front of the
 * process-wide slot. Callers here are served in FIFO order and handed the
 * turn without polling; only the first of them talks to the addon, so a
 * thread never runs more than one native wait per lock file.
 */
export class PathLock {
  held = false;
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

  /** Takes the turn at once if nobody here holds it or waits for it. */
  tryAcquire(): boolean {
    if (this.held || this.waiters.size > 0) return false;
    this.held = true;
    return true;
  }

  /** Waits in line; resolves holding the turn, or rejects holding nothing. */
  acquire(limits: WaitLimits): Promise<void> {
    if (this.tryAcquire()) return Promise.resolve();
    try {
      checkLimits(limits);
    } catch (error) {
      return Promise.reject(error);
    }
    return new Promise<void>((resolve, reject) => {
      const waiter: Waiter = {
        grant: resolve,
        stop: watchLimits(limits, (reason) => {
          if (this.waiters.delete(waiter)) reject(reason);
        }),
      };
      this.waiters.add(waiter);
    });
  }

  /** Passes the turn to the first waiter, or frees it. */
  release(): void {
    const next = this.waiters.values().next();
    if (next.done) {
      this.held = false;
      return;
    }
    const waiter = next.value;
    this.waiters.delete(waiter);
    waiter.stop();
    waiter.grant();
  }
}

interface Waiter {
  grant(): void;
  stop(): void;
}
