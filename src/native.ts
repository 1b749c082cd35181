import binding from './binding.cjs';
import { systemError, type FileLockError } from './errors.js';

/** The process-wide slot for one lock file (see native/registry.h). */
export type Slot = object & { readonly __slot: true };

/**
 * A path encoded once for the addon: the identity (dev, ino) of a file in
 * bytes 0-15, written by recordPath, then the NUL-terminated UTF-8 path.
 */
export type FileRef = Uint8Array & { readonly __fileRef: true };

export function fileRef(path: string): FileRef {
  const ref = new Uint8Array(16 + Buffer.byteLength(path) + 1);
  Buffer.from(ref.buffer).write(path, 16);
  return ref as FileRef;
}

/**
 * A failed system call: a negative libuv error number and the call's name,
 * reported together (the slot may already serve another thread).
 */
export interface Failure {
  readonly errno: number;
  readonly syscall: string;
}

// Their values as native/lock.h defines them, as types only: comparing a
// result with ACQUIRED or BUSY then narrows it to a Failure.
type Acquired = 0;
type Busy = 1;
type Stale = 2;

/** ACQUIRED, BUSY, or what failed. */
export type Result = Acquired | Busy | Failure;

/** The addon's surface (native/binding.cc). */
export interface Native {
  slot(lockPath: string): Slot;
  /**
   * Takes the slot's claim and locks the file if both are free now; never waits.
   * With willWait (the caller waits when busy) it answers BUSY now and then
   * while another process is queued, once this process's turn is over.
   * Shared: joins this process's shared holders, or locks the file shared;
   * BUSY while an exclusive waiter of this process, or a queued process,
   * waits (writer preference).
   */
  acquire(slot: Slot, willWait: boolean, shared: boolean): Result;
  /**
   * acquire, after the check that samePath(probe) makes, and with missing,
   * that nothing exists at its path yet: STALE, holding nothing, if either
   * fails (the cached canonical path no longer holds). One call into the
   * addon instead of two.
   */
  acquire(slot: Slot, willWait: boolean, shared: boolean, probe: FileRef, missing: FileRef | undefined): Result | Stale;
  /**
   * Ends one hold, exclusive or shared; the last unlocks and gives up the
   * claim, closing the descriptor unless the lock is hot: ACQUIRED or the
   * unlock's failure. With removeLockFile the last holder deletes the lock
   * file, if its path still names the locked file, while holding it
   * exclusively (a shared holder only if no other holder is left anywhere),
   * and closes the descriptor.
   */
  release(slot: Slot, removeLockFile: boolean): Acquired | Failure;
  /**
   * Waits for the claim and the file lock on a wait thread of the addon's pool;
   * done(result) runs on this thread when it ends (never BUSY). Returns the
   * wait's id, or a failure ('pthread_create', 'CreateThread') when no
   * thread could be had for it.
   */
  startWait(slot: Slot, shared: boolean, done: (result: Acquired | Failure) => void): number | Failure;
  /**
   * Ends a wait at once, without waiting for its thread: done never runs,
   * and whatever the thread still gets it gives back.
   */
  cancelWait(id: number): void;
  /**
   * Waits like startWait, but blocks this thread until the wait ends: ACQUIRED,
   * BUSY once timeoutMs (Infinity: never) has passed with nothing held, or a
   * failure ('wait' ECANCELED when Node stops this thread meanwhile). Uses no
   * CPU while blocked.
   */
  waitSync(slot: Slot, shared: boolean, timeoutMs: number): Result;
  /** Closes the kept descriptors the addon finds idle (native/registry.h: Registry::close_idle); returns how many stay kept. */
  closeIdle(): number;
  /** Records the identity of what ref's path names now (symlinks followed). */
  recordPath(ref: FileRef): number;
  /** 1 if ref's path still names the recorded file, else 0. */
  samePath(ref: FileRef): number;
  /** 1 if the directory tells names apart by case, 0 if not, or a negative error. */
  caseSensitive(dir: string): number;
  /** The results above, defined once in native/lock.h. */
  readonly ACQUIRED: Acquired;
  readonly BUSY: Busy;
  readonly STALE: Stale;
}

export const native = binding as Native;

// Read once at load: the hot path compares against plain constants.
export const ACQUIRED: Acquired = native.ACQUIRED;
export const BUSY: Busy = native.BUSY;
export const STALE: Stale = native.STALE;

/** The coded error for a failure on lockPath. */
export function failureError(failure: Failure, lockPath: string, resource?: string): FileLockError {
  return systemError(failure.errno, failure.syscall, lockPath, resource);
}
