import { spawnSync } from 'node:child_process';
import { realpathSync } from 'node:fs';
import { createRequire } from 'node:module';
import { constants } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';

import { LockTimeoutError, lock, tryLock, withFileLock, type FileLock } from 'native-file-lock';

import { Agent, Proc, fixture, fdCount, runNode, fdsOpenedSince, lockFds, openFiles, requires, skipWithout, sleep, tempDir, waitFor, waitForLockFdsClosed, resourceIn } from './helpers.js';

// Descriptors are counted in /proc.
requires('/proc');

let agent: Agent;
beforeAll(async () => {
  agent = await Agent.start();
});
afterAll(async () => {
  await agent.stop();
});

// Each test starts once the previous test's cached descriptors are gone, so
// that its own baseline is exact.
beforeEach(async () => {
  await waitForLockFdsClosed();
});

const require = createRequire(import.meta.url);
/** The addon itself, as the library loads it (for calls the public API makes on a timer). */
const BINDING = require.resolve('../dist/cjs/binding.cjs');

/** Hot lock files whose descriptors the addon keeps open at most (README, "Guarantees and limits"). */
const KEPT_MAX = 16;

/** The idle sweep closes cached descriptors within about two seconds; allow three times that. */
async function expectBackToBaseline(baseline: string[]): Promise<void> {
  await waitFor(() => lockFds().length === 0, `cached lock-file descriptors to be closed (open: ${lockFds().join(', ')})`, 6_000, 50);
  expect(fdsOpenedSince(baseline)).toEqual([]);
  expect(fdCount()).toBeLessThanOrEqual(baseline.length);
}

describe('descriptors', () => {
  it('thousands of lock cycles on one path keep at most one descriptor, closed once idle', async () => {
    const path = resourceIn(tempDir());
    const lockPath = realpathSync(path) + '.lock';
    const baseline = openFiles();

    for (let i = 0; i < 1_000; i++) await withFileLock(path, () => i);
    for (let i = 0; i < 1_000; i++) await (await lock(path)).release();
    for (let i = 0; i < 1_000; i++) {
      const fileLock = await tryLock(path);
      expect(fileLock).toBeDefined();
      await fileLock!.release();
    }
    // Contended in-process: fifty callers at a time, twenty rounds.
    for (let round = 0; round < 20; round++) {
      await Promise.all(Array.from({ length: 50 }, () => withFileLock(path, () => new Promise((resolve) => setImmediate(resolve)))));
    }

    expect(lockFds()).toEqual([lockPath]);
    expect(fdsOpenedSince(baseline)).toEqual([lockPath]);
    await expectBackToBaseline(baseline);
  });

  it('many lock files used in turn keep at most 16 descriptors open, however hot, even when timers never run, and none once idle', async () => {
    const dir = tempDir();
    const paths = Array.from({ length: 3 * KEPT_MAX }, (_, i) => resourceIn(dir, `data-${i}`));
    const lockPaths = new Set(paths.map((path) => realpathSync(path) + '.lock'));
    const baseline = openFiles();
    let most = 0;
    // A tight loop: every await resolves at once, so no timer runs in between.
    for (let cycle = 0; cycle < 3; cycle++) {
      for (const path of paths) {
        await withFileLock(path, () => cycle);
        most = Math.max(most, lockFds().length);
      }
    }
    expect(most).toBeLessThanOrEqual(KEPT_MAX);
    expect(fdsOpenedSince(baseline).every((target) => lockPaths.has(target))).toBe(true);
    await expectBackToBaseline(baseline);
  });

  it('closes a cold lock\'s descriptor as it is released: withFileLock, lock and tryLock', async () => {
    const dir = tempDir();
    const baseline = openFiles();
    const seen: number[] = [];
    const a = resourceIn(dir, 'a');
    await withFileLock(a, () => seen.push(lockFds().length));
    expect(lockFds()).toEqual([]);
    // Used again at once: still not hot.
    await withFileLock(a, () => seen.push(lockFds().length));
    expect(lockFds()).toEqual([]);
    const held = await lock(resourceIn(dir, 'b'));
    seen.push(lockFds().length);
    await held.release();
    expect(lockFds()).toEqual([]);
    const tried = await tryLock(resourceIn(dir, 'c'));
    seen.push(lockFds().length);
    await tried!.release();
    expect(lockFds()).toEqual([]);
    expect(seen).toEqual([1, 1, 1, 1]);
    expect(fdsOpenedSince(baseline)).toEqual([]);
  });

  it('a cold lock found busy leaves no descriptor behind', async () => {
    const path = resourceIn(tempDir());
    await agent.call('lock', { path });
    await expect(tryLock(path)).resolves.toBeUndefined();
    expect(lockFds()).toEqual([]);
    await agent.call('release', { path });
  });

  it('a lock file that is used again after the sweep is reopened and still locks', async () => {
    const path = resourceIn(tempDir());
    await withFileLock(path, () => 'first');
    await waitForLockFdsClosed();
    const seen = await withFileLock(path, () => agent.canLock(path));
    expect(seen).toBe(false);
    expect(await agent.canLock(path)).toBe(true);
  });

  it('lock cycles that wait on another process do not accumulate descriptors', async () => {
    const path = resourceIn(tempDir());
    const baseline = openFiles();
    for (let i = 0; i < 20; i++) {
      await agent.call('lock', { path });
      const waiting = withFileLock(path, () => i);
      await sleep(2);
      await agent.call('release', { path });
      await expect(waiting).resolves.toBe(i);
    }
    expect(lockFds()).toHaveLength(1);
    await expectBackToBaseline(baseline);
  });
});

