import { inspect } from 'node:util';

import { FileLockError } from './errors.js';
import type { Line } from './line.js';
import { ACQUIRED, failureError, native } from './native.js';
import { noteReleased } from './watch-held.js';
// For the {@link} references in the docs below.
import type { lock, tryLock } from './lock.js';

/**
 * A held lock, exclusive or shared, as {@link lock} and {@link tryLock} return it.
 * Release it once, with `release()` or `await using`; further calls do
 * nothing. Its internals are private: `console.log` and `JSON.stringify`
 * show `{ path, resource, shared, released }`.
 *
 * While it is held, the process has one open descriptor of the lock file,
 * locked with `flock(LOCK_EX)` (`LOCK_SH` when shared) on Linux and macOS
 * or `LockFileEx` on Windows; shared holders of one process share that
 * descriptor and its lock. A lock taken inside a `withFileLock` callback for the same path
 * is reentrant: it shares the outer hold, and the file stays locked until
 * every held lock sharing it has been released.
 *
 * **Platform-specific behavior** (may change):
 * - Linux, macOS: the `flock` lock belongs to the open file description,
 *   which is close-on-exec: a spawned child does not inherit it. The kernel
 *   drops it when the process ends, however it ends.
 * - Windows: bytes 0 to 2^64−1 of the lock file are locked, a mandatory
 *   lock: other handles cannot read or write the (empty) lock file. The
 *   handle is not inheritable.
 * - NFS, SMB/CIFS (Linux): `flock` is emulated with a whole-file record lock
 *   that the server arbitrates, owned by the open file description; `fcntl`
 *   and `lockf` locks on the lock file conflict with it.
 *
 * @example
 * ```ts
 * const held = await lock('data.db');
 * try {
 *   await write();
 * } finally {
 *   await held.release();
 * }
 * ```
 */
export interface FileLock {
  /**
   * The lock file: `<canonical path>.lock` or `options.lockfilePath`,
   * canonical (in a case-insensitive folder, the spelling this process used first).
   */
  readonly path: string;
  /** The path the lock protects, as the caller gave it (a URL or Buffer as its path string). */
  readonly resource: string;
  /**
   * True for a shared lock, false for an exclusive one: the mode of the lock
   * held, so a shared call inside an exclusive `withFileLock` callback,
   * which shares that exclusive hold, reports false.
   */
  readonly shared: boolean;
  /** True once release() (or a dispose) has run; read-only. */
  readonly released: boolean;
  /**
   * Unlocks: `flock(fd, LOCK_UN)` on Linux and macOS, `UnlockFileEx` on
   * Windows, then hands the lock to the next caller of this thread. The
   * lock file stays in place (deleting it would let two holders in); its
   * descriptor is closed now unless the lock is hot (used for the third
   * time within 100 ms), then one to two seconds after its last use.
   * Calling it again does nothing. A reentrant held lock unlocks the file
   * only with the last hold that shares it.
   *
   * @returns A promise that resolves once the lock is released.
   * @throws {FileLockError} When the unlock call fails (`syscall` `'flock'` or
   *   `'UnlockFileEx'`); the descriptor is closed, which drops the lock anyway.
   * @example
   * ```ts
   * await held.release();
   * ```
   */
  release(): Promise<void>;
  /** The same as `release()`, for `await using held = await lock(path)`. */
  [Symbol.asyncDispose](): Promise<void>;
  /** `release()` done synchronously, for `using`: throws instead of rejecting. */
  [Symbol.dispose](): void;
}

// The module's ways into a held lock's private fields; assigned in HeldLock's
// static block so that a held lock itself shows nothing but its public members.
let heldIn: (store: HeldLock | undefined, key: string) => HeldLock | undefined;
let share: (outer: HeldLock, resource: string, store: HeldLock | undefined, removeLockFile: boolean) => HeldLock;
let isShared: (held: HeldLock) => boolean;
let releaseSync: (held: HeldLock) => void;

/** The FileLock that lock(), tryLock() and withFileLock create; one per hold. */
export class HeldLock implements FileLock {
  #released = false;
  readonly #line: Line;
  readonly #resource: string;
  readonly #shared: boolean;
  /**
   * The held lock that took the file lock. A reentrant held lock shares it: the
   * file stays locked until the root and every reentrant held lock are
   * released, so nested work that outlives the outer callback never runs unlocked.
   */
  readonly #root: HeldLock;
  /** On the root: held locks not yet released, itself included. */
  #holds = 1;
  /** On the root: delete the lock file at the last release (asked for by any held lock sharing it). */
  #removeLockFile: boolean;
  /** The hold of the withFileLock callback this held lock was taken in. */
  readonly #outer: HeldLock | undefined;

