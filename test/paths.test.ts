// Every spelling of one file must name one lock: the canonical path follows
// what the kernel opens, so a `..` after a symlinked directory goes up from
// the link's target, not from the directory that holds the link.
import { mkdirSync, realpathSync, renameSync, rmSync, symlinkSync, unlinkSync, writeFileSync } from 'node:fs';
import { join, relative } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';

import { lock, lockSync, tryLock, tryLockSync, withFileLock, type FileLock } from 'native-file-lock';

import { Agent, openFiles, requires, tempDir } from './helpers.js';

let agent: Agent;
beforeAll(async () => {
  agent = await Agent.start();
});
afterAll(async () => {
  await agent.stop();
});

/**
 * pw/a → px/sub, so from pw the kernel opens `a/../f` as px/f, while the
 * text `pw/a/../f` would cancel to pw/f. pw/f exists too, as a decoy.
 */
function layout(create = true) {
  const root = realpathSync(tempDir());
  const pw = join(root, 'pw');
  const px = join(root, 'px');
  mkdirSync(pw);
  mkdirSync(join(px, 'sub'), { recursive: true });
  symlinkSync(join(px, 'sub'), join(pw, 'a'));
  if (create) writeFileSync(join(px, 'f'), 'the file');
  writeFileSync(join(pw, 'f'), 'a different file');
  return { root, pw, px, real: join(px, 'f') };
}

function inDir<T>(dir: string, fn: () => T): T {
  const before = process.cwd();
  process.chdir(dir);
  try {
    return fn();
  } finally {
    process.chdir(before);
  }
}

/** Holding one spelling keeps every other spelling out, here and in another process. */
async function expectExclusive(held: FileLock, other: () => Promise<FileLock | undefined>, absoluteOther: string, options = {}): Promise<void> {
  expect(await other()).toBeUndefined();
  expect(await agent.canLock(absoluteOther, options)).toBe(false);
  await held.release();
  const second = await other();
  expect(second).toBeDefined();
  expect(second!.path).toBe(held.path);
  await second!.release();
}

