/** Options shared by withFileLock, lock and tryLock. */
export interface LockOptions {
  /**
   * Milliseconds to wait for the lock before rejecting with a
   * LockTimeoutError (code 'ELOCKTIMEOUT'). Default: wait forever.
   * 0 makes one attempt. Ignored by tryLock, which never waits.
   */
  timeout?: number;
  /** Rejects the wait with signal.reason when aborted; nothing stays held. */
  signal?: AbortSignal;
  /**
   * The lock file to use instead of `<canonical path>.lock`. Its directory is
   * resolved through symlinks; the file itself must not be a symlink.
   */
  lockfilePath?: string;
}

export interface ValidOptions {
  timeout: number;
  signal: AbortSignal | undefined;
  lockfilePath: string | undefined;
}

const KNOWN = new Set(['timeout', 'signal', 'lockfilePath']);
const DEFAULTS: ValidOptions = { timeout: Infinity, signal: undefined, lockfilePath: undefined };

export function validatePath(value: unknown, name: string): string {
  if (typeof value !== 'string') throw new TypeError(`${name} must be a string, got ${describe(value)}`);
  if (value.length === 0) throw new TypeError(`${name} must not be empty`);
  if (value.includes('\0')) throw new TypeError(`${name} must not contain NUL bytes: ${JSON.stringify(value)}`);
  return value;
}

export function validateOptions(options: unknown): ValidOptions {
  if (options === undefined) return DEFAULTS;
  if (options === null || typeof options !== 'object') throw new TypeError(`options must be an object, got ${describe(options)}`);
  for (const key of Object.keys(options)) {
    if (!KNOWN.has(key)) throw new TypeError(`Unknown option '${key}'; known options: ${[...KNOWN].join(', ')}`);
  }
  const o = options as LockOptions;
  const result: ValidOptions = { ...DEFAULTS };
  if (o.timeout !== undefined) result.timeout = duration(o.timeout, 'options.timeout');
  if (o.signal !== undefined) {
    if (!isAbortSignal(o.signal)) throw new TypeError(`options.signal must be an AbortSignal, got ${describe(o.signal)}`);
    result.signal = o.signal;
  }
  if (o.lockfilePath !== undefined) result.lockfilePath = validatePath(o.lockfilePath, 'options.lockfilePath');
  return result;
}

function duration(value: unknown, name: string): number {
  if (typeof value !== 'number') throw new TypeError(`${name} must be a number of milliseconds, got ${describe(value)}`);
  if (Number.isNaN(value) || value < 0) throw new RangeError(`${name} must be a non-negative number or Infinity, got ${value}`);
  return value;
}

function isAbortSignal(value: unknown): value is AbortSignal {
  if (typeof AbortSignal === 'function' && value instanceof AbortSignal) return true;
  const v = value as AbortSignal;
  return typeof v === 'object' && v !== null && typeof v.aborted === 'boolean' && typeof v.addEventListener === 'function';
}

function describe(value: unknown): string {
  if (value === null) return 'null';
  if (typeof value === 'string') return `string ${JSON.stringify(value)}`;
  if (typeof value === 'object' || typeof value === 'function') return typeof value;
  return `${typeof value} ${String(value)}`;
}