  constructor(line: Line, resource: string, outer: HeldLock | undefined, shared = false, removeLockFile = false, root?: HeldLock) {
    this.#line = line;
    this.#resource = resource;
    this.#shared = root === undefined ? shared : root.#shared;
    this.#outer = outer;
    this.#root = root ?? this;
    this.#removeLockFile = removeLockFile;
    if (root !== undefined) {
      root.#holds++;
      if (removeLockFile) root.#removeLockFile = true;
    }
  }

  get path(): string {
    return this.#line.lockPath;
  }

  get resource(): string {
    return this.#resource;
  }

  get shared(): boolean {
    return this.#shared;
  }

  get released(): boolean {
    return this.#released;
  }

  release(): Promise<void> {
    return settled(() => this.#releaseSync());
  }

  [Symbol.asyncDispose](): Promise<void> {
    return this.release();
  }

  [Symbol.dispose](): void {
    this.#releaseSync();
  }

  toJSON(): { path: string; resource: string; shared: boolean; released: boolean } {
    return { path: this.path, resource: this.#resource, shared: this.#shared, released: this.#released };
  }

  [inspect.custom](_depth: number, options: object): string {
    return `FileLock ${inspect(this.toJSON(), options)}`;
  }

  #releaseSync(): void {
    if (this.#released) return;
    this.#released = true;
    noteReleased(this);
    if (--this.#root.#holds > 0) return;
    const line = this.#line;
    // On an unlock error the addon closes the descriptor, which drops the
    // lock anyway: the line moves on either way.
    const result = native.release(line.slot, this.#root.#removeLockFile);
    line.leave();
    if (result !== ACQUIRED) throw failureError(result, line.lockPath, this.#resource);
  }

  static {
    heldIn = (store, key) => {
      // A store set by another copy of this package holds held locks this class cannot read.
      for (let h = store; h !== undefined && #outer in h; h = h.#outer) {
        if (h.#line.key === key && !h.#released) return h;
      }
      return undefined;
    };
    share = (outer, resource, store, removeLockFile) => new HeldLock(outer.#line, resource, store, false, removeLockFile, outer.#root);
    isShared = (held) => held.#shared;
    releaseSync = (held) => held.#releaseSync();
  }
}

/**
 * A reentrant held lock when a withFileLock callback around this call (store
 * and the holds it was taken in) holds the lock file of key (see LockPath.key),
 * else undefined. An exclusive call inside a shared hold is refused: flock
 * cannot turn a shared lock into an exclusive one atomically (another process
 * could take the lock in between, so the caller's view would not hold), and
 * waiting for the other shared holders would wait for this hold too.
 */
export function reentrantHeld(store: HeldLock | undefined, key: string, resource: string, shared = false, removeLockFile = false): HeldLock | undefined {
  const outer = heldIn(store, key);
  if (outer === undefined) return undefined;
  if (!shared && isShared(outer)) throw upgradeError(outer.path, resource);
  return share(outer, resource, store, removeLockFile);
}

function upgradeError(lockPath: string, resource: string): FileLockError {
  return new FileLockError(
    `EDEADLK: cannot take an exclusive lock on '${lockPath}' inside a shared hold of it: flock cannot upgrade ` +
      'a shared lock atomically, and waiting for the other shared holders would wait for this one too; ' +
      'release the shared lock and retake it exclusively (then check again what was read under it)',
    { code: 'EDEADLK', path: lockPath, resource },
  );
}

/** run's outcome as a promise: resolved, or rejected with what it threw (a release is synchronous underneath). */
export function settled(run: () => void): Promise<void> {
  try {
    run();
    return Promise.resolve();
  } catch (error) {
    return Promise.reject(error);
  }
}

export function releaseHeld(held: HeldLock): void {
  releaseSync(held);
}

/** Release when an error is already on its way to the caller. */
export function releaseHeldQuietly(held: HeldLock): void {
  try {
    releaseSync(held);
  } catch {
    // The caller's error matters more; the lock is dropped either way.
  }
}