describe('spellings of one file', () => {
  // Windows cancels `..` as text before it opens a path (GetFullPathNameW), and so does the library there.
  requires('posix');
  it('a relative path with `..` after a symlinked directory locks the file the kernel opens', async () => {
    const { pw, real } = layout();
    const held = await inDir(pw, () => tryLock('a/../f'));
    expect(held).toBeDefined();
    expect(held!.path).toBe(real + '.lock');
    await expectExclusive(held!, () => tryLock(real), real);
  });

  it('the absolute spelling with `..` after the symlink and the real path exclude each other', async () => {
    const { pw, real } = layout();
    const spelled = join(pw, 'a') + '/../f';
    const held = (await tryLock(real))!;
    expect(held.path).toBe(real + '.lock');
    await expectExclusive(held, () => tryLock(spelled), spelled);
  });

  it('the decoy that `..` cancels to as text is a different, free lock', async () => {
    const { pw, real } = layout();
    const held = (await tryLock(real))!;
    const decoy = await tryLock(join(pw, 'f'));
    expect(decoy).toBeDefined();
    expect(decoy!.path).toBe(join(pw, 'f.lock'));
    await decoy!.release();
    await held.release();
  });

  it('a relative spelling resolves against the working directory of the call, after chdir too', async () => {
    const { root, pw, px, real } = layout();
    const fromPw = await inDir(pw, () => tryLock('a/../f'));
    expect(fromPw!.path).toBe(real + '.lock');
    // The same text from another directory names another file.
    mkdirSync(join(root, 'pz', 'a'), { recursive: true });
    writeFileSync(join(root, 'pz', 'f'), 'third');
    const fromPz = await inDir(join(root, 'pz'), () => tryLock('a/../f'));
    expect(fromPz!.path).toBe(join(root, 'pz', 'f.lock'));
    // And a plain relative spelling of the held file is kept out.
    expect(await inDir(px, () => tryLock('f'))).toBeUndefined();
    expect(await inDir(join(px, 'sub'), () => tryLock('../f'))).toBeUndefined();
    await fromPz!.release();
    await fromPw!.release();
  });

  it('a resource that does not exist yet resolves its directory as the kernel walks it', async () => {
    const { pw, px } = layout(false);
    const real = join(px, 'missing');
    const held = await inDir(pw, () => tryLock('a/../missing'));
    expect(held!.path).toBe(real + '.lock');
    await expectExclusive(held!, () => tryLock(real), real);
    const viaAbsolute = (await tryLock(join(pw, 'a') + '/../missing'))!;
    expect(viaAbsolute.path).toBe(real + '.lock');
    await viaAbsolute.release();
  });

  it('lockfilePath with `..` after a symlinked directory names the lock file the kernel opens', async () => {
    const { pw, px, real } = layout();
    const lockfile = join(px, 'shared.lock');
    const held = await inDir(pw, () => tryLock(real, { lockfilePath: 'a/../shared.lock' }));
    expect(held!.path).toBe(lockfile);
    await expectExclusive(held!, () => tryLock(real, { lockfilePath: lockfile }), real, { lockfilePath: lockfile });
    const absolute = (await tryLock(real, { lockfilePath: join(pw, 'a') + '/../shared.lock' }))!;
    expect(absolute.path).toBe(lockfile);
    await absolute.release();
  });

  it('withFileLock through a relative `..` spelling holds the real file, and a nested real spelling is reentrant', async () => {
    const { pw, real } = layout();
    const spelled = relative(process.cwd(), join(pw, 'a')) + '/../f';
    const result = await withFileLock(spelled, async () => {
      const inner = await withFileLock(real, () => 'inner', { timeout: 2_000 });
      return [inner, await agent.canLock(real)];
    });
    expect(result).toEqual(['inner', false]);
  });

  it('a symlink to a file that does not exist yet locks the file that opening it would create', async () => {
    const { root, px } = layout(false);
    const target = join(px, 'data.db');
    symlinkSync('../px/data.db', join(root, 'pw', 'current.db'));
    const held = (await tryLock(join(root, 'pw', 'current.db')))!;
    expect(held.path).toBe(target + '.lock');
    await expectExclusive(held, () => tryLock(target), target);
    // A chain of links, relative ones read from the directory that holds each link.
    symlinkSync('pw/current.db', join(root, 'latest.db'));
    const chained = (await tryLock(join(root, 'latest.db')))!;
    expect(chained.path).toBe(target + '.lock');
    await chained.release();
    // Re-pointed at another missing file, the link moves the lock with it.
    rmSync(join(root, 'pw', 'current.db'));
    symlinkSync(join(px, 'other.db'), join(root, 'pw', 'current.db'));
    const moved = (await tryLock(join(root, 'pw', 'current.db')))!;
    expect(moved.path).toBe(join(px, 'other.db.lock'));
    await moved.release();
  });

  it('a loop of symlinks is an ELOOP error naming the path, not a hang', async () => {
    const root = realpathSync(tempDir());
    symlinkSync(join(root, 'b'), join(root, 'a'));
    symlinkSync(join(root, 'a'), join(root, 'b'));
    await expect(lock(join(root, 'a'), { timeout: 1_000 })).rejects.toMatchObject({ code: 'ELOOP' });
  });

  it('re-pointing the symlink moves the lock to the new target', async () => {
    const { root, pw, real } = layout();
    const spelled = join(pw, 'a') + '/../f';
    const first = (await lock(spelled))!;
    expect(first.path).toBe(real + '.lock');
    await first.release();
    mkdirSync(join(root, 'py', 'sub'), { recursive: true });
    writeFileSync(join(root, 'py', 'f'), 'elsewhere');
    rmSync(join(pw, 'a'));
    symlinkSync(join(root, 'py', 'sub'), join(pw, 'a'));
    const second = (await lock(spelled))!;
    expect(second.path).toBe(join(root, 'py', 'f.lock'));
    await second.release();
  });
});

