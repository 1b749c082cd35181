import { realpathSync } from 'node:fs';
import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';

import { LockTimeoutError, lock, tryLock, withFileLock, type FileLock } from 'native-file-lock';

import { Agent, fdCount, fdsOpenedSince, lockFds, openFiles, sleep, tempDir, waitFor, waitForLockFdsClosed, resourceIn } from './helpers.js';

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
      const handle = await tryLock(path);
      expect(handle).toBeDefined();
      await handle!.release();
    }
    // Contended in-process: fifty callers at a time, twenty rounds.
    for (let round = 0; round < 20; round++) {
      await Promise.all(Array.from({ length: 50 }, () => withFileLock(path, () => new Promise((resolve) => setImmediate(resolve)))));
    }

    expect(lockFds()).toEqual([lockPath]);
    expect(fdsOpenedSince(baseline)).toEqual([lockPath]);
    await expectBackToBaseline(baseline);
  });

  it('one descriptor per lock file, all closed once idle', async () => {
    const dir = tempDir();
    const paths = Array.from({ length: 300 }, (_, i) => resourceIn(dir, `data-${i}`));
    const baseline = openFiles();
    for (let cycle = 0; cycle < 3; cycle++) {
      for (const path of paths) await withFileLock(path, () => cycle);
    }
    expect(lockFds()).toHaveLength(paths.length);
    expect(fdsOpenedSince(baseline).sort()).toEqual(paths.map((path) => realpathSync(path) + '.lock').sort());
    await expectBackToBaseline(baseline);
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
