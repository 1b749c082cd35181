import { inspect } from 'node:util';

import { releaseHeld, settled, type FileLock, type HeldLock } from './held-lock.js';
// For the {@link} references in the docs below.
import type { lockAll, tryLockAll } from './multi.js';

/**
 * Locks held together, as {@link lockAll} and {@link tryLockAll} return
 * them. `release()` (or `await using`) releases every one, the last taken
 * first; further calls do nothing.
 *
 * @example
 * ```ts
 * await using held = await lockAll(['from.json', 'to.json']);
 * console.log(held.locks.map((l) => l.path));
 * ```
 */
export interface FileLocks {
  /** Each held lock, in the order taken: sorted by canonical lock path, duplicates merged. */
  readonly locks: readonly FileLock[];
  /** True once release() (or a dispose) has run; read-only. */
  readonly released: boolean;
  /**
   * Releases every lock not released yet (each as {@link FileLock.release}
   * does), the last taken first; all are released even when one fails.
   *
   * @throws {FileLockError} The first unlock that failed, after all are released.
   */
  release(): Promise<void>;
  /** The same as `release()`, for `await using held = await lockAll(paths)`. */
  [Symbol.asyncDispose](): Promise<void>;
  /** `release()` done synchronously, for `using`: throws instead of rejecting. */
  [Symbol.dispose](): void;
}

/** The FileLocks that lockAll() and tryLockAll() create. */
export class HeldLocks implements FileLocks {
  readonly #locks: readonly HeldLock[];
  #released = false;

  constructor(locks: HeldLock[]) {
    this.#locks = Object.freeze(locks);
  }

  get locks(): readonly FileLock[] {
    return this.#locks;
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

  toJSON(): { locks: readonly FileLock[]; released: boolean } {
    return { locks: this.#locks, released: this.#released };
  }

  [inspect.custom](_depth: number, options: object): string {
    return `FileLocks ${inspect(this.toJSON(), options)}`;
  }

  #releaseSync(): void {
    if (this.#released) return;
    this.#released = true;
    releaseEach(this.#locks);
  }
}

/** Releases every lock, the last taken first; throws the first error once all are released. */
export function releaseEach(locks: readonly HeldLock[]): void {
  let failed = false;
  let first: unknown;
  for (let i = locks.length - 1; i >= 0; i--) {
    try {
      releaseHeld(locks[i]!);
    } catch (error) {
      if (!failed) first = error;
      failed = true;
    }
  }
  if (failed) throw first;
}
