// One soak process: runs two loops of random lock operations on one resource
// until told to pause, journaling every critical section so that the driver
// (run.mjs) can prove afterwards that no two holders overlapped and no
// committed increment was lost, even for processes it SIGKILLed mid-way.
//
// Journal lines (appended with O_APPEND, one write(2) each, so a kill leaves
// at most one partial final line, which the driver ignores):
//   E <seq> <enteredAtMs> <kind> <markerSeen>   entered the critical section
//   S <seq> <enteredAtMs> <kind> <markerSeen>   entered a shared section (reads only)
//   I <seq> <value>                             about to write value to the counter
//   C <seq> <value>                             the counter now holds value
//   X <seq> <where> <markerSeen>                someone else wrote the marker meanwhile
//   T <seq> | A <seq> | B <seq>                 timed out | aborted | tryLock found it busy
//   ERR <json>                                  anything unexpected
import { closeSync, openSync, readdirSync, readlinkSync, readSync, writeSync } from 'node:fs';
import { join } from 'node:path';
import { lock, lockAll, tryLock, withFileLock, withFileLocks, LockTimeoutError } from 'native-file-lock';

const [dir, instance] = process.argv.slice(2);
if (!dir || !instance) throw new Error('usage: worker.mjs <dir> <instance>');

const MARKER_BYTES = 64;
const resource = join(dir, 'data');
// Taken together with resource, in either order, by the several-lock operations.
const second = join(dir, 'second');
const markerFd = openSync(join(dir, 'marker'), 'r+');
const counterFd = openSync(join(dir, 'counter'), 'r+');
const journalFd = openSync(join(dir, `journal-${instance}.log`), 'a');

let seq = 0;
let pausing = false;
const sleep = (ms) => new Promise((resolve) => setTimeout(resolve, ms));
const rand = (n) => Math.floor(Math.random() * n);

function journal(line) {
  writeSync(journalFd, line + '\n');
}

// Fixed-size records written with one pwrite at offset 0 and no truncation:
// a kill can never leave the file empty or half old, half new.
function readRecord(fd, size) {
  const buf = Buffer.alloc(size);
  const n = readSync(fd, buf, 0, size, 0);
  return buf.subarray(0, n).toString('latin1').trim();
}

function writeRecord(fd, text, size) {
  writeSync(fd, Buffer.from(text.padEnd(size, ' '), 'latin1'), 0, size, 0);
}

const readMarker = () => readRecord(markerFd, MARKER_BYTES);
const writeMarker = (text) => writeRecord(markerFd, text, MARKER_BYTES);

async function criticalSection(kind, asyncBody) {
  const s = ++seq;
  const own = `${instance}:${s}`;
  const seen = readMarker();
  journal(`E ${s} ${Date.now()} ${kind} ${seen}`);
  writeMarker(own);
  // Stay inside long enough for other processes and loops to pile up behind us.
  if (asyncBody) await sleep(rand(3));
  const mid = readMarker();
  if (mid !== own) journal(`X ${s} mid ${mid}`);
  const value = Number(readRecord(counterFd, 32)) + 1;
  journal(`I ${s} ${value}`);
  writeRecord(counterFd, String(value), 32);
  journal(`C ${s} ${value}`);
  const exit = readMarker();
  if (exit !== own) journal(`X ${s} exit ${exit}`);
  writeMarker('free');
}

// A shared holder only reads: no writer may enter while it holds the lock,
// so the marker must not change under it.
async function sharedSection(kind) {
  const s = ++seq;
  const seen = readMarker();
  journal(`S ${s} ${Date.now()} ${kind} ${seen}`);
  await sleep(rand(3));
  const exit = readMarker();
  if (exit !== seen) journal(`X ${s} shared ${exit}`);
}

function unexpected(error) {
  journal(`ERR ${JSON.stringify({ name: error?.name, code: error?.code, message: String(error?.message ?? error) })}`);
}

