import { FileLockError } from './errors.js';
import { native, type Slot } from './native.js';
import { checkLimits, watchLimits, type WaitLimits } from './wait.js';

/**
 * The per-thread line: this JavaScript thread's callers for one lock file,
 * in front of the process-wide slot. They are served in FIFO order, each
 * handed the head of the line without polling; only the caller at the head
 * talks to the addon, so a thread never runs more than one native wait per
 * lock file.
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

  /** Takes the head of the line at once if nobody here has it or waits for it. */
  tryAcquire(): boolean {
    if (this.held || this.waiters.size > 0) return false;
    this.held = true;
    return true;
  }

  /** Waits in line; resolves at the head of the line, or rejects holding nothing. */
  acquire(limits: WaitLimits): Promise<void> {
    if (this.tryAcquire()) return Promise.resolve();
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
          if (this.waiters.size === 0) waiting.delete(this);
          reject(reason);
        },
        stop: watchLimits(limits, (reason) => waiter.fail(reason)),
      };
      this.waiters.add(waiter);
      watchForDeadlock(this);
    });
  }

  /** Hands the head of the line to the first waiter, or leaves the line empty. */
  release(): void {
    const next = this.waiters.values().next();
    if (next.done) {
      this.held = false;
      return;
    }
    const waiter = next.value;
    this.waiters.delete(waiter);
    if (this.waiters.size === 0) waiting.delete(this);
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

// --- self-deadlock -------------------------------------------------------------

// A caller waiting in a line waits for a holder in this thread (or behind the
// first caller of the line, whose native wait keeps the process alive). Such
// a wait has nothing of its own that keeps the event loop running. When the
// loop runs dry ('beforeExit': no I/O, referenced timer, child process,
// worker or addon work left), nothing in this thread can run any more to
// release the holder, and Node would end the process with the work silently
// not done: the waits are rejected with EDEADLK instead. Where code outside
// the loop could still run (a signal listener, another 'beforeExit'
// listener), the process is kept alive instead, as pending I/O would.

/** Lines with callers waiting in them. */
const waiting = new Set<PathLock>();
let listening = false;
let keepAlive: ReturnType<typeof setInterval> | undefined;

function watchForDeadlock(line: PathLock): void {
  waiting.add(line);
  if (listening) return;
  listening = true;
  process.on('beforeExit', onLoopDry);
}

function onLoopDry(): void {
  if (waiting.size === 0 || keepAlive !== undefined) return;
  if (process.listenerCount('beforeExit') > 1 || hasSignalListener()) {
    keepAlive = setInterval(() => {
      if (waiting.size > 0) return;
      clearInterval(keepAlive);
      keepAlive = undefined;
    }, 1000);
    return;
  }
  // From a fresh turn of the loop, where a rejection nobody handles is
  // reported as usual (not from inside the 'beforeExit' emit).
  setImmediate(() => {
    for (const line of [...waiting]) line.failAll(deadlockError);
  });
}

function hasSignalListener(): boolean {
  return process.eventNames().some((name) => typeof name === 'string' && name.startsWith('SIG') && process.listenerCount(name) > 0);
}

function deadlockError(limits: WaitLimits): FileLockError {
  return new FileLockError(
    `EDEADLK: the wait for the lock on '${limits.lockPath}' can never end: this thread holds that lock, ` +
      'and nothing is left in the process that could release it (no pending I/O, referenced timer or listener)',
    { code: 'EDEADLK', path: limits.lockPath, resource: limits.resource },
  );
}
