import { fileRef, type FileRef } from './native.js';
import { checkLimits, timeoutError, type WaitLimits } from './wait.js';

/**
 * The lock inside this process for one lock file, taken before any descriptor
 * is used. It serializes this process's holders in FIFO order and hands the
 * lock from one to the next without polling, and it is why the process never
 * needs a second descriptor for a lock file: closing a descriptor (which
 * drops every POSIX record lock the process has on that file, and is how NFS
 * emulates flock) can never happen while another caller here holds the lock.
 */
export class PathLock {
  held = false;
  /** The one open descriptor of the lock file, kept between holders; -1 if closed. */
  fd = -1;
  /** The lock path with the identity of fd's file, compared after each lock. */
  readonly ref: FileRef;
  /** Sweep generation of the last release; see the idle sweep in lock.ts. */
  idleSince = 0;
  private readonly waiters = new Set<Waiter>();

  constructor(readonly lockPath: string) {
    this.ref = fileRef(lockPath);
  }

  get idle(): boolean {
    return !this.held && this.waiters.size === 0;
  }

  /** Takes the lock at once if nobody here holds it or waits for it. */
  tryAcquire(): boolean {
    if (this.held || this.waiters.size > 0) return false;
    this.held = true;
    return true;
  }

  /** Waits in line; resolves holding the lock, or rejects holding nothing. */
  acquire(limits: WaitLimits): Promise<void> {
    if (this.tryAcquire()) return Promise.resolve();
    try {
      checkLimits(limits);
    } catch (error) {
      return Promise.reject(error);
    }
    return new Promise<void>((resolve, reject) => {
      const waiter: Waiter = { grant: resolve, fail: reject, cleanup: noop };
      const { signal, deadline } = limits;
      const onAbort = () => this.dropWaiter(waiter, signal!.reason);
      const timer =
        deadline === Infinity
          ? undefined
          : setTimeout(() => this.dropWaiter(waiter, timeoutError(limits)), Math.max(0, deadline - performance.now()));
      signal?.addEventListener('abort', onAbort, { once: true });
      waiter.cleanup = () => {
        if (timer !== undefined) clearTimeout(timer);
        signal?.removeEventListener('abort', onAbort);
      };
      this.waiters.add(waiter);
    });
  }

  /** Passes the lock to the first waiter, or frees it. */
  release(): void {
    const next = this.waiters.values().next();
    if (next.done) {
      this.held = false;
      return;
    }
    const waiter = next.value;
    this.waiters.delete(waiter);
    waiter.cleanup();
    waiter.grant();
  }

  private dropWaiter(waiter: Waiter, reason: unknown): void {
    if (!this.waiters.delete(waiter)) return;
    waiter.cleanup();
    waiter.fail(reason);
  }
}

interface Waiter {
  grant(): void;
  fail(reason: unknown): void;
  cleanup(): void;
}

function noop(): void {}
