import { writeFileSync, realpathSync } from 'node:fs';
import { getEventListeners } from 'node:events';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';

import { FileLockError, LockTimeoutError, lock, tryLock, withFileLock, type FileLock } from 'native-file-lock';

import { Agent, expectFree, settlesWithin, sleep, tempDir } from './helpers.js';

let agent: Agent;
beforeAll(async () => {
  agent = await Agent.start();
});
afterAll(async () => {
  await agent.stop();
});

function resource(): string {
  const path = join(tempDir(), 'data');
  writeFileSync(path, 'x');
  return path;
}

/** Who holds the lock while a waiter in this process is tested. */
interface Holder {
  take(path: string): Promise<void>;
  release(path: string): Promise<void>;
}

function inThisProcess(): Holder {
  const held = new Map<string, FileLock>();
  return {
    async take(path) {
      held.set(path, await lock(path));
    },
    async release(path) {
      await held.get(path)!.release();
      held.delete(path);
    },
  };
}

const inAnotherProcess: Holder = {
  async take(path) {
    await agent.call('lock', { path });
  },
  async release(path) {
    await agent.call('release', { path });
  },
};

describe('exclusion inside one process', () => {
  it('many concurrent withFileLock calls on one path never overlap', async () => {
    const path = resource();
    let holders = 0;
    let maxHolders = 0;
    let runs = 0;
    await Promise.all(
      Array.from({ length: 50 }, async (_, i) =>
        withFileLock(path, async () => {
          holders++;
          maxHolders = Math.max(maxHolders, holders);
          await new Promise((resolve) => setImmediate(resolve));
          if (i % 5 === 0) await sleep(1);
          await Promise.resolve();
          runs++;
          holders--;
        }),
      ),
    );
    expect(runs).toBe(50);
    expect(maxHolders).toBe(1);
  });

  it('lock(), tryLock() and withFileLock() exclude each other', async () => {
    const path = resource();
    let holders = 0;
    let maxHolders = 0;
    const critical = async () => {
      holders++;
      maxHolders = Math.max(maxHolders, holders);
      await sleep(1);
      holders--;
    };
    let tried = 0;
    await Promise.all(
      Array.from({ length: 30 }, async (_, i) => {
        if (i % 3 === 0) return withFileLock(path, critical);
        if (i % 3 === 1) {
          const fileLock = await lock(path);
          try {
            await critical();
          } finally {
            await fileLock.release();
          }
          return;
        }
        let fileLock: FileLock | undefined;
        while ((fileLock = await tryLock(path)) === undefined) await sleep(1);
        tried++;
        try {
          await critical();
        } finally {
          await fileLock.release();
        }
      }),
    );
    expect(maxHolders).toBe(1);
    expect(tried).toBe(10);
  });

  describe.each([
    ['this process', inThisProcess],
    ['another process', () => inAnotherProcess],
  ] as const)('while %s holds the lock', (_name, makeHolder) => {
    it('waiters in this process get it in the order they asked', async () => {
      const path = resource();
      const holder = makeHolder();
      await holder.take(path);
      const order: number[] = [];
      const waiters = Array.from({ length: 10 }, (_, i) =>
        withFileLock(path, async () => {
          order.push(i);
          await sleep(1);
        }),
      );
      await sleep(50);
      expect(order).toEqual([]);
      await holder.release(path);
      await Promise.all(waiters);
      expect(order).toEqual([0, 1, 2, 3, 4, 5, 6, 7, 8, 9]);
    });

    it('a wait with a timeout rejects with LockTimeoutError and holds nothing afterwards', async () => {
      const path = resource();
      const holder = makeHolder();
      await holder.take(path);
      let ran = false;
      const started = performance.now();
      const error = await withFileLock(path, () => {
        ran = true;
      }, { timeout: 300 }).catch((e: unknown) => e);
      const elapsed = performance.now() - started;
      expect(ran).toBe(false);
      expect(error).toBeInstanceOf(LockTimeoutError);
      expect(error).toBeInstanceOf(FileLockError);
      const timeout = error as LockTimeoutError;
      expect(timeout.code).toBe('ELOCKTIMEOUT');
      expect(timeout.name).toBe('LockTimeoutError');
      expect(timeout.path).toBe(realpathSync(path) + '.lock');
      expect(timeout.message).toContain(realpathSync(path) + '.lock');
      expect(timeout.message).toMatch(/\d+ ms/);
      expect(Number.isInteger(timeout.waited)).toBe(true);
      expect(timeout.message).toContain(`after ${timeout.waited} ms`);
      expect(timeout.waited).toBeGreaterThanOrEqual(280);
      expect(timeout.waited).toBeLessThan(5_000);
      expect(elapsed).toBeGreaterThanOrEqual(280);
      await holder.release(path);
      await expectFree(agent, path);
    });

    it.each([2 ** 31, 30 * 24 * 3600 * 1000, Number.MAX_SAFE_INTEGER])(
      'a timeout of %d ms, longer than a timer can run, waits for the lock instead of timing out at once',
      async (timeout) => {
        const path = resource();
        const holder = makeHolder();
        await holder.take(path);
        const waiting = withFileLock(path, () => 'ran', { timeout });
        expect(await settlesWithin(waiting, 300)).toBe('pending');
        await holder.release(path);
        await expect(waiting).resolves.toBe('ran');
      },
    );

    it('lock() with a timeout rejects the same way', async () => {
      const path = resource();
      const holder = makeHolder();
      await holder.take(path);
      await expect(lock(path, { timeout: 100 })).rejects.toMatchObject({ code: 'ELOCKTIMEOUT', name: 'LockTimeoutError' });
      await holder.release(path);
      await expectFree(agent, path);
    });

    it('timeout 0 makes one attempt and rejects at once', async () => {
      const path = resource();
      const holder = makeHolder();
      await holder.take(path);
      const attempt = withFileLock(path, () => 'ran', { timeout: 0 });
      expect(await settlesWithin(attempt, 5_000)).toBe('settled');
      await expect(attempt).rejects.toBeInstanceOf(LockTimeoutError);
      await holder.release(path);
      await expectFree(agent, path);
    });

    it('an abort during the wait rejects promptly with signal.reason and removes the listener', async () => {
      const path = resource();
      const holder = makeHolder();
      await holder.take(path);
      const controller = new AbortController();
      const { signal } = controller;
      let ran = false;
      const waiting = withFileLock(path, () => {
        ran = true;
      }, { signal });
      await sleep(100);
      expect(await settlesWithin(waiting, 0)).toBe('pending');
      controller.abort();
      const aborted = performance.now();
      const error = await waiting.catch((e: unknown) => e);
      expect(performance.now() - aborted).toBeLessThan(5_000); // the holder never lets go: any bound shows the abort ended it
      expect(error).toBe(signal.reason);
      expect((error as Error).name).toBe('AbortError');
      expect(ran).toBe(false);
      expect(getEventListeners(signal, 'abort')).toHaveLength(0);
      await holder.release(path);
      await expectFree(agent, path);
    });

    it('an abort with a custom reason rejects with that reason', async () => {
      const path = resource();
      const holder = makeHolder();
      await holder.take(path);
      const controller = new AbortController();
      const reason = new Error('shutting down');
      const waiting = lock(path, { signal: controller.signal, timeout: 30_000 });
      await sleep(50);
      controller.abort(reason);
      await expect(waiting).rejects.toBe(reason);
      expect(getEventListeners(controller.signal, 'abort')).toHaveLength(0);
      await holder.release(path);
      await expectFree(agent, path);
    });

    it('a signal that never aborts leaves no listener once the lock is granted', async () => {
      const path = resource();
      const holder = makeHolder();
      await holder.take(path);
      const controller = new AbortController();
      const waiting = withFileLock(path, () => 'ran', { signal: controller.signal });
      await sleep(50);
      await holder.release(path);
      await expect(waiting).resolves.toBe('ran');
      expect(getEventListeners(controller.signal, 'abort')).toHaveLength(0);
      await expectFree(agent, path);
    });
  });

  it('a waiter that times out does not block the waiters behind it', async () => {
    const path = resource();
    const held = await lock(path);
    const impatient = withFileLock(path, () => 'impatient', { timeout: 50 });
    const patient = withFileLock(path, () => 'patient');
    await expect(impatient).rejects.toBeInstanceOf(LockTimeoutError);
    await held.release();
    expect(await settlesWithin(patient, 5_000)).toBe('settled');
    await expect(patient).resolves.toBe('patient');
  });
});