describe('a cached canonical path', () => {
  requires('posix');
  // Every call but the first finds the resolution cached, and the lock
  // attempt checks it in the same call into the addon. Each taker returns
  // the lock file it held, released.
  const takers: Record<string, (path: string, options?: Record<string, unknown>) => Promise<string>> = {
    lock: async (path, options) => {
      const held = await lock(path, options);
      await held.release();
      return held.path;
    },
    tryLock: async (path, options) => {
      const held = (await tryLock(path, options))!;
      await held.release();
      return held.path;
    },
    lockSync: async (path, options) => {
      const held = lockSync(path, options);
      held.release();
      return held.path;
    },
    tryLockSync: async (path, options) => {
      const held = tryLockSync(path, options)!;
      held.release();
      return held.path;
    },
    withFileLock: async (path, options) => {
      const real = realpathSync(path) + '.lock';
      // What another process cannot lock while fn runs is what fn holds.
      const heldReal = await withFileLock(path, () => agent.canLock(real.slice(0, -5), options), options);
      expect(heldReal).toBe(false);
      return real;
    },
  };

  for (const [name, take] of Object.entries(takers)) {
    it(`${name} follows a re-pointed symlink, a missing resource that appears as a symlink and a re-pointed lockfilePath directory`, async () => {
      const root = realpathSync(tempDir());
      for (const dir of ['one', 'two']) {
        mkdirSync(join(root, dir));
        writeFileSync(join(root, dir, 'db'), '');
      }
      const link = join(root, 'current');
      symlinkSync(join(root, 'one', 'db'), link);
      expect(await take(link)).toBe(join(root, 'one', 'db.lock'));
      expect(await take(link)).toBe(join(root, 'one', 'db.lock'));
      rmSync(link);
      symlinkSync(join(root, 'two', 'db'), link);
      expect(await take(link)).toBe(join(root, 'two', 'db.lock'));

      if (name === 'withFileLock') return; // realpath of a missing file: covered by the others
      const later = join(root, 'later');
      expect(await take(later)).toBe(later + '.lock');
      expect(await take(later)).toBe(later + '.lock');
      symlinkSync(join(root, 'one', 'db'), later);
      expect(await take(later)).toBe(join(root, 'one', 'db.lock'));

      const dirLink = join(root, 'locks');
      symlinkSync(join(root, 'one'), dirLink);
      expect(await take(link, { lockfilePath: join(dirLink, 'x.lock') })).toBe(join(root, 'one', 'x.lock'));
      expect(await take(link, { lockfilePath: join(dirLink, 'x.lock') })).toBe(join(root, 'one', 'x.lock'));
      rmSync(dirLink);
      symlinkSync(join(root, 'two'), dirLink);
      expect(await take(link, { lockfilePath: join(dirLink, 'x.lock') })).toBe(join(root, 'two', 'x.lock'));
    });
  }
});

describe('a lock file replaced while this process keeps its descriptor open', () => {
  requires('/proc');
  // Three cycles within 100 ms make the lock hot: its descriptor stays open
  // between holds, so the next lock goes through it without opening the path.
  const replacements: Record<string, (lockPath: string, dir: string) => void> = {
    deleted: (lockPath) => unlinkSync(lockPath),
    'replaced by a rename': (lockPath, dir) => {
      writeFileSync(join(dir, 'new'), '');
      renameSync(join(dir, 'new'), lockPath);
    },
    'renamed away and created anew': (lockPath, dir) => {
      renameSync(lockPath, join(dir, 'old'));
      writeFileSync(lockPath, '');
    },
  };
  const takers: Record<string, (path: string) => Promise<{ release(): unknown } | undefined>> = {
    tryLock: (path) => tryLock(path),
    tryLockSync: async (path) => tryLockSync(path),
  };

  for (const [what, replace] of Object.entries(replacements)) {
    for (const [name, take] of Object.entries(takers)) {
      it(`${what}: ${name} locks the file now at the path, not the one it kept open`, async () => {
        const dir = realpathSync(tempDir());
        const path = join(dir, 'db');
        const lockPath = path + '.lock';
        for (let i = 0; i < 3; i++) await withFileLock(path, () => {});
        expect(openFiles()).toContain(lockPath);
        replace(lockPath, dir);
        await agent.call('lock', { path });
        try {
          // The kept descriptor's file is free; the file at the path is not.
          expect(await take(path)).toBeUndefined();
        } finally {
          await agent.call('release', { path });
        }
        const held = (await take(path))!;
        expect(held).toBeDefined();
        expect(await agent.canLock(path)).toBe(false);
        await held.release();
      });
    }
  }
});
