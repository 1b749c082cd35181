import { FileLockError } from './errors.js';
import type { WaitLimits } from './limits.js';

// A caller waiting in a line waits for a holder in this thread (or behind the
// first caller of the line, whose native wait keeps the process alive). Such
// a wait has nothing of its own that keeps the event loop running. When the
// loop runs dry ('beforeExit': no I/O, referenced timer, child process,
// worker or addon work left), nothing in this thread can run any more to
// release the holder, and Node would end the process with the work silently
// not done: the waits are rejected with EDEADLK instead. Where code outside
// the loop could still run (a signal listener, another 'beforeExit'
// listener), the process is kept alive instead, as pending I/O would.

/** What the watch needs of a line (src/line.ts). */
interface WaitedLine {
  failAll(error: (limits: WaitLimits) => unknown): void;
}

/** Lines with callers waiting in them. */
const waiting = new Set<WaitedLine>();
let listening = false;
let keepAlive: ReturnType<typeof setInterval> | undefined;

/** Called when a caller starts waiting in line. */
export function watchForDeadlock(line: WaitedLine): void {
  waiting.add(line);
  if (listening) return;
  listening = true;
  process.on('beforeExit', onLoopDry);
}

/** Called when the last caller waiting in line stops waiting. */
export function unwatchForDeadlock(line: WaitedLine): void {
  waiting.delete(line);
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
