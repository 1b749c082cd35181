// Windows names and Windows sharing rules, checked with Windows Node (the
// matrix runs it under Wine) against the package as installed from its
// tarball. On other platforms it runs the tests that make sense there.
//
//   node windows.mjs            all tests
//   node windows.mjs --grep X   tests whose name contains X
import assert from 'node:assert/strict';
import { closeSync, existsSync, mkdirSync, openSync, readdirSync, realpathSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';

import { lock, tryLock, withFileLock } from 'native-file-lock';

import { BUSY, inTempDir, isWindows, printAddon, rejectsWith, run, test, tryInOtherProcess } from './harness.mjs';

/** A directory whose paths are longer than MAX_PATH (260 characters). */
function deepDir(dir) {
  let deep = dir;
  while (deep.length < 300) deep = join(deep, 'a-folder-with-a-rather-long-name');
  mkdirSync(deep, { recursive: true });
  return deep;
}

// --- long paths ------------------------------------------------------------

test('a resource whose path is longer than MAX_PATH is locked, and another process sees it held', () =>
  inTempDir(async (dir) => {
    const resource = join(deepDir(dir), 'data.db');
    writeFileSync(resource, '');
    const held = await lock(resource);
    assert.ok(held.path.length > 260, `the lock path is ${held.path.length} characters`);
    assert.equal(held.path, `${realpathSync(resource)}.lock`, 'reported without the \\\\?\\ prefix');
    assert.ok(existsSync(held.path), 'the lock file exists at the reported path');
    assert.equal(await tryInOtherProcess(resource), BUSY);
    await held.release();
    assert.equal(await tryInOtherProcess(resource), 0);
  }));

test('a missing resource in a folder deeper than MAX_PATH is locked beside it', () =>
  inTempDir(async (dir) => {
    const deep = deepDir(dir);
    const held = await lock(join(deep, 'later.db'));
    assert.ok(existsSync(join(deep, 'later.db.lock')));
    assert.equal(await tryInOtherProcess(join(deep, 'later.db')), BUSY);
    await held.release();
  }));

test('a lockfilePath longer than MAX_PATH is locked', () =>
  inTempDir(async (dir) => {
    const lockfilePath = join(deepDir(dir), 'custom.lck');
    const held = await lock(join(dir, 'data'), { lockfilePath });
    assert.ok(existsSync(lockfilePath));
    assert.equal(await tryLock(join(dir, 'other'), { lockfilePath }), undefined);
    await held.release();
  }));

// --- names Windows normalises ----------------------------------------------

const trailing = isWindows ? ['f.', 'f ', 'f. .'] : [];
for (const spelling of trailing) {
  test(`a missing resource spelled '${spelling}' shares the lock of 'f', as Windows creates 'f' for both`, () =>
    inTempDir(async (dir) => {
      const held = await lock(join(dir, 'f'));
      const other = await tryLock(join(dir, spelling));
      await other?.release();
      assert.equal(other, undefined, 'the other spelling is busy in this process');
      assert.equal(await tryInOtherProcess(join(dir, spelling)), BUSY, 'and in another process');
      await held.release();
      assert.deepEqual(
        readdirSync(dir).filter((n) => n.endsWith('.lock')),
        ['f.lock'],
        'one lock file',
      );
    }));
}

// Windows (and Wine, which emulates it) matches names case-insensitively.
if (isWindows) {
  test('Data.db and data.db share one lock before the file exists: a nested call is reentrant', () =>
    inTempDir(async (dir) => {
      const result = await withFileLock(join(dir, 'Data.db'), async () => {
        assert.equal(await tryInOtherProcess(join(dir, 'DATA.DB')), BUSY, 'another process sees the lock held');
        return withFileLock(join(dir, 'data.db'), () => 'ran', { timeout: 5_000 });
      });
      assert.equal(result, 'ran');
      assert.equal(await tryInOtherProcess(join(dir, 'data.db')), 0, 'released');
    }));

  test('case variants of a missing resource take turns in one process', () =>
    inTempDir(async (dir) => {
      const held = await lock(join(dir, 'Report.TXT'));
      assert.equal(await tryLock(join(dir, 'report.txt')), undefined);
      let second;
      const waiting = lock(join(dir, 'REPORT.txt'), { timeout: 10_000 }).then((h) => (second = h));
      await sleep(200);
      assert.equal(second, undefined, 'the second spelling waits');
      await held.release();
      await waiting;
      assert.equal(second.released, false);
      await second.release();
    }));

  test('a case variant of an existing resource is reentrant too', () =>
    inTempDir(async (dir) => {
      writeFileSync(join(dir, 'Notes.md'), '');
      const result = await withFileLock(join(dir, 'notes.MD'), () => withFileLock(join(dir, 'NOTES.md'), () => 'ran', { timeout: 5_000 }));
      assert.equal(result, 'ran');
    }));
}

// --- sharing rules ---------------------------------------------------------

// libuv opens with FILE_SHARE_READ | WRITE | DELETE unless given
// UV_FS_O_EXLOCK, which shares nothing: every other open then fails with
// ERROR_SHARING_VIOLATION until this handle is closed.
const UV_FS_O_EXLOCK = 0x10000000;

/**
 * While another handle keeps the lock file from being opened, tryLock answers
 * busy and a short lock() times out instead of failing with the open's error;
 * a longer lock() gets the lock only after closeOther() (called once, 300 ms
 * in, and again harmlessly by the caller's cleanup). Resolves to that lock.
 */
async function expectWaitedOut(resource, closeOther) {
  assert.equal(await tryLock(resource), undefined, 'tryLock answers busy');
  const error = await rejectsWith(lock(resource, { timeout: 300 }));
  assert.equal(error.code, 'ELOCKTIMEOUT', `a short wait times out instead of failing: ${error.message}`);
  let closed = false;
  const waiting = lock(resource, { timeout: 10_000 });
  setTimeout(() => {
    closeOther();
    closed = true;
  }, 300);
  const held = await waiting;
  assert.equal(closed, true, 'granted only after the other handle closed');
  return held;
}

/** closeSync(fd) once, however often it is called. */
function closer(fd) {
  let open = true;
  return () => {
    if (open) closeSync(fd);
    open = false;
  };
}

if (isWindows) {
  test('a lock file another program opened sharing nothing is waited for, not an EBUSY error', () =>
    inTempDir(async (dir) => {
      const resource = join(dir, 'shared');
      const close = closer(openSync(`${resource}.lock`, UV_FS_O_EXLOCK | 0x0002 /* O_RDWR */ | 0x0100 /* O_CREAT */));
      try {
        const held = await expectWaitedOut(resource, close);
        await held.release();
      } finally {
        close();
      }
    }));
}

// --- nothing left open ---------------------------------------------------------

test('the folder of a lock file can be removed right after the release', () =>
  inTempDir(async (dir) => {
    const folder = join(dir, 'work');
    mkdirSync(folder);
    await withFileLock(join(folder, 'data.db'), () => writeFileSync(join(folder, 'data.db'), 'x'));
    rmSync(folder, { recursive: true });
    assert.equal(existsSync(folder), false);

    mkdirSync(folder);
    const held = await lock(join(folder, 'other.db'));
    await held.release();
    rmSync(folder, { recursive: true });
    assert.equal(existsSync(folder), false);
  }));

// A file deleted while other handles are open stays "delete pending" until
// they close, and every open of it fails with ERROR_ACCESS_DENIED. Wine lets
// such a file be opened again, so this runs on Windows itself only.
const UV_FS_O_TEMPORARY = 0x20000000; // FILE_FLAG_DELETE_ON_CLOSE
const underWine = isWindows && existsSync(join(process.env.windir ?? 'C:\\windows', 'system32', 'winecfg.exe'));
if (underWine) console.log('# not under Wine: a lock file left delete pending (Wine does not keep files delete pending)');
if (isWindows && !underWine) {
  test('a lock file left delete pending by another handle is waited out, not an EACCES error', () =>
    inTempDir(async (dir) => {
      const resource = join(dir, 'pending');
      const deleting = openSync(`${resource}.lock`, UV_FS_O_TEMPORARY | 0x0002 /* O_RDWR */ | 0x0100 /* O_CREAT */);
      const close = closer(openSync(`${resource}.lock`, 'r+'));
      closeSync(deleting); // delete pending while the second handle stays open
      try {
        const held = await expectWaitedOut(resource, close);
        assert.equal(await tryInOtherProcess(resource), BUSY, 'the new lock file excludes another process');
        await held.release();
      } finally {
        close();
      }
    }));
}

// --- removeLockFile ----------------------------------------------------------

test('removeLockFile deletes the lock file at release (DeleteFileW on Windows), and another process then locks a new one', () =>
  inTempDir(async (dir) => {
    const resource = join(dir, 'key');
    const held = await lock(resource, { removeLockFile: true });
    assert.equal(await tryInOtherProcess(resource), BUSY, 'held while the file is there');
    await held.release();
    assert.equal(existsSync(`${resource}.lock`), false, 'deleted at release');
    assert.equal(await tryInOtherProcess(resource), 0, 'another process locks a new file');
    await withFileLock(resource, () => undefined, { removeLockFile: true });
    assert.deepEqual(readdirSync(dir), [], 'nothing left');
  }));

if (isWindows && !underWine) {
  // Where the file system deletes with POSIX semantics the name goes at once;
  // else it stays listed, delete pending, until the other handle closes.
  test('removeLockFile while another handle has the lock file open: the next lock gets a new file, waiting out a delete pending one', () =>
    inTempDir(async (dir) => {
      const resource = join(dir, 'pending-key');
      const held = await lock(resource, { removeLockFile: true });
      const close = closer(openSync(`${resource}.lock`, 'r'));
      await held.release();
      try {
        const pending = readdirSync(dir).includes('pending-key.lock');
        console.log(`# removeLockFile left the lock file ${pending ? 'delete pending' : 'deleted at once (POSIX semantics)'}`);
        const next = pending ? await expectWaitedOut(resource, close) : await lock(resource, { timeout: 5_000 });
        assert.equal(await tryInOtherProcess(resource), BUSY, 'the new lock file excludes another process');
        await next.release();
      } finally {
        close();
      }
    }));
}

printAddon();
await run();
