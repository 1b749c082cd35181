// File-system faults on real mounts made by the test (as root; see requires()):
// full file systems, read-only file systems, permissions, names too long,
// directories where files are expected, unicode and very long paths, and a
// FUSE file system with and without lock forwarding. Each failure must be a
// FileLockError whose code says what went wrong and whose message names the
// lock file, with nothing left held or open.
import { spawnSync } from 'node:child_process';
import { chmodSync, existsSync, mkdirSync, mkdtempSync, readdirSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';

import { FileLockError, tryLock, withFileLock } from 'native-file-lock';

import { fileLockError, openFiles, requires, runSync, skipWithout } from './helpers.js';
import { flockProbe, letGo, pythonHolder } from './peers.js';

const packageRoot = fileURLToPath(new URL('..', import.meta.url));
const indexUrl = pathToFileURL(join(packageRoot, 'dist/esm/index.js')).href;

function must(command: string, args: string[]): void {
  const out = runSync(command, args);
  if (out.status !== 0) throw new Error(`${command} ${args.join(' ')} failed (${out.status}): ${out.stderr}`);
}

/** Lock files of this process that are open right now under dir. */
function openLockFilesUnder(dir: string): string[] {
  return openFiles().filter((target) => target.startsWith(dir));
}

/**
 * Runs `result = await lib.withFileLock(path, ...)` in a child process (as
 * another user, or with other environment variables) and returns
 * { ok, code, path, message } as JSON.
 */
function lockInChild(resource: string, options: { user?: string; env?: Record<string, string> } = {}) {
  const code = `
    const lib = await import(${JSON.stringify(indexUrl)});
    try {
      const value = await lib.withFileLock(${JSON.stringify(resource)}, () => 'ran');
      console.log(JSON.stringify({ ok: true, value }));
    } catch (e) {
      console.log(JSON.stringify({ ok: false, name: e.name, code: e.code, path: e.path, message: e.message, isFileLockError: e instanceof lib.FileLockError }));
    }`;
  const node = [process.execPath, '--input-type=module', '-e', code];
  const [command, ...args] = options.user ? ['setpriv', `--reuid=${options.user}`, '--regid=nogroup', '--clear-groups', ...node] : node;
  const out = spawnSync(command, args, { encoding: 'utf8', env: { ...process.env, ...options.env }, cwd: '/' });
  const line = out.stdout.trim().split('\n').pop() ?? '';
  try {
    return JSON.parse(line) as { ok: boolean; code?: string; path?: string; message?: string; isFileLockError?: boolean; value?: string };
  } catch {
    throw new Error(`child failed (${out.status}): ${out.stdout} ${out.stderr}`);
  }
}

async function lockError(resource: string, options?: Parameters<typeof withFileLock>[2]): Promise<FileLockError> {
  let ran = false;
  const error = await fileLockError(() => withFileLock(resource, () => (ran = true), options));
  expect(ran).toBe(false);
  return error;
}

let root: string;
const mounts: string[] = [];

function mount(args: string[], target: string): void {
  mkdirSync(target, { recursive: true });
  must('mount', [...args, target]);
  mounts.push(target);
}

beforeAll(() => {
  root = mkdtempSync(join(tmpdir(), 'nfl-faults-'));
  // Other users (nobody) must be able to reach directories below it.
  chmodSync(root, 0o755);
});

afterAll(() => {
  // Innermost first; a lazy unmount if something still holds a mount busy.
  for (const target of mounts.reverse()) {
    if (runSync('umount', [target]).status !== 0) runSync('umount', ['-l', target]);
  }
  // rm(1) removes trees deeper than PATH_MAX; rmSync cannot.
  if (process.platform !== 'win32') runSync('rm', ['-rf', root]);
  rmSync(root, { recursive: true, force: true });
});

describe('a full file system', () => {
  requires('mount', 'flock(1)', '/proc');
  it('fails with ENOSPC naming the lock file when no inode is left for a new lock file, holds nothing, and works once one is free', async () => {
    const mnt = join(root, 'no-inodes');
    mount(['-t', 'tmpfs', '-o', 'size=1m,nr_inodes=16', 'tmpfs'], mnt);
    let fillers = 0;
    for (;;) {
      try {
        writeFileSync(join(mnt, `filler-${fillers}`), '');
        fillers++;
      } catch (error) {
        expect((error as NodeJS.ErrnoException).code).toBe('ENOSPC');
        break;
      }
    }
    expect(fillers).toBeGreaterThan(0);
    const error = await lockError(join(mnt, 'data'));
    expect(error.code).toBe('ENOSPC');
    expect(error.path).toBe(join(mnt, 'data.lock'));
    expect(error.message).toContain(join(mnt, 'data.lock'));
    expect(openLockFilesUnder(mnt)).toEqual([]);

    rmSync(join(mnt, 'filler-0'));
    await expect(withFileLock(join(mnt, 'data'), () => flockProbe(join(mnt, 'data.lock')))).resolves.toBe('held');
  });

  it('still locks when no block is left, because a lock file is empty and needs none', async () => {
    const mnt = join(root, 'no-blocks');
    mount(['-t', 'tmpfs', '-o', 'size=64k', 'tmpfs'], mnt);
    expect(() => writeFileSync(join(mnt, 'filler'), Buffer.alloc(1024 * 1024))).toThrow(/ENOSPC/);
    const seen = await withFileLock(join(mnt, 'data'), () => flockProbe(join(mnt, 'data.lock')));
    expect(seen).toBe('held');
    expect(statSync(join(mnt, 'data.lock')).size).toBe(0);
    expect(flockProbe(join(mnt, 'data.lock'))).toBe('free');
  });
});

describe('a read-only file system', () => {
  const canMount = requires('mount', 'flock(1)', '/proc');
  let mnt: string;
  beforeAll(() => {
    if (!canMount) return;
    mnt = join(root, 'read-only');
    mount(['-t', 'tmpfs', '-o', 'size=64k', 'tmpfs'], mnt);
    writeFileSync(join(mnt, 'existing.lock'), '');
    must('mount', ['-o', 'remount,ro', mnt]);
  });

  it('fails with EROFS naming the lock file when the lock file does not exist yet', async () => {
    const error = await lockError(join(mnt, 'missing'));
    expect(error.code).toBe('EROFS');
    expect(error.path).toBe(join(mnt, 'missing.lock'));
    expect(error.message).toContain(join(mnt, 'missing.lock'));
    expect(openLockFilesUnder(mnt)).toEqual([]);
  });

  it('locks an existing lock file through a read-only descriptor, and other processes see it held', async () => {
    expect(await withFileLock(join(mnt, 'existing'), () => flockProbe(join(mnt, 'existing.lock')))).toBe('held');
    expect(flockProbe(join(mnt, 'existing.lock')).toString()).toBe('free');
  });

  it('fails with a coded EBADF error under record-lock (NFS-style) semantics, which need a writable descriptor for an exclusive lock', () => {
    const result = lockInChild(join(mnt, 'existing'), { env: { NATIVE_FILE_LOCK_TEST_LOCK_KIND: 'fcntl' } });
    expect(result).toMatchObject({ ok: false, isFileLockError: true, code: 'EBADF', path: join(mnt, 'existing.lock') });
    expect(result.message).toContain(join(mnt, 'existing.lock'));
  });
});

describe('permissions', () => {
  requires('setpriv');
  it('fails with EACCES for a user who may not create the lock file, and locks read-only where the lock file exists', () => {
    const dir = join(root, 'root-only');
    mkdirSync(dir, { mode: 0o755 });
    chmodSync(dir, 0o755);
    const denied = lockInChild(join(dir, 'data'), { user: 'nobody' });
    expect(denied).toMatchObject({ ok: false, isFileLockError: true, code: 'EACCES', path: join(dir, 'data.lock') });
    expect(denied.message).toContain(join(dir, 'data.lock'));
    expect(existsSync(join(dir, 'data.lock'))).toBe(false);

    writeFileSync(join(dir, 'shared.lock'), '', { mode: 0o644 });
    expect(lockInChild(join(dir, 'shared'), { user: 'nobody' })).toEqual({ ok: true, value: 'ran' });
  });

  it('fails with EACCES naming the path for a user who may not enter the directory', () => {
    const dir = join(root, 'closed');
    mkdirSync(dir, { mode: 0o700 });
    chmodSync(dir, 0o700);
    const denied = lockInChild(join(dir, 'data'), { user: 'nobody' });
    expect(denied).toMatchObject({ ok: false, isFileLockError: true, code: 'EACCES' });
    expect(denied.message).toContain(dir);
  });
});

describe('names and paths', () => {
  // Linux's limits (NAME_MAX 255 bytes, PATH_MAX 4096) and byte-for-byte names.
  requires('linux');
  let dir: string;
  beforeAll(() => {
    dir = join(root, 'names');
    mkdirSync(dir);
  });

  it('fails with ENAMETOOLONG naming the lock file for a 300-byte file name', async () => {
    const error = await lockError(join(dir, 'n'.repeat(300)));
    expect(error.code).toBe('ENAMETOOLONG');
    expect(error.path).toBe(join(dir, 'n'.repeat(300) + '.lock'));
    expect(error.message).toContain('n'.repeat(300));
  });

  it('accepts resource names up to 250 bytes, because the lock file adds 5 bytes to a 255-byte limit', async () => {
    await expect(withFileLock(join(dir, 'a'.repeat(250)), () => 'ok')).resolves.toBe('ok');
    expect(existsSync(join(dir, 'a'.repeat(250) + '.lock'))).toBe(true);
    const error = await lockError(join(dir, 'b'.repeat(251)));
    expect(error.code).toBe('ENAMETOOLONG');
  });

  it('fails with ENAMETOOLONG for a path longer than PATH_MAX (4096 bytes)', async (ctx) => {
    skipWithout(ctx, 'python3');
    // Made step by step from inside, as no single system call takes the whole path.
    const segment = 'd'.repeat(200);
    const depth = 22;
    must('python3', ['-c', 'import os, sys\nos.chdir(sys.argv[1])\nfor _ in range(int(sys.argv[3])):\n    os.mkdir(sys.argv[2])\n    os.chdir(sys.argv[2])', dir, segment, String(depth)]);
    const resource = join(dir, ...Array<string>(depth).fill(segment), 'data');
    expect(Buffer.byteLength(resource)).toBeGreaterThan(4096);
    const error = await lockError(resource);
    expect(error.code).toBe('ENAMETOOLONG');
    expect(error.message).toContain(segment);
  });

  it('locks paths of nearly PATH_MAX bytes, and other processes see the lock', async (ctx) => {
    skipWithout(ctx, 'flock(1)');
    let deep = dir;
    while (Buffer.byteLength(deep) < 3750) deep = join(deep, 'p'.repeat(200));
    mkdirSync(deep, { recursive: true });
    // A lock path of exactly 4000 bytes, with no component over 255.
    const resource = join(deep, 'x'.repeat(4000 - Buffer.byteLength(deep) - 1 - '.lock'.length));
    expect(Buffer.byteLength(resource + '.lock')).toBe(4000);
    expect(await withFileLock(resource, () => flockProbe(resource + '.lock'))).toBe('held');
    expect(flockProbe(resource + '.lock')).toBe('free');
  });

  it('locks unicode names byte for byte: the lock file carries the same UTF-8 name and other processes see it', async (ctx) => {
    skipWithout(ctx, 'flock(1)');
    const name = 'résumé-データ-🔒.db';
    const resource = join(dir, name);
    const lock = await tryLock(resource);
    expect(lock?.path).toBe(resource + '.lock');
    expect(readdirSync(dir)).toContain(name + '.lock');
    expect(flockProbe(join(dir, name + '.lock'))).toBe('held');
    await lock!.release();
    expect(flockProbe(join(dir, name + '.lock'))).toBe('free');
  });

  it('treats differently normalized unicode names as different files, as Linux does (é as one code point or as e + accent)', async () => {
    const composed = join(dir, 'caf\u00e9');
    const decomposed = join(dir, 'cafe\u0301');
    const a = await tryLock(composed);
    const b = await tryLock(decomposed);
    expect(a).toBeDefined();
    expect(b).toBeDefined();
    expect(a!.path).not.toBe(b!.path);
    await a!.release();
    await b!.release();
  });

  it('locks a directory (its lock file sits next to it) but fails with EISDIR when the lock path itself is a directory', async (ctx) => {
    skipWithout(ctx, 'flock(1)', '/proc');
    const resourceDir = join(dir, 'a-directory');
    mkdirSync(resourceDir);
    expect(await withFileLock(resourceDir, () => flockProbe(resourceDir + '.lock'))).toBe('held');

    mkdirSync(join(dir, 'blocked.lock'));
    const error = await lockError(join(dir, 'blocked'));
    expect(error.code).toBe('EISDIR');
    expect(error.path).toBe(join(dir, 'blocked.lock'));
    expect(error.message).toContain(join(dir, 'blocked.lock'));

    const viaOption = await lockError(join(dir, 'anything'), { lockfilePath: join(dir, 'blocked.lock') });
    expect(viaOption.code).toBe('EISDIR');
    expect(openLockFilesUnder(join(dir, 'blocked.lock'))).toEqual([]);
  });
});

describe('the lock file chosen for a path', () => {
  it('is <path>.lock for a resource and the path itself for lockfilePath, whichever was asked first in the process', async () => {
    const dir = join(root, 'choice');
    mkdirSync(dir);
    const first = join(dir, 'first');
    const second = join(dir, 'second');
    writeFileSync(first, 'data');
    writeFileSync(second, 'data');
    const asResource = async (path: string) => (await withFileLock(path, () => tryLock(path)))?.path;
    const asLockfile = async (path: string) => (await withFileLock('unused', () => tryLock('unused', { lockfilePath: path }), { lockfilePath: path }))?.path;
    expect(await asResource(first)).toBe(first + '.lock');
    expect(await asLockfile(first)).toBe(first);
    expect(await asLockfile(second)).toBe(second);
    expect(await asResource(second)).toBe(second + '.lock');
  });
});

describe('a FUSE file system (bindfs)', () => {
  const canMount = requires('mount', 'bindfs', 'flock(1)', 'python3');
  let backing: string;
  let plain: string;
  let forwarding: string;
  beforeAll(() => {
    if (!canMount) return;
    backing = join(root, 'fuse-backing');
    mkdirSync(backing);
    plain = join(root, 'fuse-plain');
    forwarding = join(root, 'fuse-forwarding');
    mkdirSync(plain);
    mkdirSync(forwarding);
    must('bindfs', [backing, plain]);
    mounts.push(plain);
    must('bindfs', ['--multithreaded', '--enable-lock-forwarding', backing, forwarding]);
    mounts.push(forwarding);
    writeFileSync(join(backing, 'data'), 'payload');
  });

  it('without lock forwarding, a lock taken through the mount is seen only through that mount, not through the backing directory', async () => {
    const seen = await withFileLock(join(plain, 'data'), () => ({
      throughMount: flockProbe(join(plain, 'data.lock')),
      throughBacking: flockProbe(join(backing, 'data.lock')),
    }));
    expect(seen).toEqual({ throughMount: 'held', throughBacking: 'free' });
    // And the other way round: a holder on the backing directory is invisible through the mount.
    const holder = pythonHolder(join(backing, 'data.lock'));
    try {
      await holder.waitForOutput('locked');
      const lock = await tryLock(join(plain, 'data'));
      expect(lock).toBeDefined();
      await lock!.release();
    } finally {
      await letGo(holder);
    }
  });

  it('with --enable-lock-forwarding, a lock taken through the mount is seen through the backing directory, and the other way round', async () => {
    const seen = await withFileLock(join(forwarding, 'data'), () => flockProbe(join(backing, 'data.lock')));
    expect(seen).toBe('held');
    expect(flockProbe(join(backing, 'data.lock'))).toBe('free');
    const holder = pythonHolder(join(backing, 'data.lock'));
    try {
      await holder.waitForOutput('locked');
      expect(await tryLock(join(forwarding, 'data'))).toBeUndefined();
    } finally {
      await letGo(holder);
    }
  });
});
