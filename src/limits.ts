import { LockTimeoutError } from './errors.js';
import { holderFor } from './proc-locks.js';

/**
 * The caller's limits on one acquisition (options.timeout, options.signal),
 * shared by every wait it goes through: the wait in the line (src/line.ts)
 * and the wait for the file lock (src/wait.ts).
 */
export interface WaitLimits {
  readonly signal: AbortSignal | undefined;
  /** performance.now() value after which waiting fails; Infinity for none. */
  readonly deadline: number;
  readonly started: number;
  readonly lockPath: string;
  readonly resource: string;
}

/** The LockTimeoutError for limits whose deadline has passed, naming the holder when it can be known. */
function timeoutError(limits: WaitLimits): LockTimeoutError {
  const waited = performance.now() - limits.started;
  return new LockTimeoutError(limits.lockPath, limits.resource, waited, holderFor(limits.lockPath)?.holders);
}

/** Throws the abort reason or a timeout error when the limits are spent. */
export function checkLimits(limits: WaitLimits): void {
  if (limits.signal?.aborted) throw limits.signal.reason;
  if (performance.now() >= limits.deadline) throw timeoutError(limits);
}

/**
 * Calls onExpire once when the deadline passes or the signal aborts, with
 * the error to reject with; returns the function that stops watching.
 */
export function watchLimits(limits: WaitLimits, onExpire: (reason: unknown) => void): () => void {
  const { signal, deadline } = limits;
  const onAbort = () => {
    stop();
    onExpire(signal!.reason);
  };
  let timer: ReturnType<typeof setTimeout> | undefined;
  // setTimeout fires at once for a delay past MAX_TIMER_MS: a longer timeout
  // is waited out in steps.
  const arm = () => {
    const left = deadline - performance.now();
    timer = setTimeout(
      () => {
        if (performance.now() < deadline) return arm();
        stop();
        onExpire(timeoutError(limits));
      },
      Math.min(Math.max(0, left), MAX_TIMER_MS),
    );
  };
  if (deadline !== Infinity) arm();
  signal?.addEventListener('abort', onAbort, { once: true });
  function stop(): void {
    if (timer !== undefined) clearTimeout(timer);
    signal?.removeEventListener('abort', onAbort);
  }
  return stop;
}

/** The longest delay setTimeout takes (2^31 - 1 ms, about 24.8 days). */
const MAX_TIMER_MS = 0x7fffffff;
