import binding from './binding.cjs';

/** A process-wide registry slot for one lock file (see native/registry.h). */
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
 * The addon's surface (native/binding.cc). Results are ACQUIRED, BUSY, or a
 * negative libuv error number from the call lastSyscall names.
 */
export interface Native {
  slot(lockPath: string): Slot;
  /**
   * Claims the slot and locks the file if both are free now; never waits.
   * With mayYield it answers BUSY now and then while another process is
   * queued, after a run of acquisitions without waiting.
   */
  acquire(slot: Slot, mayYield: boolean): number;
  /** Unlocks and frees the slot. */
  release(slot: Slot): number;
  lastSyscall(slot: Slot): string;
  /**
   * Waits for the slot and the file lock on a dedicated thread; done(result)
   * runs on this thread when it ends. Returns the wait's id.
   */
  startWait(slot: Slot, done: (result: number) => void): number;
  /** Ends a wait synchronously; afterwards it holds nothing and never reports. */
  cancelWait(id: number): void;
  /** Closes descriptors not used since the previous call; returns how many stay open. */
  closeIdle(): number;
  /** Records the identity of what ref's path names now (symlinks followed). */
  recordPath(ref: FileRef): number;
  /** 1 if ref's path still names the recorded file, else 0. */
  samePath(ref: FileRef): number;
  /** 'flock', 'fcntl' (test-only mode) or 'LockFileEx'. */
  readonly lockKind: string;
  readonly unlockSyscall: string;
}

export const native = binding as Native;

export const ACQUIRED = 0;
export const BUSY = 1;
