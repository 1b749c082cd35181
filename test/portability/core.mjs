// The core behaviour of native-file-lock, checked on every platform and
// runtime of the portability matrix against the package as installed from
// its tarball (dist/ + prebuilds/), not against the sources. A small smoke
// for where vitest does not run (Wine, qemu, Bun, Deno): what the platform,
// the runtime or the prebuild can change. The vitest suite in test/ owns
// behaviour; what is the same everywhere (argument checks, the order of
// callers in one process) is tested there only.
//
//   node core.mjs            all tests (Node on Linux, Windows under Wine, arm64 under qemu)
//   node core.mjs --smoke    the smoke subset (Bun, Deno)
//   node core.mjs --grep X   tests whose name contains X
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { existsSync, linkSync, mkdirSync, readdirSync, readlinkSync, realpathSync, rmdirSync, unlinkSync, writeFileSync } from 'node:fs';
import { basename, dirname, join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { Worker } from 'node:worker_threads';

import { FileLockError, LockTimeoutError, lock, tryLock, withFileLock } from 'native-file-lock';

import {
  BUSY,
  PEER,
  holdInOtherProcess,
  TIMED_OUT,
  inTempDir,
  isWindows,
  printAddon,
  rejectsWith,
  run,
  spawnRuntime,
  test,
  tryInOtherProcess,
  until,
} from './harness.mjs';

/** A worker_thread running peer.mjs; resolves to the code it posts. */
function inWorker(...args) {
  return new Promise((resolve, reject) => {
    const worker = new Worker(PEER, { workerData: args });
    worker.once('message', (code) => {
      resolve(code);
      worker.terminate();
    });
    worker.once('error', reject);
  });
}

// --- the lock file ---------------------------------------------------------

test(
  'lock() locks <realpath of the resource>.lock and reports both paths',
  () =>
    inTempDir(async (dir) => {
      const resource = join(dir, 'data.json');
      writeFileSync(resource, '{}');
      const held = await lock(resource);
      assert.equal(held.path, `${realpathSync.native(resource)}.lock`);
      assert.equal(held.resource, resource);
      assert.equal(held.released, false);
      assert.ok(existsSync(held.path), 'the lock file exists while held');
      await held.release();
      assert.equal(held.released, true);
      await held.release();
      assert.ok(existsSync(held.path), 'the lock file is kept after release');
    }),
  { tags: ['smoke'] },
);

test('a resource that does not exist yet is locked beside it, in its real parent directory', () =>
  inTempDir(async (dir) => {
    const held = await lock(join(dir, 'later.txt'));
    assert.equal(held.path, join(realpathSync.native(dir), 'later.txt.lock'));
    assert.equal(existsSync(join(dir, 'later.txt')), false, 'the resource itself is not created');
    await held.release();
  }));

test('lockfilePath puts the lock file where it says', () =>
  inTempDir(async (dir) => {
    mkdirSync(join(dir, 'locks'));
    const lockfilePath = join(dir, 'locks', 'custom.lck');
    const held = await lock(join(dir, 'data'), { lockfilePath });
    assert.equal(held.path, join(realpathSync.native(join(dir, 'locks')), 'custom.lck'));
    assert.equal(await tryInOtherProcess(join(dir, 'other'), lockfilePath), BUSY, 'the same lockfilePath excludes');
    assert.equal(await tryInOtherProcess(join(dir, 'data')), 0, 'the default lock file of the resource is another lock');
    await held.release();
  }));

// --- exclusion -------------------------------------------------------------

test(
  'another process cannot take a held lock, and takes it once it is released',
  () =>
    inTempDir(async (dir) => {
      const resource = join(dir, 'shared');
      const held = await lock(resource);
      assert.equal(await tryInOtherProcess(resource), BUSY);
      await held.release();
      assert.equal(await tryInOtherProcess(resource), 0);
    }),
  { tags: ['smoke'] },
);

test(
  'lock() waits while another process holds the lock and gets it after the release',
  () =>
    inTempDir(async (dir) => {
      const resource = join(dir, 'shared');
      const other = await holdInOtherProcess(resource);
      let acquired = false;
      const waiting = lock(resource).then((held) => {
        acquired = true;
        return held;
      });
      assert.equal(await tryLock(resource), undefined, 'tryLock gives up at once while another process holds it');
      await sleep(300);
      assert.equal(acquired, false, 'lock() does not resolve while the other process holds the lock');
      await other.release();
      const held = await waiting;
      assert.equal(held.released, false);
      assert.equal(await tryInOtherProcess(resource), BUSY);
      await held.release();
    }),
  { tags: ['smoke'] },
);

test('a worker_thread cannot take a lock the main thread holds, and takes it after the release', () =>
  inTempDir(async (dir) => {
    const resource = join(dir, 'threads');
    const held = await lock(resource);
    assert.equal(await inWorker('try', resource), BUSY);
    await held.release();
    assert.equal(await inWorker('try', resource), 0);
  }));

test('a process killed while holding the lock leaves it free for others', () =>
  inTempDir(async (dir) => {
    const resource = join(dir, 'killed');
    const other = await holdInOtherProcess(resource);
    assert.equal(await tryLock(resource), undefined);
    await other.kill();
    const held = await lock(resource, { timeout: 10_000 });
    await held.release();
  }));

// --- timeout and abort -----------------------------------------------------

test(
  'a timeout rejects with a LockTimeoutError that names the lock file',
  () =>
    inTempDir(async (dir) => {
      const resource = join(dir, 'slow');
      const other = await holdInOtherProcess(resource);
      try {
        const error = await rejectsWith(lock(resource, { timeout: 300 }));
        assert.ok(error instanceof LockTimeoutError, `got ${error}`);
        assert.ok(error instanceof FileLockError);
        assert.equal(error.code, 'ELOCKTIMEOUT');
        assert.equal(error.path, `${realpathSync.native(dir)}${isWindows ? '\\' : '/'}slow.lock`);
        assert.ok(error.message.includes(error.path), error.message);
        assert.ok(error.waited >= 250 && error.waited < 10_000, `waited ${error.waited}`);
        const once = await rejectsWith(lock(resource, { timeout: 0 }));
        assert.equal(once.code, 'ELOCKTIMEOUT', 'timeout 0 makes one attempt');
        assert.equal(await spawnRuntime(PEER, ['wait', resource, '200']).exited, TIMED_OUT, 'the other side times out too');
      } finally {
        await other.release();
      }
      const held = await lock(resource, { timeout: 0 });
      await held.release();
    }),
  { tags: ['smoke'] },
);

test('an AbortSignal ends the wait with its reason and leaves nothing held', () =>
  inTempDir(async (dir) => {
    const resource = join(dir, 'abort');
    const other = await holdInOtherProcess(resource);
    const controller = new AbortController();
    const reason = new Error('stop waiting');
    const waiting = lock(resource, { signal: controller.signal });
    setTimeout(() => controller.abort(reason), 150);
    assert.equal(await rejectsWith(waiting), reason);
    const already = AbortSignal.abort(new Error('aborted before'));
    assert.equal(await rejectsWith(lock(resource, { signal: already })), already.reason);
    await other.release();
    assert.equal(await tryInOtherProcess(resource), 0, 'the aborted wait holds nothing');
  }));

// --- release in every case -------------------------------------------------

test(
  'withFileLock returns the callback value and releases the lock',
  () =>
    inTempDir(async (dir) => {
      const resource = join(dir, 'value');
      const value = await withFileLock(resource, async () => {
        assert.equal(await tryInOtherProcess(resource), BUSY, 'held while the callback runs');
        return { answer: 42 };
      });
      assert.deepEqual(value, { answer: 42 });
      assert.equal(await tryInOtherProcess(resource), 0);
    }),
  { tags: ['smoke'] },
);

test(
  'withFileLock rethrows the callback error unchanged and releases the lock',
  () =>
    inTempDir(async (dir) => {
      const resource = join(dir, 'throws');
      const syncError = new TypeError('thrown synchronously');
      assert.equal(
        await rejectsWith(
          withFileLock(resource, () => {
            throw syncError;
          }),
        ),
        syncError,
      );
      assert.equal(await tryInOtherProcess(resource), 0);
      const asyncError = new RangeError('rejected later');
      assert.equal(
        await rejectsWith(
          withFileLock(resource, async () => {
            await sleep(10);
            throw asyncError;
          }),
        ),
        asyncError,
      );
      assert.equal(await tryInOtherProcess(resource), 0);
    }),
  { tags: ['smoke'] },
);

test('a nested withFileLock on the same path runs at once (reentrant)', () =>
  inTempDir(async (dir) => {
    const resource = join(dir, 'nested');
    const trace = await withFileLock(resource, async () => {
      const inner = await withFileLock(resource, async () => {
        assert.equal(await tryInOtherProcess(resource), BUSY);
        return 'inner';
      });
      assert.equal(await tryInOtherProcess(resource), BUSY, 'the outer call still holds the lock after the inner one');
      return `outer+${inner}`;
    });
    assert.equal(trace, 'outer+inner');
    assert.equal(await tryInOtherProcess(resource), 0);
  }));

test('FileLock supports Symbol.asyncDispose and Symbol.dispose where the runtime has them', () =>
  inTempDir(async (dir) => {
    const resource = join(dir, 'dispose');
    const a = await lock(resource);
    assert.equal(typeof a[Symbol.asyncDispose ?? Symbol.for('Symbol.asyncDispose')], 'function');
    await a[Symbol.asyncDispose ?? Symbol.for('Symbol.asyncDispose')]();
    assert.equal(a.released, true);
    const b = await lock(resource);
    b[Symbol.dispose ?? Symbol.for('Symbol.dispose')]();
    assert.equal(b.released, true);
    assert.equal(await tryInOtherProcess(resource), 0);
  }));

// --- descriptors / handles -------------------------------------------------

/**
 * Whether this process still has a descriptor open on a file under dir. Linux
 * shows them in /proc/self/fd, macOS through lsof. Windows shows no handle
 * table to a script, but a file deleted while a handle is open stays "delete
 * pending" and keeps its directory from being removed, so there the files
 * are deleted and the directory removed when no handle is left.
 */
function lockFilesStillOpen(dir) {
  if (process.platform === 'linux') {
    for (const fd of readdirSync('/proc/self/fd')) {
      try {
        if (readlinkSync(`/proc/self/fd/${fd}`).startsWith(dir)) return true;
      } catch {
        // Closed between readdir and readlink.
      }
    }
    return false;
  }
  if (process.platform === 'darwin') {
    const out = spawnSync('lsof', ['-n', '-P', '-p', String(process.pid), '-Fn'], { encoding: 'utf8' }).stdout;
    return out.split('\n').some((line) => line.startsWith(`n${dir}`));
  }
  if (!existsSync(dir)) return false;
  for (const name of readdirSync(dir)) {
    try {
      unlinkSync(join(dir, name));
    } catch {
      // Delete pending already: a handle is still open.
    }
  }
  try {
    rmdirSync(dir);
    return false;
  } catch {
    return true;
  }
}

test('descriptors (handles) of released locks are closed by the idle sweep', () =>
  inTempDir(async (dir) => {
    const locks = join(realpathSync.native(dir), 'locks');
    mkdirSync(locks);
    const resources = Array.from({ length: 20 }, (_, i) => join(locks, `r${i}`));
    for (let round = 0; round < 3; round++) {
      const held = [];
      for (const r of resources) held.push(await lock(r));
      for (const h of held) await h.release();
      for (const r of resources) await withFileLock(r, () => undefined);
      for (const r of resources) await (await tryLock(r))?.release();
    }
    if (!isWindows) assert.ok(lockFilesStillOpen(locks), 'the descriptors are kept open between holders');
    // The sweep closes descriptors idle for about 1-2 s.
    await until(() => !lockFilesStillOpen(locks), 'the idle sweep to close every lock file descriptor', 8_000);
  }));

// --- errors ----------------------------------------------------------------

test('a lock path that is a directory fails with EISDIR naming the lock file', () =>
  inTempDir(async (dir) => {
    const resource = join(dir, 'res');
    mkdirSync(`${resource}.lock`);
    const error = await rejectsWith(lock(resource));
    assert.ok(error instanceof FileLockError, `got ${error}`);
    assert.equal(error.code, 'EISDIR');
    assert.equal(error.path, join(realpathSync.native(dir), 'res.lock'));
    assert.ok(error.message.includes(error.path), error.message);
  }));

test('a missing directory fails with ENOENT naming the path', () =>
  inTempDir(async (dir) => {
    const resource = join(dir, 'missing', 'res');
    const error = await rejectsWith(lock(resource));
    assert.ok(error instanceof FileLockError, `got ${error}`);
    assert.equal(error.code, 'ENOENT');
    assert.ok(error.message.includes(basename(dirname(resource))), error.message);
  }));

// --- platform semantics ------------------------------------------------------

// Two lock paths that name one file (a hard link) get two registry entries,
// so the process opens two handles on the file: LockFileEx and flock must
// refuse the second one although both belong to the same process. (Wine does
// not enforce LockFileEx ranges on ReadFile/WriteFile, so the mandatory side
// of Windows locks is not checked here.)
test('two handles on one lock file exclude each other within one process', () =>
  inTempDir(async (dir) => {
    const first = join(dir, 'one.lock');
    const second = join(dir, 'two.lock');
    writeFileSync(first, '');
    linkSync(first, second);
    const held = await lock(join(dir, 'a'), { lockfilePath: first });
    assert.equal(await tryLock(join(dir, 'b'), { lockfilePath: second }), undefined);
    const error = await rejectsWith(lock(join(dir, 'b'), { lockfilePath: second, timeout: 200 }));
    assert.equal(error.code, 'ELOCKTIMEOUT');
    await held.release();
    const other = await lock(join(dir, 'b'), { lockfilePath: second, timeout: 5_000 });
    assert.equal(await tryLock(join(dir, 'a'), { lockfilePath: first }), undefined, 'and the other way round');
    await other.release();
  }));

printAddon();
await run();
