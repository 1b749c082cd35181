// Shared locks, the synchronous calls, removeLockFile, several locks at once
// and the command line, checked across real processes against the package as
// installed from its tarball. The matrix runs it with Windows Node under Wine
// and with Node on Linux, so that a failure shows whether it is
// Windows-specific. The vitest suite in test/ owns the details; this file
// checks what LockFileEx, DeleteFileW and Windows processes could change.
//
//   node features.mjs            all tests
//   node features.mjs --grep X   tests whose name contains X
import assert from 'node:assert/strict';
import { spawn, spawnSync } from 'node:child_process';
import { closeSync, existsSync, openSync, readFileSync, readdirSync, writeFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { dirname, join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';

import {
  FileLockError,
  LockTimeoutError,
  lock,
  lockSync,
  tryLock,
  tryLockSync,
  withFileLock,
  withFileLockSync,
  withFileLocks,
} from 'native-file-lock';

import { BUSY, PEER, holdInOtherProcess, inTempDir, isWindows, printAddon, rejectsWith, run, spawnRuntime, test, tryInOtherProcess, until, waitForFile } from './harness.mjs';

const SHARED = JSON.stringify({ shared: true });

/** Exit code of a second process making one tryLock with options on resource. */
const tryWithInOtherProcess = (resource, options) => spawnRuntime(PEER, ['try-with', resource, JSON.stringify(options)]).exited;

/** The exit code of a peer started and waited for synchronously (this thread may hold a lock meanwhile). */
function tryInOtherProcessSync(resource, options = {}) {
  const out = spawnSync(process.execPath, [PEER, 'try-with', resource, JSON.stringify(options)], { stdio: ['ignore', 'inherit', 'inherit'] });
  if (out.error) throw out.error;
  return out.status;
}

/** Runs a `crowd` or `multi` peer per argument list at once; resolves to their result files, parsed. */
async function crowd(dir, argLists) {
  const results = argLists.map((_, i) => join(dir, `result-${i}.json`));
  const codes = await Promise.all(argLists.map(([mode, first, ...rest], i) => spawnRuntime(PEER, mode === 'crowd' ? [mode, first, rest[0], results[i], ...rest.slice(1)] : [mode, first, results[i], ...rest]).exited));
  assert.deepEqual(codes, argLists.map(() => 0), 'every process ran its rounds and exited cleanly');
  return results.map((file) => JSON.parse(readFileSync(file, 'utf8')));
}

const sum = (results, key) => results.reduce((total, r) => total + r[key], 0);

// --- shared locks (LockFileEx without LOCKFILE_EXCLUSIVE_LOCK) -------------------

test('two processes hold one lock shared at once; an exclusive waiter in a third gets it only after both release', () =>
  inTempDir(async (dir) => {
    const resource = join(dir, 'readers');
    const mine = await lock(resource, { shared: true });
    assert.equal(mine.shared, true);
    // The peer's shared lock is granted while this process holds it shared.
    const other = await holdInOtherProcess(resource, { shared: true });
    assert.equal(await tryWithInOtherProcess(resource, { shared: true }), 0, 'a third shared holder gets in beside both');
    assert.equal(await tryInOtherProcess(resource), BUSY, 'an exclusive tryLock is refused');
    assert.equal(await tryLock(resource), undefined, 'and in this process too');

    let exitedAt;
    const writer = spawnRuntime(PEER, ['wait', resource, '60000']);
    const writerDone = writer.exited.then((code) => {
      exitedAt = Date.now();
      return code;
    });
    await sleep(1_000);
    assert.equal(exitedAt, undefined, 'the exclusive waiter waits while two shared holders hold');
    await other.release();
    await sleep(500);
    assert.equal(exitedAt, undefined, 'and while one of them still holds');
    const releasedAt = Date.now();
    await mine.release();
    assert.equal(await writerDone, 0, 'it gets the lock once the last shared holder released');
    assert.ok(exitedAt >= releasedAt, 'not before');
  }));

test('a process waiting for an exclusive lock keeps new shared holders of other processes out until it has had its turn', () =>
  inTempDir(async (dir) => {
    const resource = join(dir, 'queued-writer');
    const mine = await lock(resource, { shared: true });
    let exitedAt;
    const writer = spawnRuntime(PEER, ['wait', resource, '60000']);
    const writerDone = writer.exited.then((code) => {
      exitedAt = Date.now();
      return code;
    });
    // macOS has no queue ticket: there shared callers of other processes slip in.
    const expected = process.platform === 'darwin' ? 0 : BUSY;
    await until(async () => (await tryWithInOtherProcess(resource, { shared: true })) === expected, 'a shared tryLock in a third process to see the queued writer', 30_000);
    assert.equal(exitedAt, undefined, 'the writer still waits for the shared holder');
    const releasedAt = Date.now();
    await mine.release();
    assert.equal(await writerDone, 0, 'the writer gets the lock once the shared holder released');
    assert.ok(exitedAt >= releasedAt, 'not before');
    assert.equal(await tryWithInOtherProcess(resource, { shared: true }), 0, 'after its turn shared callers get in again');
  }));

test('an exclusive holder in another process keeps shared callers out until it releases', () =>
  inTempDir(async (dir) => {
    const resource = join(dir, 'writer');
    const other = await holdInOtherProcess(resource);
    assert.equal(await tryLock(resource, { shared: true }), undefined);
    const error = await rejectsWith(lock(resource, { shared: true, timeout: 300 }));
    assert.ok(error instanceof LockTimeoutError, `got ${error}`);
    const waiting = lock(resource, { shared: true, timeout: 30_000 });
    await sleep(200);
    await other.release();
    const held = await waiting;
    assert.equal(held.shared, true);
    assert.equal(await tryWithInOtherProcess(resource, { shared: true }), 0);
    await held.release();
  }));

test('in one process: shared inside exclusive shares the hold, exclusive inside shared fails with EDEADLK', () =>
  inTempDir(async (dir) => {
    const resource = join(dir, 'modes');
    const inner = await withFileLock(resource, () => withFileLock(resource, () => 'ran', { shared: true }));
    assert.equal(inner, 'ran');
    await withFileLock(
      resource,
      async () => {
        assert.equal(await tryWithInOtherProcess(resource, { shared: true }), 0, 'the outer hold is shared');
        const error = await rejectsWith(withFileLock(resource, () => 'never'));
        assert.ok(error instanceof FileLockError, `got ${error}`);
        assert.equal(error.code, 'EDEADLK');
        assert.ok(error.path.endsWith('modes.lock') && error.message.includes(error.path), error.message);
        const syncError = (() => {
          try {
            withFileLockSync(resource, () => 'never');
          } catch (e) {
            return e;
          }
        })();
        assert.equal(syncError?.code, 'EDEADLK', 'the synchronous call too');
      },
      { shared: true },
    );
    assert.equal(await tryInOtherProcess(resource), 0, 'nothing is left held');
  }));

// --- the synchronous calls ---------------------------------------------------------

test('withFileLockSync, lockSync and tryLockSync hold the lock against another process and release it', () =>
  inTempDir(async (dir) => {
    const resource = join(dir, 'sync');
    const value = withFileLockSync(resource, () => {
      assert.equal(tryInOtherProcessSync(resource), BUSY, 'held while fn runs');
      return 42;
    });
    assert.equal(value, 42);
    assert.equal(await tryInOtherProcess(resource), 0, 'released when fn returns');

    const held = lockSync(resource);
    assert.equal(await tryInOtherProcess(resource), BUSY);
    assert.equal(tryLockSync(resource), undefined, 'tryLockSync answers busy for a lock this thread holds outside a callback');
    assert.equal(held.release(), undefined);
    const again = tryLockSync(resource);
    assert.ok(again, 'tryLockSync takes a free lock');
    again.release();

    const shared = lockSync(resource, { shared: true });
    assert.equal(shared.shared, true);
    assert.equal(await tryWithInOtherProcess(resource, { shared: true }), 0, 'a shared lockSync lets other shared holders in');
    assert.equal(await tryInOtherProcess(resource), BUSY, 'and keeps exclusive ones out');
    shared.release();
  }));

test('a lockSync waiter blocks until another process releases, then holds the lock; a short timeout throws LockTimeoutError', () =>
  inTempDir(async (dir) => {
    const resource = join(dir, 'sync-wait');
    const ready = join(dir, 'ready');
    const releasing = join(dir, 'releasing');
    const peer = spawnRuntime(PEER, ['hold-for', resource, ready, '2000', releasing]);
    await waitForFile(ready);
    const timedOut = (() => {
      try {
        lockSync(resource, { timeout: 200 });
      } catch (error) {
        return error;
      }
    })();
    assert.ok(timedOut instanceof LockTimeoutError, `got ${timedOut}`);
    assert.equal(timedOut.code, 'ELOCKTIMEOUT');
    const started = Date.now();
    const held = lockSync(resource, { timeout: 30_000 });
    const waited = Date.now() - started;
    assert.ok(existsSync(releasing), `granted only after the other process began to release (waited ${waited} ms)`);
    assert.equal(await tryInOtherProcess(resource), BUSY, 'held now');
    held.release();
    assert.equal(await peer.exited, 0);
    console.log(`# lockSync waited ${waited} ms for the other process's release`);
  }));

// --- removeLockFile ------------------------------------------------------------------

test('removeLockFile: the lock file is gone after release, with the async, sync and shared calls', () =>
  inTempDir(async (dir) => {
    const resource = join(dir, 'key');
    const lockFile = `${resource}.lock`;
    await withFileLock(resource, () => assert.ok(existsSync(lockFile)), { removeLockFile: true });
    assert.equal(existsSync(lockFile), false, 'withFileLock');
    withFileLockSync(resource, () => assert.ok(existsSync(lockFile)), { removeLockFile: true });
    assert.equal(existsSync(lockFile), false, 'withFileLockSync');
    lockSync(resource, { removeLockFile: true }).release();
    assert.equal(existsSync(lockFile), false, 'lockSync');
    await (await lock(resource, { shared: true, removeLockFile: true })).release();
    assert.equal(existsSync(lockFile), false, 'a lone shared holder');
    assert.deepEqual(readdirSync(dir), [], 'nothing left');
  }));

test('removeLockFile: a shared holder leaves the file while another process still holds it shared', () =>
  inTempDir(async (dir) => {
    const resource = join(dir, 'shared-key');
    const lockFile = `${resource}.lock`;
    const mine = await lock(resource, { shared: true, removeLockFile: true });
    const other = await holdInOtherProcess(resource, { shared: true, removeLockFile: true });
    await mine.release();
    assert.ok(existsSync(lockFile), 'kept: the other process holds it shared');
    assert.equal(await tryInOtherProcess(resource), BUSY, 'and it still excludes a writer');
    await other.release();
    assert.equal(existsSync(lockFile), false, 'the last shared holder deleted it');
  }));

test('removeLockFile under contention: 3 processes, never two holders at once, no lost update, no lock file left', () =>
  inTempDir(async (dir) => {
    const resource = join(dir, 'contended');
    const rounds = 25;
    const options = JSON.stringify({ removeLockFile: true, timeout: 60_000 });
    const results = await crowd(dir, [
      ['crowd', resource, String(rounds), options],
      ['crowd', resource, String(rounds), options],
      ['crowd', resource, String(rounds), options],
    ]);
    const count = Number(readFileSync(`${resource}.count`, 'utf8'));
    console.log(`# removeLockFile: ${sum(results, 'rounds')} critical sections, ${sum(results, 'overlaps')} overlaps, count ${count}`);
    assert.equal(sum(results, 'overlaps'), 0, 'no two processes inside at once');
    assert.equal(count, 3 * rounds, 'no update lost');
    assert.equal(existsSync(`${resource}.lock`), false, 'no lock file left');
  }));

// Windows deletes a file that other handles have open only when the last of
// them closes ("delete pending", unless the volume deletes with POSIX
// semantics). On Windows itself every open of a delete pending file fails
// (ERROR_ACCESS_DENIED): the next lock() waits until the other handle closes,
// then locks a new file. Wine 8 keeps the name listed but lets the file be
// opened and locked again, and deletes it only when every handle, the new
// holder's too, has closed. Either way there is one holder at a time.
test('removeLockFile while another handle has the lock file open: the next holders still exclude each other', () =>
  inTempDir(async (dir) => {
    const resource = join(dir, 'open-elsewhere');
    const lockFile = `${resource}.lock`;
    const held = await lock(resource, { removeLockFile: true });
    const fd = openSync(lockFile, 'r');
    let open = true;
    try {
      await held.release();
      const listed = existsSync(lockFile);
      console.log(`# after a removeLockFile release with another handle open, the lock file is ${listed ? 'still listed' : 'gone'}`);
      if (!isWindows) assert.equal(listed, false, 'POSIX unlinks the name at once');
      setTimeout(() => {
        closeSync(fd);
        open = false;
      }, 500);
      const next = await lock(resource, { timeout: 10_000 });
      console.log(`# the next lock was granted ${open ? 'while the other handle was still open' : 'after the other handle closed'}`);
      assert.equal(await tryInOtherProcess(resource), BUSY, 'the next holder excludes another process');
      await until(() => !open, 'the other handle to close', 5_000);
      assert.equal(await tryInOtherProcess(resource), BUSY, 'still, once the other handle has closed');
      await next.release();
      console.log(`# after the next holder released, the lock file is ${existsSync(lockFile) ? 'still there' : 'gone'}`);
      assert.equal(await tryInOtherProcess(resource), 0);
    } finally {
      if (open) closeSync(fd);
    }
  }));

// --- several locks at once -----------------------------------------------------------

test('withFileLocks over 3 paths in random orders from 2 processes: no deadlock, no overlap', () =>
  inTempDir(async (dir) => {
    const paths = ['a', 'b', 'c'].map((name) => join(dir, name));
    const rounds = 30;
    const results = await crowd(dir, [
      ['multi', String(rounds), ...paths],
      ['multi', String(rounds), ...[...paths].reverse()],
    ]);
    const counts = paths.map((p) => Number(readFileSync(`${p}.count`, 'utf8')));
    console.log(`# withFileLocks: ${sum(results, 'rounds')} rounds, ${sum(results, 'timeouts')} timeouts, ${sum(results, 'overlaps')} overlaps, counts ${counts}`);
    assert.equal(sum(results, 'timeouts'), 0, 'no round waited 30 s (a deadlock would)');
    assert.equal(sum(results, 'overlaps'), 0);
    assert.deepEqual(counts, [2 * rounds, 2 * rounds, 2 * rounds], 'no update lost');
  }));

// --- the command line --------------------------------------------------------------------

const require = createRequire(import.meta.url);
const CLI = join(dirname(require.resolve('native-file-lock/package.json')), 'bin', 'native-file-lock.mjs');

/** Runs the CLI with args; resolves to { code, stdout } (stdout through a file: no pipes under Wine). */
async function cli(dir, args) {
  const outFile = join(dir, `cli-out-${Math.random().toString(36).slice(2)}.txt`);
  const out = openSync(outFile, 'w');
  const child = spawn(process.execPath, [CLI, ...args], { stdio: ['ignore', out, 'inherit'] });
  closeSync(out);
  const code = await new Promise((resolve, reject) => {
    child.on('error', reject);
    child.on('exit', (c, signal) => resolve(c ?? signal));
  });
  return { code, stdout: readFileSync(outFile, 'utf8') };
}

test('the CLI runs a command under the lock and passes its exit code through', () =>
  inTempDir(async (dir) => {
    const resource = join(dir, 'job');
    // The command is another process: it must find the lock busy (3) while the CLI holds it.
    assert.equal((await cli(dir, [resource, '--', process.execPath, PEER, 'try', resource])).code, BUSY, 'held while the command runs');
    assert.equal((await cli(dir, [resource, '--', process.execPath, '-e', 'process.exit(7)'])).code, 7, 'exit code passed through');
    assert.equal(await tryInOtherProcess(resource), 0, 'released after the command');
  }));

test('the CLI with -n -E 75 exits 75 without running the command while another process holds the lock', () =>
  inTempDir(async (dir) => {
    const resource = join(dir, 'cron');
    const marker = join(dir, 'ran');
    const held = await lock(resource);
    const script = `require('node:fs').writeFileSync(${JSON.stringify(marker)}, '')`;
    assert.equal((await cli(dir, ['-n', '-E', '75', resource, '--', process.execPath, '-e', script])).code, 75);
    assert.equal((await cli(dir, ['-w', '0.3', resource, '--', process.execPath, '-e', script])).code, 1, '-w runs out: exit 1');
    assert.equal(existsSync(marker), false, 'the command did not run');
    await held.release();
    assert.equal((await cli(dir, ['-n', '-E', '75', resource, '--', process.execPath, '-e', script])).code, 0);
    assert.ok(existsSync(marker), 'it ran once the lock was free');
  }));

test('the CLI status tells an exclusive holder, a shared one and a free lock apart', () =>
  inTempDir(async (dir) => {
    const resource = join(dir, 'watched');
    const other = await holdInOtherProcess(resource);
    const exclusive = await cli(dir, ['status', resource, '--json']);
    assert.equal(exclusive.code, 0);
    const state = JSON.parse(exclusive.stdout);
    assert.equal(state.locked, true, exclusive.stdout);
    assert.equal(state.shared, false, exclusive.stdout);
    await other.release();
    writeFileSync(join(dir, 'idle.lock'), '');
    const reader = await holdInOtherProcess(resource, { shared: true });
    const listing = await cli(dir, ['status', dir]);
    await reader.release();
    assert.equal(listing.code, 0, listing.stdout);
    assert.match(listing.stdout, /idle\.lock: free$/m);
    assert.match(listing.stdout, /watched\.lock: held shared/);
  }));

test('the CLI doctor names the file system and finds that locks exclude between processes', () =>
  inTempDir(async (dir) => {
    const { code, stdout } = await cli(dir, ['doctor', dir, '--json']);
    const report = JSON.parse(stdout);
    console.log(`# doctor: file system ${report.fileSystem.type}; steps ${report.exclusion.steps.map((s) => s.got).join(', ')}`);
    assert.equal(code, 0, stdout);
    assert.equal(report.ok, true);
    assert.equal(report.platform, process.platform);
    assert.deepEqual(
      report.exclusion.steps.map((s) => s.got),
      ['busy', 'free'],
    );
    // Node's statfs on Windows always gives type 0, which names nothing: the doctor must say it does not know.
    if (isWindows) assert.match(report.fileSystem.type, /^unknown \(Windows/, `file system: ${report.fileSystem.type}`);
    else assert.ok(report.fileSystem.type && !report.fileSystem.type.startsWith('unknown'), `file system: ${report.fileSystem.type}`);
    assert.deepEqual(
      readdirSync(dir).filter((n) => n.startsWith('.native-file-lock-doctor')),
      [],
      'the doctor leaves no file behind',
    );
  }));

printAddon();
await run();