describe('an already-aborted signal', () => {
  it('rejects with signal.reason even when the lock is free', async () => {
    const path = resource();
    const signal = AbortSignal.abort();
    let ran = false;
    const error = await withFileLock(path, () => {
      ran = true;
    }, { signal }).catch((e: unknown) => e);
    expect(error).toBe(signal.reason);
    expect(ran).toBe(false);
    await expectFree(agent, path);
  });

  it('rejects lock() and tryLock() with a custom reason', async () => {
    const path = resource();
    const reason = new Error('cancelled before we started');
    const signal = AbortSignal.abort(reason);
    await expect(lock(path, { signal })).rejects.toBe(reason);
    await expect(tryLock(path, { signal })).rejects.toBe(reason);
    expect(getEventListeners(signal, 'abort')).toHaveLength(0);
    await expectFree(agent, path);
  });

  it('rejects with a non-Error reason unchanged', async () => {
    const path = resource();
    const signal = AbortSignal.abort('just a string');
    await expect(withFileLock(path, () => 'ran', { signal })).rejects.toBe('just a string');
  });
});

describe('timeout 0', () => {
  it('takes a free lock', async () => {
    const path = resource();
    await expect(withFileLock(path, () => 'ran', { timeout: 0 })).resolves.toBe('ran');
    const fileLock = await lock(path, { timeout: 0 });
    expect(fileLock.released).toBe(false);
    await fileLock.release();
  });
});
