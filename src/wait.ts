import { LockTimeoutError } from './errors.js';

/** The caller's limits on one acquisition, shared by every wait it goes through. */
export interface WaitLimits {
  readonly signal: AbortSignal | undefined;
  /** performance.now() value after which waiting fails; Infinity for none. */
  readonly deadline: number;
  readonly started: number;
  readonly lockPath: string;
  readonly resource: string;
  readonly minDelay: number;
  readonly maxDelay: number;
}

export function timeoutError(limits: WaitLimits): LockTimeoutError {
  return new LockTimeoutError(limits.lockPath, limits.resource, performance.now() - limits.started);
}

/** Throws the abort reason or a timeout error when the limits are spent. */
export function checkLimits(limits: WaitLimits): void {
  if (limits.signal?.aborted) throw limits.signal.reason;
  if (performance.now() >= limits.deadline) throw timeoutError(limits);
}

/**
 * Pauses between attempts on a lock another process holds. The pause grows
 * exponentially from minDelay to maxDelay with full jitter, so waiters that
 * lost together do not retry together; it never outlasts the deadline and
 * ends at once, rejecting with signal.reason, when the signal aborts.
 */
export class Backoff {
  private attempt = 0;

  constructor(private readonly limits: WaitLimits) {}

  pause(): Promise<void> {
    const { signal, deadline, minDelay, maxDelay } = this.limits;
    const ceiling = Math.min(maxDelay, minDelay * 2 ** Math.min(this.attempt++, 30));
    const delay = Math.min(minDelay + Math.random() * (ceiling - minDelay), Math.max(0, deadline - performance.now()));
    return new Promise<void>((resolve, reject) => {
      const onAbort = () => {
        clearTimeout(timer);
        reject(signal!.reason);
      };
      const timer = setTimeout(() => {
        signal?.removeEventListener('abort', onAbort);
        resolve();
      }, delay);
      signal?.addEventListener('abort', onAbort, { once: true });
    });
  }
}
