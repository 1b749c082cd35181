import { createHash } from 'node:crypto';
import { mkdirSync, readdirSync, statSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { threadId } from 'node:worker_threads';

import { argTypeError, argValueError, FileLockError } from './errors.js';
import type { FileLock } from './held-lock.js';
import { inspect } from './holder.js';
import { lock, tryLock } from './lock.js';
import { validatePath, type LockPath } from './options.js';
import type { LockState } from './proc-locks.js';

// The Web Locks API (LockManager) over lock files in one directory, so that
// the same names exclude each other across processes, not only threads.
// Names prefixed "LockManager" keep clear of lib.dom's global Lock,
// LockOptions and LockManagerSnapshot, and of this package's LockOptions.

/** lib.dom's `LockMode`. */
export type LockManagerMode = 'exclusive' | 'shared';

/** lib.dom's `LockOptions`, for {@link FileLockManager.request}. */
export interface LockManagerRequestOptions {
  /** `'exclusive'` (default): one holder; `'shared'`: any number of shared holders, no exclusive one. */
  mode?: LockManagerMode;
  /** Don't wait: when the lock is not free right now, the callback runs at once with `null`. Default `false`. */
  ifAvailable?: boolean;
  /** Not supported: a kernel lock held by another process cannot be taken from it. `true` rejects with `ENOTSUP`. */
  steal?: boolean;
  /** Aborts the wait: the request rejects with `signal.reason`. Ignored once the lock is granted. */
  signal?: AbortSignal;
}

/** lib.dom's `Lock`: what the callback of a granted request receives. */
export interface LockManagerLock {
  /** The name requested. */
  readonly name: string;
  /** The mode granted, as requested. */
  readonly mode: LockManagerMode;
}

/** lib.dom's `LockGrantedCallback`. */
export type LockManagerCallback<T> = (lock: LockManagerLock | null) => T;

/** lib.dom's `LockInfo`: one entry of {@link LockManagerQueryResult}. */
export interface LockManagerLockInfo {
  /** The lock's name (always given here; optional in lib.dom's shape). */
  name?: string;
  /** `'exclusive'` or `'shared'`; absent for another process's wait, whose mode `/proc/locks` does not say. */
  mode?: LockManagerMode;
  /**
   * Who holds or waits: `node-<pid>-<threadId>` for this thread (the form of
   * Node's own LockManager), `node-<pid>` for another process or thread;
   * absent when not known.
   */
  clientId?: string;
}

/** lib.dom's `LockManagerSnapshot`: what {@link FileLockManager.query} resolves to. */
export interface LockManagerQueryResult {
  /** The locks held: this thread's, and other holders of the lock files in `dir`. */
  held?: LockManagerLockInfo[];
  /** The requests waiting: this thread's, and (Linux only) other processes blocked on a lock file in `dir`. */
  pending?: LockManagerLockInfo[];
}

/** A `LockManager` (lib.dom, `navigator.locks`) whose locks are lock files in {@link FileLockManager.dir}. */
export interface FileLockManager {
  /** The directory holding the lock files, absolute. */
  readonly dir: string;
  /**
   * Waits for the lock `name` (the lock file `<dir>/<encoded name>.lock`),
   * calls `callback` with `{ name, mode }` (or `null` with `ifAvailable` when
   * busy), releases the lock when the callback's promise settles, and
   * resolves with its value or rejects with its error.
   */
  request<T>(name: string, callback: LockManagerCallback<T>): Promise<Awaited<T>>;
  request<T>(name: string, options: LockManagerRequestOptions, callback: LockManagerCallback<T>): Promise<Awaited<T>>;
  /** A snapshot of the held and pending locks: this thread's exactly, other processes' as `inspect` finds them. */
  query(): Promise<LockManagerQueryResult>;
}

/**
 * A lock manager with the shape and semantics of the Web Locks API
 * (`navigator.locks`, Node's `worker_threads.locks`) whose locks also exclude
 * other processes: each name is the lock file `<dir>/<encoded name>.lock`,
 * held with `flock` (`LockFileEx` on Windows) through {@link lock} and
 * {@link tryLock}. `dir` is created if missing.
 *
 * `request(name, options?, callback)` waits for the lock (`mode` exclusive or
 * shared), calls `callback` with `{ name, mode }`, releases the lock when the
 * callback's promise settles, and resolves or rejects as the callback did.
 * With `ifAvailable`, a lock not free right now gives `callback(null)` at once.
 * `signal` rejects a waiting request with `signal.reason`. Differences from
 * the Web Locks API: `steal: true` rejects with a {@link FileLockError} of code
 * `'ENOTSUP'` (a kernel lock cannot be taken from its holder); an unknown
 * option is a `TypeError`; a request for a name this thread holds waits (or
 * fails with `EDEADLK` when nothing left could release it) rather than
 * hanging.
 *
 * `query()` lists this thread's requests exactly and the other holders of
 * the lock files in `dir` through {@link inspect}: on Linux from
 * `/proc/locks` (with pids, and other processes' waits as `{ name }` in
 * `pending`); on macOS and Windows by one try released at once (no pid, no
 * waits). Hashed names are listed only for this thread.
 *
 * Names are encoded into file names that stay distinct on case-insensitive
 * file systems and are safe on Windows: `a-z`, `0-9`, `_` and `-` stay, every
 * other UTF-8 byte becomes `%XX`; names over 200 encoded characters become a
 * readable prefix, `~` and a hash.
 *
 * @param dir - The directory for the lock files: a string, a `file:` URL or a UTF-8 Buffer.
 * @throws {TypeError} A bad `dir`.
 * @throws {FileLockError} `mkdir` failed (`syscall` `'mkdir'`, `path` the directory): `ENOTDIR` when a file
 *   stands in the directory's place or one of its parents', `EACCES`, ...
 * @example
 * ```ts
 * const locks = createLockManager('/var/lock/my-app');
 * await locks.request('migrations', async () => migrate());
 * ```
 */
export function createLockManager(dir: LockPath): FileLockManager {
  const root = resolve(validatePath(dir, 'dir'));
  try {
    mkdirSync(root, { recursive: true });
  } catch (error) {
    throw dirError(error as NodeJS.ErrnoException, root);
  }
  return new DirLockManager(root);
}

function isNonDirectory(path: string): boolean {
  try {
    return !statSync(path).isDirectory();
  } catch {
    return false;
  }
}

/** mkdir's failure as an error naming the directory; a file in the directory's place is ENOTDIR, as for its parents. */
function dirError(error: NodeJS.ErrnoException, dir: string): FileLockError {
  const code = isNonDirectory(dir) ? 'ENOTDIR' : (error.code ?? 'EIO');
  const why = code === 'ENOTDIR' ? 'a file stands where the directory or one of its parents should be' : error.message;
  return new FileLockError(`${code}: cannot use '${dir}' as the lock manager's directory: ${why}`, {
    code,
    path: dir,
    syscall: 'mkdir',
    ...(error.errno === undefined ? {} : { errno: error.errno }),
    cause: error,
  });
}

// Requests of this process, per directory: what query() can tell for sure.
interface Entry {
  name: string;
  mode: LockManagerMode;
}
const local = new Map<string, { held: Set<Entry>; pending: Set<Entry> }>();

function localOf(dir: string): { held: Set<Entry>; pending: Set<Entry> } {
  let state = local.get(dir);
  if (state === undefined) local.set(dir, (state = { held: new Set(), pending: new Set() }));
  return state;
}

class DirLockManager implements FileLockManager {
  constructor(readonly dir: string) {}

  request<T>(name: string, ...rest: [LockManagerCallback<T>] | [LockManagerRequestOptions, LockManagerCallback<T>]): Promise<Awaited<T>> {
    try {
      const [optionsArg, callback] = rest.length >= 2 ? rest : [undefined, rest[0]];
      if (typeof callback !== 'function') throw argTypeError(`callback must be a function, got ${callback === null ? 'null' : typeof callback}`);
      return this.run(validateName(name), validateRequest(optionsArg), callback as LockManagerCallback<T>);
    } catch (error) {
      return Promise.reject(error);
    }
  }

  private async run<T>(name: string, options: ValidRequest, callback: LockManagerCallback<T>): Promise<Awaited<T>> {
    const resource = join(this.dir, fileNameFor(name));
    if (options.steal) {
      throw new FileLockError(`options.steal is not supported: a lock held by another process cannot be taken from it (lock file '${resource}.lock')`, {
        code: 'ENOTSUP',
        path: `${resource}.lock`,
      });
    }
    if (options.signal?.aborted) throw options.signal.reason;
    const shared = options.mode === 'shared';
    const entry: Entry = { name, mode: options.mode };
    const state = localOf(this.dir);
    let held: FileLock | undefined;
    if (options.ifAvailable) {
      held = await tryLock(resource, { shared });
      if (held === undefined) return (await callback(null)) as Awaited<T>;
    } else {
      state.pending.add(entry);
      try {
        held = await lock(resource, { shared, signal: options.signal });
      } finally {
        state.pending.delete(entry);
      }
    }
    state.held.add(entry);
    let result: Awaited<T>;
    try {
      result = await callback(Object.freeze({ name, mode: options.mode }));
    } catch (error) {
      state.held.delete(entry);
      await held.release().catch(() => {});
      throw error;
    }
    state.held.delete(entry);
    await held.release();
    return result;
  }

  async query(): Promise<LockManagerQueryResult> {
    const state = localOf(this.dir);
    // The form Node's own LockManager uses.
    const clientId = `node-${process.pid}-${threadId}`;
    const held: LockManagerLockInfo[] = [...state.held].map(({ name, mode }) => ({ name, mode, clientId }));
    const pending: LockManagerLockInfo[] = [...state.pending].map(({ name, mode }) => ({ name, mode, clientId }));
    const mine = (entries: Set<Entry>, name: string) => [...entries].some((e) => e.name === name);
    for (const [name, resource] of namesIn(this.dir)) {
      let found: LockState;
      try {
        found = inspect(resource);
      } catch {
        continue; // Removed or unreadable since the directory was read.
      }
      const mode: LockManagerMode = found.shared ? 'shared' : 'exclusive';
      for (const { pid } of found.locked ? (found.holders ?? []) : []) {
        // This thread's own holds are listed above, with their modes.
        if (pid === process.pid && mine(state.held, name)) continue;
        held.push(pid === undefined ? { name, mode } : { name, mode, clientId: `node-${pid}` });
      }
      // Linux counts the processes blocked on the lock file, without saying
      // who or how: this thread's own wait is one of them when it has begun.
      const others = (found.waiting ?? 0) - (mine(state.pending, name) ? 1 : 0);
      for (let i = 0; i < others; i++) pending.push({ name });
    }
    return { held, pending };
  }
}

// --- validation ----------------------------------------------------------------

interface ValidRequest {
  mode: LockManagerMode;
  ifAvailable: boolean;
  steal: boolean;
  signal: AbortSignal | undefined;
}

const KNOWN = new Set(['mode', 'ifAvailable', 'steal', 'signal']);

function validateName(name: unknown): string {
  // WebIDL DOMString: anything but a symbol becomes its string.
  if (typeof name === 'symbol') throw argTypeError('name must be a string, got symbol');
  const text = String(name);
  // The Web Locks API reserves names starting with '-'.
  if (text.startsWith('-')) throw new DOMException(`Lock names starting with '-' are reserved: ${JSON.stringify(text)}`, 'NotSupportedError');
  return text;
}

function validateRequest(options: unknown): ValidRequest {
  const result: ValidRequest = { mode: 'exclusive', ifAvailable: false, steal: false, signal: undefined };
  if (options === undefined || options === null) return result;
  if (typeof options !== 'object') throw argTypeError(`options must be an object, got ${typeof options}`);
  for (const key of Object.keys(options)) {
    if (!KNOWN.has(key)) throw argValueError(`Unknown option '${key}'; known options: ${[...KNOWN].join(', ')}`);
  }
  const o = options as LockManagerRequestOptions;
  if (o.mode !== undefined) {
    if (o.mode !== 'exclusive' && o.mode !== 'shared') throw argValueError(`options.mode must be 'exclusive' or 'shared', got ${JSON.stringify(o.mode)}`);
    result.mode = o.mode;
  }
  // WebIDL booleans: any value, by truthiness.
  result.ifAvailable = !!o.ifAvailable;
  result.steal = !!o.steal;
  if (o.signal !== undefined) {
    if (!(o.signal instanceof AbortSignal)) throw argTypeError('options.signal must be an AbortSignal');
    result.signal = o.signal;
  }
  // The combinations the Web Locks API refuses, in its order.
  if (result.steal && result.ifAvailable) throw new DOMException("options.steal and options.ifAvailable can't be used together", 'NotSupportedError');
  if (result.steal && result.mode !== 'exclusive') throw new DOMException("options.steal requires mode 'exclusive'", 'NotSupportedError');
  if (result.signal && (result.steal || result.ifAvailable)) {
    throw new DOMException("options.signal can't be used with options.steal or options.ifAvailable", 'NotSupportedError');
  }
  return result;
}

// --- names and file names ------------------------------------------------------

const LONGEST = 200;

/**
 * The file name (without `.lock`) for a lock name. Only `a-z0-9_-` and `%XX`
 * with upper-case hex appear, so two names never fold to one file name on a
 * case-insensitive file system; Windows device names get their first letter
 * escaped; the empty name is `~`; long or ill-formed (lone surrogate) names
 * are a readable prefix, `~` and a hash of the name's UTF-16 code units.
 */
export function fileNameFor(name: string): string {
  if (name === '') return '~';
  let encoded = '';
  for (const byte of Buffer.from(name, 'utf8')) {
    const c = String.fromCharCode(byte);
    encoded += /[a-z0-9_-]/.test(c) ? c : `%${byte.toString(16).toUpperCase().padStart(2, '0')}`;
  }
  if (encoded.length <= LONGEST && isWellFormed(name)) {
    return /^(con|prn|aux|nul|com[0-9]|lpt[0-9])$/.test(encoded) ? `%${encoded.charCodeAt(0).toString(16).toUpperCase()}${encoded.slice(1)}` : encoded;
  }
  const digest = createHash('sha256').update(Buffer.from(name, 'utf16le')).digest('hex').slice(0, 32);
  // Cut the prefix before an escape it would split.
  let prefix = encoded.slice(0, 48);
  const cut = prefix.lastIndexOf('%');
  if (cut >= prefix.length - 2) prefix = prefix.slice(0, cut);
  return `${prefix}~${digest}`;
}

/** The lock name of a file name fileNameFor made, or undefined (hashed names, other files). */
export function nameForFile(fileName: string): string | undefined {
  if (fileName === '~') return '';
  if (!/^(?:[a-z0-9_-]|%[0-9A-F]{2})+$/.test(fileName)) return undefined;
  let name: string;
  try {
    name = decodeURIComponent(fileName);
  } catch {
    return undefined;
  }
  return fileNameFor(name) === fileName ? name : undefined;
}

function isWellFormed(text: string): boolean {
  return !/[\uD800-\uDBFF](?![\uDC00-\uDFFF])|(?<![\uD800-\uDBFF])[\uDC00-\uDFFF]/.test(text);
}

/** Lock names of the lock files in dir that fileNameFor made, with their resource paths. */
function namesIn(dir: string): Map<string, string> {
  const names = new Map<string, string>();
  let files: string[];
  try {
    files = readdirSync(dir);
  } catch {
    return names; // Removed since: no lock files.
  }
  for (const file of files) {
    if (!file.endsWith('.lock')) continue;
    const name = nameForFile(file.slice(0, -'.lock'.length));
    if (name !== undefined) names.set(name, join(dir, file.slice(0, -'.lock'.length)));
  }
  return names;
}
