import { debuglog } from 'node:util';

const log = debuglog('native-file-lock');

/**
 * NODE_DEBUG=native-file-lock is on. Read once at load: every call site is
 * written `if (debugging) debug(...)`, so with it off the lock's paths build
 * no strings and call nothing.
 */
export const debugging: boolean = log.enabled;

/** One line on stderr, `NATIVE-FILE-LOCK <pid>: ...`; call only when `debugging`. */
export function debug(format: string, ...args: unknown[]): void {
  log(format, ...args);
}

/** Milliseconds since a performance.now() value, rounded for the log. */
export function since(start: number): number {
  return Math.round(performance.now() - start);
}