describe.each([
  ['this process', false],
  ['another process', true],
] as const)('waiters that give up while %s holds the lock', (_name, remote) => {
  it('leave nothing held, and no descriptor once idle', async () => {
    const path = resourceIn(tempDir());
    const baseline = openFiles();
    let local: FileLock | undefined;
    if (remote) await agent.call('lock', { path });
    else local = await lock(path);

    for (let i = 0; i < 20; i++) {
      await expect(withFileLock(path, () => 'ran', { timeout: 5 })).rejects.toBeInstanceOf(LockTimeoutError);
      await expect(lock(path, { timeout: 0 })).rejects.toBeInstanceOf(LockTimeoutError);
      const controller = new AbortController();
      const waiting = lock(path, { signal: controller.signal });
      setTimeout(() => controller.abort(), 3);
      const reason = await waiting.catch((e: unknown) => e);
      expect(reason).toBe(controller.signal.reason);
      expect((reason as Error).name).toBe('AbortError');
      await expect(tryLock(path)).resolves.toBeUndefined();
    }

    if (remote) await agent.call('release', { path });
    else await local!.release();
    // Another process takes the lock at once: none of the waiters kept it.
    expect(await agent.canLock(path)).toBe(true);
    expect(lockFds().length).toBeLessThanOrEqual(1);
    await expectBackToBaseline(baseline);
  });
});

describe('the idle sweep', () => {
  it('never makes a free lock look busy, even with sweeps that close its descriptor back to back from another thread', async () => {
    // In a child whose idle time is 0, so that every sweep closes the kept
    // descriptor whenever nobody holds it and each attempt races a close.
    const child = runNode(fixture('sweep-race.mjs'), [resourceIn(tempDir()), '20000'], {
      env: { ...process.env, NATIVE_FILE_LOCK_TEST_IDLE_MS: '0' },
    });
    await child.succeeded();
    const result = JSON.parse(/^result (.*)$/m.exec(child.stdout)![1]!) as Record<string, number>;
    expect({ busy: result.busy, timeouts: result.timeouts }).toEqual({ busy: 0, timeouts: 0 });
    expect(result.sweeps).toBeGreaterThanOrEqual(20_000);
    // The race was run: sweeps found the descriptor kept while in use, and closed it in between.
    expect(result.inUse).toBeGreaterThan(0);
    expect(result.closing).toBeGreaterThan(1_000);
  });
});

describe('results of the addon', () => {
  it('a failed acquisition returns the failing system call with the error, not in a second call that another thread could overtake', () => {
    const binding = require(BINDING);
    const lockPath = join(tempDir(), 'missing-dir', 'data.lock');
    const slot = binding.slot(lockPath);
    expect(binding.acquire(slot, false, false)).toEqual({ errno: -constants.errno.ENOENT, syscall: 'open' });
    expect(binding.lastSyscall).toBeUndefined();
  });
});

describe('nothing stays open after a cold lock is released', () => {
  it('a tmpfs can be unmounted (not lazily) right after withFileLock on it returns', async (ctx) => {
    skipWithout(ctx, 'mount');
    const mountPoint = tempDir('nfl-umount-');
    expect(spawnSync('mount', ['-t', 'tmpfs', '-o', 'size=1m', 'tmpfs', mountPoint]).status).toBe(0);
    let mounted = true;
    try {
      const takes = [(path: string) => withFileLock(path, () => 'done'), async (path: string) => (await lock(path)).release()];
      for (const [i, take] of takes.entries()) {
        await take(resourceIn(mountPoint, `data-${i}`));
        const umount = spawnSync('umount', [mountPoint], { encoding: 'utf8' });
        expect(umount.stderr).toBe('');
        expect(umount.status).toBe(0);
        mounted = false;
        expect(spawnSync('mount', ['-t', 'tmpfs', '-o', 'size=1m', 'tmpfs', mountPoint]).status).toBe(0);
        mounted = true;
      }
    } finally {
      if (mounted) spawnSync('umount', ['-l', mountPoint]);
    }
  });

  it('10,000 distinct lock files locked in a tight loop under a 256-descriptor limit never fail, and the descriptor count stays bounded', async () => {
    const dir = tempDir();
    const child = new Proc('bash', ['-c', 'ulimit -n 256 && exec "$0" "$@"', process.execPath, fixture('many-locks.mjs'), dir, '10000']);
    await child.succeeded();
    const line = child.stdout.split('\n').find((l) => l.startsWith('RESULT '));
    expect(line, child.stdout + child.stderr).toBeDefined();
    const result = JSON.parse(line!.slice('RESULT '.length)) as { locked: number; before: number; most: number; after: number; error?: string };
    expect(result.error).toBeUndefined();
    expect(result.locked).toBe(10_000);
    expect(result.most).toBeLessThanOrEqual(result.before + KEPT_MAX);
    expect(result.after).toBeLessThanOrEqual(result.before + KEPT_MAX);
  });
});
