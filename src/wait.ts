import { checkLimits, watchLimits, type WaitLimits } from './limits.js';
import { ACQUIRED, failureError, native, type Slot } from './native.js';

/**
 * Waits for the slot's claim and the file lock, held by another thread or
 * process. The addon blocks one of its own wait threads in flock(2)
 * (LockFileEx polling on Windows; native/wait_pool.h: start_wait), so the
 * kernel wakes this waiter the moment the holder unlocks: no polling
 * interval to miss the lock by, and no libuv pool thread taken from fs I/O.
 * A timeout or abort (src/limits.ts) rejects at once through cancelWait;
 * what the wait still gets is given back.
 */
export function waitForFile(slot: Slot, limits: WaitLimits, shared: boolean): Promise<void> {
  try {
    checkLimits(limits);
  } catch (error) {
    return Promise.reject(error);
  }
  return new Promise<void>((resolve, reject) => {
    const id = native.startWait(slot, shared, (result) => {
      stop();
      if (result === ACQUIRED) resolve();
      else reject(failureError(result, limits.lockPath, limits.resource));
    });
    if (typeof id !== 'number') {
      reject(failureError(id, limits.lockPath, limits.resource));
      return;
    }
    // After cancelWait done never runs and nothing is held for this caller.
    const stop = watchLimits(limits, (reason) => {
      native.cancelWait(id);
      reject(reason);
    });
  });
}