async function oneOperation() {
  const pick = rand(100);
  if (pick < 20) {
    await withFileLock(resource, () => criticalSection('with', true));
  } else if (pick < 28) {
    await withFileLock(resource, () => criticalSection('with-sync', false));
  } else if (pick < 34) {
    // Reentrant: the inner call must run at once inside the outer one.
    await withFileLock(resource, () => withFileLock(resource, () => criticalSection('nested', true)));
  } else if (pick < 38) {
    // A shared call inside an exclusive hold shares that exclusive hold: it may write.
    await withFileLock(resource, () => withFileLock(resource, () => criticalSection('shared-in-exclusive', true), { shared: true }));
  } else if (pick < 48) {
    await withFileLock(resource, () => sharedSection('shared'), { shared: true });
  } else if (pick < 54) {
    let held;
    try {
      held = await lock(resource, { shared: true, timeout: rand(40) });
    } catch (error) {
      if (error instanceof LockTimeoutError && error.code === 'ELOCKTIMEOUT') return journal(`T ${seq}`);
      throw error;
    }
    try {
      await sharedSection('shared-timeout');
    } finally {
      await held.release();
    }
  } else if (pick < 68) {
    const held = await tryLock(resource);
    if (held === undefined) {
      journal(`B ${seq}`);
      await sleep(1 + rand(4));
      return;
    }
    try {
      await criticalSection('try', true);
    } finally {
      await held.release();
    }
  } else if (pick < 82) {
    let held;
    try {
      held = await lock(resource, { timeout: rand(40) });
    } catch (error) {
      if (error instanceof LockTimeoutError && error.code === 'ELOCKTIMEOUT') return journal(`T ${seq}`);
      throw error;
    }
    try {
      await criticalSection('timeout', true);
    } finally {
      await held.release();
    }
  } else if (pick < 86) {
    // Both locks, named in either order: the canonical order keeps processes from deadlocking.
    const paths = rand(2) === 0 ? [resource, second] : [second, resource];
    await withFileLocks(paths, () => criticalSection('several', true));
  } else if (pick < 89) {
    let held;
    try {
      held = await lockAll(rand(2) === 0 ? [resource, second] : [second, resource], { timeout: rand(40) });
    } catch (error) {
      if (error instanceof LockTimeoutError && error.code === 'ELOCKTIMEOUT') return journal(`T ${seq}`);
      throw error;
    }
    try {
      await criticalSection('several-timeout', true);
    } finally {
      await held.release();
    }
  } else if (pick < 92) {
    // The lock file is deleted at release, while held; the next holder locks a new one.
    await withFileLock(resource, () => criticalSection('remove', true), { removeLockFile: true });
  } else {
    const controller = new AbortController();
    const reason = new Error('soak abort');
    const timer = setTimeout(() => controller.abort(reason), rand(40));
    let held;
    try {
      held = await lock(resource, { signal: controller.signal });
    } catch (error) {
      if (error === reason) return journal(`A ${seq}`);
      throw error;
    } finally {
      clearTimeout(timer);
    }
    try {
      await criticalSection('abort', true);
    } finally {
      await held.release();
    }
  }
}

async function loop() {
  while (!pausing) {
    try {
      await oneOperation();
    } catch (error) {
      unexpected(error);
    }
    if (rand(4) === 0) await sleep(rand(3));
  }
}

function openLockFileDescriptors() {
  const out = [];
  for (const fd of readdirSync('/proc/self/fd')) {
    try {
      // A lock file another worker removed (removeLockFile) reads '… (deleted)'.
      if (/\.lock( \(deleted\))?$/.test(readlinkSync(`/proc/self/fd/${fd}`))) out.push(fd);
    } catch {
      // The readdir descriptor itself is gone by now.
    }
  }
  return out;
}

let loops;
process.on('message', async (message) => {
  if (message === 'go') {
    loops = Promise.all([loop(), loop()]);
  } else if (message === 'pause') {
    pausing = true;
    await loops;
    // The library closes an idle lock file's descriptor after 1-2 s; wait
    // for that so the driver can compare descriptors with the start.
    const deadline = Date.now() + 6000;
    while (openLockFileDescriptors().length > 0 && Date.now() < deadline) await sleep(50);
    process.send({ type: 'paused', seq, lockFds: openLockFileDescriptors().length });
  } else if (message === 'stop') {
    closeSync(markerFd);
    closeSync(counterFd);
    closeSync(journalFd);
    process.disconnect();
  }
});

// The driver's own test: a worker that dies before it is ready.
if (process.env.NFL_SOAK_TEST_WORKER_EXIT) process.exit(Number(process.env.NFL_SOAK_TEST_WORKER_EXIT));
process.send({ type: 'ready', pid: process.pid });
