export { lock, tryLock, withFileLock, type FileLock } from './lock.js';
export { lockAll, tryLockAll, withFileLocks, type FileLocks, type LockAllOptions, type LockEntry } from './multi.js';
export { lockSync, tryLockSync, withFileLockSync, type SyncFileLock, type SyncLockOptions } from './lock-sync.js';
export { FileLockError, LockTimeoutError, type FileLockErrorCode } from './errors.js';
export type { LockOptions, LockPath } from './options.js';
export { inspect, isLocked, type LockState, type LockHolder } from './holder.js';
export type { WaitInfo } from './visible-wait.js';
export {
  createLockManager,
  type FileLockManager,
  type LockManagerCallback,
  type LockManagerLock,
  type LockManagerLockInfo,
  type LockManagerMode,
  type LockManagerQueryResult,
  type LockManagerRequestOptions,
} from './lock-manager.js';
