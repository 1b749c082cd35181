// The Node contenders, each used the way its documentation shows, behind one
// shape: run(path, fn) holds the lock while fn runs; acquire(path) returns a
// release function. `path` is the resource; each library derives its own
// lock file from it (ours and proper-lockfile add ".lock"; for
// fs-native-extensions, which locks a descriptor, we open `${path}.lock`).
import { closeSync, constants, openSync } from 'node:fs';
import { createRequire } from 'node:module';

const require = createRequire(import.meta.url);

const LOCK_FLAGS = constants.O_RDWR | constants.O_CREAT;

async function loadOurs() {
  try {
    return await import('native-file-lock');
  } catch (error) {
    throw new Error(`cannot load native-file-lock from dist/ (run \`npm run compile\` first): ${error.message}`);
  }
}

export async function loadContender(name, options = {}) {
  switch (name) {
    case 'ours':
    case 'base': {
      // base: another build of this library (bench --baseline=DIR), through its CommonJS entry.
      const { withFileLock, lock } = name === 'base' ? require(process.env.NFL_BENCH_BASELINE) : await loadOurs();
      // options.shared: readers, { shared: true } on every call.
      if (options.shared) return { run: (path, fn) => withFileLock(path, fn, { shared: true }) };
      return {
        run: (path, fn) => withFileLock(path, fn),
        acquire: async (path) => {
          const held = await lock(path);
          return () => held.release();
        },
      };
    }
    case 'sync': {
      // The synchronous API: runSync holds the lock while fn runs, blocking.
      const { withFileLockSync, lockSync } = await loadOurs();
      return {
        runSync: (path, fn) => withFileLockSync(path, fn),
        run: async (path, fn) => withFileLockSync(path, fn),
        acquire: async (path) => {
          const held = lockSync(path);
          return () => held.release();
        },
      };
    }
    case 'fsne': {
      // Open with the sync call (cheaper than fs/promises.open, the README's
      // choice): the comparison should favour the peer, not us.
      const { waitForLock, unlock } = require('fs-native-extensions');
      return {
        run: async (path, fn) => {
          const fd = openSync(`${path}.lock`, LOCK_FLAGS, 0o666);
          try {
            await waitForLock(fd);
            try {
              return await fn();
            } finally {
              unlock(fd);
            }
          } finally {
            closeSync(fd);
          }
        },
        acquire: async (path) => {
          const fd = openSync(`${path}.lock`, LOCK_FLAGS, 0o666);
          try {
            await waitForLock(fd);
          } catch (error) {
            closeSync(fd);
            throw error;
          }
          return () => {
            unlock(fd);
            closeSync(fd);
          };
        },
      };
    }
    case 'plf': {
      const lockfile = require('proper-lockfile');
      // Default options when uncontended; a waiter needs retries, which the
      // library does not do by default (it fails with ELOCKED at once).
      const opts = options.contended ? { retries: { retries: 100000, factor: 1.2, minTimeout: 1, maxTimeout: 20 } } : {};
      return {
        run: async (path, fn) => {
          const release = await lockfile.lock(path, opts);
          try {
            return await fn();
          } finally {
            await release();
          }
        },
        acquire: async (path) => lockfile.lock(path, opts),
      };
    }
    case 'none':
      // No lock at all: the ceiling a workload reaches on this machine.
      return { run: async (path, fn) => fn() };
    default:
      throw new Error(`unknown contender '${name}'`);
  }
}
