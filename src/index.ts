export { lock, tryLock, withFileLock, type FileLock } from './lock.js';
export { FileLockError, LockTimeoutError, type FileLockErrorCode } from './errors.js';
export type { LockOptions, LockPath } from './options.js';
