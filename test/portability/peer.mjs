// The second process of the portability suites: a separate runtime instance
// that uses the installed package like any other program would. It answers
// with its exit code (and files), never through a pipe (see harness.mjs).
//
//   try  <resource> [lockfilePath]            0 acquired and released, 3 busy
//   try-with <resource> <options JSON>        tryLock with those options: as try
//   hold <resource> <readyFile> <releaseFile> [options JSON]
//                                              locks (waiting as long as needed),
//                                              creates readyFile, holds until
//                                              releaseFile exists, exits 0
//   hold-for <resource> <readyFile> <ms> <releasingFile>
//                                              locks, creates readyFile, holds for
//                                              ms, creates releasingFile, releases
//   wait <resource> <timeoutMs> [options JSON] 0 acquired, 4 LockTimeoutError
//   crowd <resource> <rounds> <resultFile> [options JSON]
//                                              rounds of withFileLock on resource,
//                                              each counting overlaps (see below)
//   multi <rounds> <resultFile> <path>...      rounds of withFileLocks over the
//                                              paths in a random order, each
//                                              counting overlaps on every path
// Any other outcome prints the error and exits 1. Started as a worker_thread
// (workerData = [mode, resource, ...args]) it posts the code instead.
import { closeSync, existsSync, openSync, readFileSync, unlinkSync, writeFileSync } from 'node:fs';
import { setTimeout as sleep } from 'node:timers/promises';
import { isMainThread, parentPort, workerData } from 'node:worker_threads';

import { LockTimeoutError, lock, tryLock, withFileLock, withFileLocks } from 'native-file-lock';

const [mode, resource, ...args] = isMainThread ? process.argv.slice(2) : workerData;

const options = (json) => (json ? JSON.parse(json) : undefined);

/**
 * A critical section on path: creates <path>.inside exclusively (it exists:
 * another holder is inside too, an overlap), adds one to the count in
 * <path>.count after a pause (a lost update shows in the final count), and
 * removes the marker. Resolves to the number of overlaps seen (0 or 1).
 */
async function criticalSection(path) {
  let overlaps = 0;
  let marker;
  try {
    marker = openSync(`${path}.inside`, 'wx');
    closeSync(marker);
  } catch (error) {
    if (error.code !== 'EEXIST') throw error;
    overlaps = 1;
  }
  const countFile = `${path}.count`;
  const count = existsSync(countFile) ? Number(readFileSync(countFile, 'utf8')) : 0;
  await sleep(2);
  writeFileSync(countFile, String(count + 1));
  if (marker !== undefined) unlinkSync(`${path}.inside`);
  return overlaps;
}

function shuffled(items) {
  const out = [...items];
  for (let i = out.length - 1; i > 0; i--) {
    const j = Math.floor(Math.random() * (i + 1));
    [out[i], out[j]] = [out[j], out[i]];
  }
  return out;
}

async function main() {
  switch (mode) {
    case 'try': {
      const held = await tryLock(resource, args[0] ? { lockfilePath: args[0] } : undefined);
      if (held === undefined) return 3;
      await held.release();
      return 0;
    }
    case 'try-with': {
      const held = await tryLock(resource, options(args[0]));
      if (held === undefined) return 3;
      await held.release();
      return 0;
    }
    case 'hold': {
      const [readyFile, releaseFile, json] = args;
      const held = await lock(resource, options(json));
      writeFileSync(readyFile, String(process.pid));
      while (!existsSync(releaseFile)) await sleep(20);
      await held.release();
      return 0;
    }
    case 'hold-for': {
      const [readyFile, ms, releasingFile] = args;
      const held = await lock(resource);
      writeFileSync(readyFile, String(process.pid));
      await sleep(Number(ms));
      writeFileSync(releasingFile, '');
      await held.release();
      return 0;
    }
    case 'crowd': {
      const [rounds, resultFile, json] = args;
      let overlaps = 0;
      for (let i = 0; i < Number(rounds); i++) overlaps += await withFileLock(resource, () => criticalSection(resource), options(json));
      writeFileSync(resultFile, JSON.stringify({ rounds: Number(rounds), overlaps }));
      return 0;
    }
    case 'multi': {
      // resource is the round count here; args[0] the result file, the rest the paths.
      const [resultFile, ...paths] = args;
      let overlaps = 0;
      let timeouts = 0;
      for (let i = 0; i < Number(resource); i++) {
        try {
          await withFileLocks(
            shuffled(paths),
            async () => {
              for (const path of paths) overlaps += await criticalSection(path);
            },
            { timeout: 30_000 },
          );
        } catch (error) {
          if (!(error instanceof LockTimeoutError)) throw error;
          timeouts++;
        }
      }
      writeFileSync(resultFile, JSON.stringify({ rounds: Number(resource), overlaps, timeouts }));
      return 0;
    }
    case 'wait': {
      try {
        const held = await lock(resource, { ...options(args[1]), timeout: Number(args[0]) });
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
