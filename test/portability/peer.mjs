// The second process of the portability suites: a separate runtime instance
// that uses the installed package like any other program would. It answers
// with its exit code (and files), never through a pipe (see harness.mjs).
//
//   try  <resource> [lockfilePath]            0 acquired and released, 3 busy
//   hold <resource> <readyFile> <releaseFile>  locks (waiting as long as needed),
//                                              creates readyFile, holds until
//                                              releaseFile exists, exits 0
//   wait <resource> <timeoutMs>               0 acquired, 4 LockTimeoutError
// Any other outcome prints the error and exits 1. Started as a worker_thread
// (workerData = [mode, resource, ...args]) it posts the code instead.
import { existsSync, writeFileSync } from 'node:fs';
import { setTimeout as sleep } from 'node:timers/promises';
import { isMainThread, parentPort, workerData } from 'node:worker_threads';

import { LockTimeoutError, lock, tryLock } from 'native-file-lock';

const [mode, resource, ...args] = isMainThread ? process.argv.slice(2) : workerData;

async function main() {
  switch (mode) {
    case 'try': {
      const held = await tryLock(resource, args[0] ? { lockfilePath: args[0] } : undefined);
      if (held === undefined) return 3;
      await held.release();
      return 0;
    }
    case 'hold': {
      const [readyFile, releaseFile] = args;
      const held = await lock(resource);
      writeFileSync(readyFile, String(process.pid));
      while (!existsSync(releaseFile)) await sleep(20);
      await held.release();
      return 0;
    }
    case 'wait': {
      try {
        const held = await lock(resource, { timeout: Number(args[0]) });
        await held.release();
        return 0;
      } catch (error) {
        if (error instanceof LockTimeoutError) return 4;
        throw error;
      }
    }
    default:
      throw new Error(`unknown mode ${mode}`);
  }
}

main().then(
  (code) => {
    if (isMainThread) process.exitCode = code;
    else parentPort.postMessage(code);
  },
  (error) => {
    console.error(`peer ${mode} ${resource}:`, error);
    if (isMainThread) process.exitCode = 1;
    else parentPort.postMessage(1);
  },
);
