// Hostile paths: the lock file is opened O_NOFOLLOW (a symlink planted at the
// lock path is an ELOOP error, never followed), never truncated or written,
// created with 0o666 & ~umask, and never inherited by child processes. In a
// world-writable sticky directory (/tmp-like) another user's plants cannot
// make us open a file through a symlink or modify any file's content.
import { spawn, spawnSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import {
  chmodSync,
  existsSync,
  mkdirSync,
  mkdtempSync,
  readdirSync,
  readFileSync,
  readlinkSync,
  rmSync,
  statSync,
  symlinkSync,
  utimesSync,
  writeFileSync,
} from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';

import { FileLockError, lock, tryLock, withFileLock } from 'native-file-lock';

import { fileLockError, plainEnv, requires, runSync, skipWithout } from './helpers.js';
import { flockProbe } from './peers.js';

const packageRoot = fileURLToPath(new URL('..', import.meta.url));
const indexUrl = pathToFileURL(join(packageRoot, 'dist/esm/index.js')).href;
const OLD = new Date('2001-02-03T04:05:06Z');

let dir: string;
beforeEach(() => {
  dir = mkdtempSync(join(tmpdir(), 'nfl-security-'));
  // Reachable by nobody, for the plants below.
  chmodSync(dir, 0o755);
});
afterEach(() => rmSync(dir, { recursive: true, force: true }));

function asNobody(command: string, ...args: string[]) {
  return runSync('setpriv', ['--reuid=nobody', '--regid=nogroup', '--clear-groups', command, ...args]);
}

/** A file with content and an old mtime, to show that nothing touched it. */
function victim(path: string, mode = 0o644) {
  const content = randomBytes(4096);
  writeFileSync(path, content, { mode });
  chmodSync(path, mode);
  utimesSync(path, OLD, OLD);
  return {
    path,
    untouched() {
      const st = statSync(path);
      expect(readFileSync(path).equals(content)).toBe(true);
      expect(st.size).toBe(content.length);
      expect(st.mtimeMs).toBe(OLD.getTime());
    },
  };
}

describe('a symlink at the lock path', () => {
  it('is never followed: withFileLock, lock and tryLock fail with ELOOP naming the lock file, and the target keeps its content and mtime', async (ctx) => {
    skipWithout(ctx, 'flock(1)');
    const target = victim(join(dir, 'target'));
    const resource = join(dir, 'data');
    symlinkSync(target.path, resource + '.lock');
    let ran = false;
    for (const attempt of [() => withFileLock(resource, () => (ran = true)), () => lock(resource), () => tryLock(resource)]) {
      const error = await fileLockError(attempt);
      expect(error.code).toBe('ELOOP');
      expect(error.path).toBe(resource + '.lock');
      expect(error.message).toContain(resource + '.lock');
    }
    expect(ran).toBe(false);
    target.untouched();
    expect(flockProbe(target.path)).toBe('free');
  });

  it('that dangles does not make us create its target', async () => {
    const resource = join(dir, 'data');
    const target = join(dir, 'would-be-created');
    symlinkSync(target, resource + '.lock');
    expect((await fileLockError(() => lock(resource))).code).toBe('ELOOP');
    expect(existsSync(target)).toBe(false);
  });

  it('given as lockfilePath is not followed either', async () => {
    const target = victim(join(dir, 'target'));
    const link = join(dir, 'link.lock');
    symlinkSync(target.path, link);
    const error = await fileLockError(() => lock('unused', { lockfilePath: link }));
    expect(error.code).toBe('ELOOP');
    expect(error.path).toBe(link);
    target.untouched();
  });
});

describe('the lock file', () => {
  it('is never truncated or written: its bytes and mtime survive lock, tryLock, withFileLock, contention and another process', async () => {
    const resource = join(dir, 'data');
    const file = victim(resource + '.lock');
    for (let i = 0; i < 5; i++) {
      await withFileLock(resource, () => undefined);
      const held = await tryLock(resource);
      await held!.release();
      const other = await lock(resource);
      const waiting = lock(resource, { timeout: 20 }).catch((e: unknown) => e);
      await waiting;
      await other.release();
    }
    const child = spawnSync(
      process.execPath,
      ['--input-type=module', '-e', `const { withFileLock } = await import(${JSON.stringify(indexUrl)}); await withFileLock(${JSON.stringify(resource)}, () => {});`],
      { encoding: 'utf8' },
    );
    expect(child.status).toBe(0);
    file.untouched();
  });

  it.for([
    [0o022, 0o644],
    [0o027, 0o640],
    [0o077, 0o600],
    [0o000, 0o666],
  ])('is created with mode 0o666 & ~umask (umask %o gives %o)', ([umask, mode], ctx) => {
    skipWithout(ctx, 'posix');
    const resource = join(dir, `data-${umask.toString(8)}`);
    const child = spawnSync(
      process.execPath,
      [
        '--input-type=module',
        '-e',
        `process.umask(${umask}); const { withFileLock } = await import(${JSON.stringify(indexUrl)}); await withFileLock(${JSON.stringify(resource)}, () => {});`,
      ],
      { encoding: 'utf8' },
    );
    expect(child.stderr).toBe('');
    expect(statSync(resource + '.lock').mode & 0o7777).toBe(mode);
  });

  it('is not inherited by a child process spawned while it is held: the lock ends with its holder even if the child lives on', async (ctx) => {
    skipWithout(ctx, 'flock(1)', '/proc');
    const resource = join(dir, 'data');
    // The holder spawns a long-lived grandchild, reports both pids, and is then SIGKILLed.
    const holder = spawn(
      process.execPath,
      [
        '--input-type=module',
        '-e',
        `import { spawn } from 'node:child_process';
         const { lock } = await import(${JSON.stringify(indexUrl)});
         await lock(${JSON.stringify(resource)});
         const grandchild = spawn('sleep', ['30'], { detached: true, stdio: 'ignore' });
         grandchild.unref();
         console.log(JSON.stringify({ grandchild: grandchild.pid }));
         setInterval(() => {}, 1000);`,
      ],
      { stdio: ['ignore', 'pipe', 'inherit'] },
    );
    const line = await new Promise<string>((resolve) => holder.stdout.setEncoding('utf8').once('data', resolve));
    const { grandchild } = JSON.parse(line) as { grandchild: number };
    try {
      expect(flockProbe(resource + '.lock')).toBe('held');
      const inherited = readdirSync(`/proc/${grandchild}/fd`).map((fd) => {
        try {
          return readlinkSync(`/proc/${grandchild}/fd/${fd}`);
        } catch {
          return '';
        }
      });
      expect(inherited).not.toContain(resource + '.lock');
      holder.kill('SIGKILL');
      await new Promise((resolve) => holder.once('close', resolve));
      expect(existsSync(`/proc/${grandchild}`)).toBe(true);
      expect(flockProbe(resource + '.lock')).toBe('free');
    } finally {
      holder.kill('SIGKILL');
      try {
        process.kill(grandchild, 'SIGKILL');
      } catch {
        // Already gone.
      }
    }
  });
});

describe('a lock path in a world-writable sticky directory', () => {
  // Another user (nobody, through setpriv) plants files; flock(1) probes.
  requires('setpriv', 'flock(1)');
  let shared: string;
  let privateDir: string;
  beforeEach(() => {
    shared = join(dir, 'shared');
    mkdirSync(shared);
    chmodSync(shared, 0o1777);
    privateDir = join(dir, 'private');
    mkdirSync(privateDir);
    chmodSync(privateDir, 0o755);
  });

  it('cannot make us open another file through a symlink planted by another user', async () => {
    const target = victim(join(privateDir, 'precious'));
    expect(asNobody('ln', '-s', target.path, join(shared, 'data.lock')).status).toBe(0);
    const error = await fileLockError(() => withFileLock(join(shared, 'data'), () => undefined));
    // Linux answers O_CREAT on another user's symlink in a sticky directory
    // with EACCES before O_NOFOLLOW's ELOOP (may_create_in_sticky, since 4.19).
    expect(['EACCES', 'ELOOP']).toContain(error.code);
    expect(error.path).toBe(join(shared, 'data.lock'));
    target.untouched();
  });

  it('locks but never modifies a file another user hard-linked at the lock path', async () => {
    // protected_hardlinks lets a user link only files they may read and write.
    const target = victim(join(privateDir, 'linkable'), 0o646);
    expect(asNobody('ln', target.path, join(shared, 'data.lock')).status).toBe(0);
    expect(statSync(join(shared, 'data.lock')).ino).toBe(statSync(target.path).ino);
    expect(await withFileLock(join(shared, 'data'), () => flockProbe(target.path))).toBe('held');
    target.untouched();
  });

  it('uses a lock file another user planted there, never modifying it, and that user can hold our lock: shared directories are not private', async () => {
    const planted = join(shared, 'data.lock');
    expect(asNobody('sh', '-c', `printf planted > '${planted}'`).status).toBe(0);
    utimesSync(planted, OLD, OLD);
    const before = readFileSync(planted, 'utf8');
    expect(await withFileLock(join(shared, 'data'), () => flockProbe(planted))).toBe('held');
    expect(readFileSync(planted, 'utf8')).toBe(before);
    expect(statSync(planted).mtimeMs).toBe(OLD.getTime());

    // flock(1) as nobody, holding the planted file until its stdin closes.
    const holder = spawn(
      'setpriv',
      ['--reuid=nobody', '--regid=nogroup', '--clear-groups', 'flock', '-n', planted, 'sh', '-c', 'echo held; exec cat > /dev/null'],
      { stdio: ['pipe', 'pipe', 'inherit'], env: plainEnv },
    );
    const closed = new Promise((resolve) => holder.once('close', resolve));
    try {
      await Promise.race([
        new Promise((resolve) => holder.stdout.setEncoding('utf8').once('data', resolve)),
        closed.then((code) => Promise.reject(new Error(`flock as nobody exited (${String(code)}) before holding the lock`))),
      ]);
      expect(await tryLock(join(shared, 'data'))).toBeUndefined();
    } finally {
      holder.stdin.end();
      await closed;
    }
  });

  it('follows directory symlinks in the resource path (only the lock file itself is opened O_NOFOLLOW), yet modifies nothing it reaches', async (ctx) => {
    skipWithout(ctx, '/proc');
    const existing = victim(join(privateDir, 'config.lock'));
    expect(asNobody('ln', '-s', privateDir, join(shared, 'dir')).status).toBe(0);
    const protectedSymlinks = readFileSync('/proc/sys/fs/protected_symlinks', 'utf8').trim() !== '0';
    const result = await withFileLock(join(shared, 'dir', 'config'), (): string => 'locked').catch((e: FileLockError) => e.code);
    if (protectedSymlinks) {
      // The kernel refuses to follow another user's symlink in a sticky world-writable directory.
      expect(result).toBe('EACCES');
    } else {
      expect(result).toBe('locked');
    }
    existing.untouched();
  });
});
