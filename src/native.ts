import binding from './binding.cjs';

/**
 * A path encoded once for the addon: the identity (dev, ino) of a file in
 * bytes 0-15, written by recordFd / recordPath, then the NUL-terminated
 * UTF-8 path. Calls that take a ref convert no strings.
 */
export type FileRef = Uint8Array & { readonly __fileRef: true };

export function fileRef(path: string): FileRef {
  const ref = new Uint8Array(16 + Buffer.byteLength(path) + 1);
  Buffer.from(ref.buffer).write(path, 16);
  return ref as FileRef;
}

/**
 * The addon's surface; see native/lock.h and native/binding.cc. Results are
 * ACQUIRED / BUSY / REPLACED / 0 / 1, or a negative libuv error number.
 */
export interface Native {
  /** One non-blocking attempt on fd. */
  tryLock(fd: number, exclusive: boolean): number;
  /** tryLock, then a check that ref's path still names fd's file; REPLACED (lock given back) if not. */
  tryLockAt(fd: number, exclusive: boolean, ref: FileRef): number;
  unlock(fd: number): number;
  /** Records the identity of fd's file in ref. */
  recordFd(fd: number, ref: FileRef): number;
  /** Records the identity of what ref's path names now (symlinks followed). */
  recordPath(ref: FileRef): number;
  /** 1 if ref's path still names the recorded file, 0 if another file or nothing. */
  samePath(ref: FileRef): number;
  readonly lockSyscall: string;
  readonly unlockSyscall: string;
}

export const native = binding as Native;

export const ACQUIRED = 0;
export const BUSY = 1;
export const REPLACED = 2;
