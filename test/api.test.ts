import { existsSync, mkdirSync, realpathSync, symlinkSync } from 'node:fs';
import { createRequire } from 'node:module';
import { inspect } from 'node:util';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';

import * as esm from 'native-file-lock';
import { lock, tryLock, withFileLock, FileLockError, LockTimeoutError } from 'native-file-lock';

import { Agent, expectFree, settlesWithin, sleep, tempDir, resourceIn } from './helpers.js';

// Another process is the only honest judge of whether a lock is still held:
// a tryLock in this process would reuse this process's own descriptor.
let agent: Agent;
beforeAll(async () => {
  agent = await Agent.start();
});
afterAll(async () => {
  await agent.stop();
});

describe('withFileLock', () => {
  it('resolves to the value a synchronous fn returns', async () => {
    const path = resourceIn(tempDir());
    await expect(withFileLock(path, () => 42)).resolves.toBe(42);
  });

  it('resolves to the value an asynchronous fn resolves to', async () => {
    const path = resourceIn(tempDir());
    const value = { answer: 42 };
    await expect(
      withFileLock(path, async () => {
        await sleep(5);
        return value;
      }),
    ).resolves.toBe(value);
  });

  it('holds the lock while fn runs, as seen from another process', async () => {
    const path = resourceIn(tempDir());
    const seen = await withFileLock(path, () => agent.canLock(path));
    expect(seen).toBe(false);
    expect(await agent.canLock(path)).toBe(true);
  });

  it('rethrows the very error a synchronous fn throws and releases the lock', async () => {
    const path = resourceIn(tempDir());
    const error = new Error('boom');
    const caught = await withFileLock(path, () => {
      throw error;
    }).catch((e: unknown) => e);
    expect(caught).toBe(error);
    await expectFree(agent, path);
  });

  it('rethrows the very error an asynchronous fn rejects with and releases the lock', async () => {
    const path = resourceIn(tempDir());
    const error = new RangeError('async boom');
    const caught = await withFileLock(path, async () => {
      await sleep(5);
      throw error;
    }).catch((e: unknown) => e);
    expect(caught).toBe(error);
    await expectFree(agent, path);
  });

  it('rethrows a thrown non-Error value unchanged', async () => {
    const path = resourceIn(tempDir());
    const thrown = { not: 'an error' };
    await expect(
      withFileLock(path, () => {
        throw thrown;
      }),
    ).rejects.toBe(thrown);
    expect(await agent.canLock(path)).toBe(true);
  });
});

describe('lock() and tryLock() held locks', () => {
  it('describe the lock file and the resource and report when released', async () => {
    const dir = tempDir();
    const path = resourceIn(dir);
    const fileLock = await lock(path);
    expect(fileLock.path).toBe(realpathSync(path) + '.lock');
    expect(fileLock.resource).toBe(path);
    expect(fileLock.released).toBe(false);
    await fileLock.release();
    expect(fileLock.released).toBe(true);
  });

  it('release is idempotent and a second release does not free a later holder', async () => {
    const path = resourceIn(tempDir());
    const first = await lock(path);
    await first.release();
    await expect(first.release()).resolves.toBeUndefined();
    const second = await lock(path);
    await first.release();
    expect(await agent.canLock(path)).toBe(false);
    await second.release();
    expect(await agent.canLock(path)).toBe(true);
  });

  it('await using releases the lock at the end of the block', async () => {
    const path = resourceIn(tempDir());
    {
      await using fileLock = await lock(path);
      expect(fileLock.released).toBe(false);
      expect(await agent.canLock(path)).toBe(false);
    }
    expect(await agent.canLock(path)).toBe(true);
  });

  it('Symbol.asyncDispose and Symbol.dispose release the lock', async () => {
    const path = resourceIn(tempDir());
    const a = await lock(path);
    await a[Symbol.asyncDispose]();
    expect(a.released).toBe(true);
    expect(await agent.canLock(path)).toBe(true);

    const b = (await tryLock(path))!;
    expect(b).toBeDefined();
    b[Symbol.dispose]();
    expect(b.released).toBe(true);
    expect(await agent.canLock(path)).toBe(true);
  });

  it('tryLock returns undefined while this process holds the lock', async () => {
    const path = resourceIn(tempDir());
    const held = await lock(path);
    await expect(tryLock(path)).resolves.toBeUndefined();
    await held.release();
    const again = await tryLock(path);
    expect(again).toBeDefined();
    await again!.release();
  });

  it('tryLock returns undefined at once while another process holds the lock', async () => {
    const path = resourceIn(tempDir());
    await agent.call('lock', { path });
    try {
      const attempt = tryLock(path);
      expect(await settlesWithin(attempt, 5_000)).toBe('settled');
      await expect(attempt).resolves.toBeUndefined();
    } finally {
      await agent.call('release', { path });
    }
    const fileLock = await tryLock(path);
    expect(fileLock).toBeDefined();
    await fileLock!.release();
  });

  it('tryLock does not wait even when given a timeout', async () => {
    const path = resourceIn(tempDir());
    const held = await lock(path);
    try {
      const attempt = tryLock(path, { timeout: 30_000 });
      expect(await settlesWithin(attempt, 5_000)).toBe('settled');
      await expect(attempt).resolves.toBeUndefined();
    } finally {
      await held.release();
    }
  });
});

describe('what a held lock shows', () => {
  it('has exactly the documented members, and no own properties', async () => {
    const fileLock = (await lock(resourceIn(tempDir())))!;
    try {
      expect(Reflect.ownKeys(fileLock)).toEqual([]);
      const members = new Set<PropertyKey>();
      for (let proto = Object.getPrototypeOf(fileLock); proto !== Object.prototype; proto = Object.getPrototypeOf(proto)) {
        for (const key of Reflect.ownKeys(proto)) members.add(key);
      }
      expect(members).toEqual(
        new Set<PropertyKey>([
          'constructor',
          'path',
          'resource',
          'shared',
          'released',
          'release',
          Symbol.asyncDispose,
          Symbol.dispose,
          'toJSON',
          inspect.custom,
        ]),
      );
      for (const internal of ['line', 'root', 'outer', 'holds', 'releaseSync', 'removeLockFile']) expect(internal in fileLock).toBe(false);
    } finally {
      await fileLock.release();
    }
  });

  it('released cannot be set from outside: strict code gets a TypeError, sloppy code is ignored, and release() still unlocks', async () => {
    const path = resourceIn(tempDir());
    const fileLock = await lock(path);
    expect(() => {
      (fileLock as { released: boolean }).released = true;
    }).toThrow(TypeError);
    // A Function body is sloppy-mode code, as in a plain CommonJS script.
    const sloppy = new Function('h', 'h.released = true; return h.released;') as (h: unknown) => boolean;
    expect(sloppy(fileLock)).toBe(false);
    expect(fileLock.released).toBe(false);
    expect(await agent.canLock(path)).toBe(false);
    await fileLock.release();
    expect(fileLock.released).toBe(true);
    expect(await agent.canLock(path)).toBe(true);
  });

  it('prints and serialises as { path, resource, shared, released }', async () => {
    const path = resourceIn(tempDir());
    const fileLock = await lock(path);
    const shown = { path: realpathSync(path) + '.lock', resource: path, shared: false, released: false };
    expect(JSON.parse(JSON.stringify(fileLock))).toEqual(shown);
    expect(JSON.stringify({ fileLock })).toBe(JSON.stringify({ fileLock: shown }));
    const printed = inspect(fileLock);
    expect(printed).toBe(`FileLock ${inspect(shown)}`);
    expect(inspect([fileLock], { depth: 0 })).toContain('FileLock');
    expect(printed).not.toMatch(/Circular|External|entry|root/);
    await fileLock.release();
    expect(JSON.parse(JSON.stringify(fileLock))).toEqual({ ...shown, released: true });
    expect(inspect(fileLock)).toContain('released: true');
  });
});

describe('the lock file', () => {
  it('is <realpath>.lock and survives release', async () => {
    const dir = tempDir();
    const path = resourceIn(dir);
    const expected = realpathSync(path) + '.lock';
    expect(existsSync(expected)).toBe(false);
    const fileLock = await lock(path);
    expect(fileLock.path).toBe(expected);
    expect(existsSync(expected)).toBe(true);
    await fileLock.release();
    expect(existsSync(expected)).toBe(true);
  });

  it('for a resource that does not exist is <realpath of parent>/<name>.lock', async () => {
    const dir = tempDir();
    const real = join(dir, 'real');
    mkdirSync(real);
    symlinkSync(real, join(dir, 'link'));
    const fileLock = await lock(join(dir, 'link', 'not-yet'));
    expect(fileLock.path).toBe(join(realpathSync(real), 'not-yet.lock'));
    expect(existsSync(join(real, 'not-yet'))).toBe(false);
    await fileLock.release();
  });

  it('can be chosen with lockfilePath, whose directory is resolved through symlinks', async () => {
    const dir = tempDir();
    const path = resourceIn(dir);
    const locks = join(dir, 'locks');
    mkdirSync(locks);
    symlinkSync(locks, join(dir, 'locks-link'));
    const fileLock = await lock(path, { lockfilePath: join(dir, 'locks-link', 'custom.lock') });
    expect(fileLock.path).toBe(join(realpathSync(locks), 'custom.lock'));
    expect(fileLock.resource).toBe(path);
    expect(existsSync(join(locks, 'custom.lock'))).toBe(true);
    expect(existsSync(path + '.lock')).toBe(false);
    expect(await agent.canLock(path, { lockfilePath: join(locks, 'custom.lock') })).toBe(false);
    // The default lock file of the same resource is a different, free lock.
    expect(await agent.canLock(path)).toBe(true);
    await fileLock.release();
    expect(await agent.canLock(path, { lockfilePath: join(locks, 'custom.lock') })).toBe(true);
  });

  it('given as lockfilePath is one lock for every resource that names it', async () => {
    const dir = tempDir();
    const shared = join(dir, 'shared.lock');
    const a = await lock(resourceIn(dir, 'a'), { lockfilePath: shared });
    await expect(tryLock(resourceIn(dir, 'b'), { lockfilePath: shared })).resolves.toBeUndefined();
    await a.release();
    const b = await tryLock(join(dir, 'b'), { lockfilePath: shared });
    expect(b).toBeDefined();
    await b!.release();
  });
});

describe('entry points', () => {
  const require = createRequire(import.meta.url);
  const cjs = require('native-file-lock') as typeof esm;

  it('ESM and CommonJS expose the same functions and error classes', async () => {
    const dynamic = (await import('native-file-lock')) as typeof esm;
    const names = ['lock', 'tryLock', 'withFileLock', 'FileLockError', 'LockTimeoutError', 'inspect', 'isLocked'];
    for (const mod of [esm, dynamic, cjs]) {
      for (const name of names) expect(typeof (mod as Record<string, unknown>)[name], name).toBe('function');
    }
    expect(Object.keys(cjs).sort()).toEqual(Object.keys(esm).sort());
    expect(Object.getPrototypeOf(LockTimeoutError)).toBe(FileLockError);
    expect(Object.getPrototypeOf(cjs.LockTimeoutError)).toBe(cjs.FileLockError);
  });

  it('both entry points are one copy of the library: the same functions and classes', () => {
    expect(cjs.FileLockError).toBe(FileLockError);
    expect(cjs.LockTimeoutError).toBe(LockTimeoutError);
    expect(cjs.withFileLock).toBe(withFileLock);
    expect(cjs.lock).toBe(lock);
    expect(cjs.tryLock).toBe(tryLock);
  });

  it('the CommonJS build locks and excludes a holder from the ESM build', async () => {
    const path = resourceIn(tempDir());
    await expect(cjs.withFileLock(path, () => 'cjs ran')).resolves.toBe('cjs ran');
    const held = await lock(path);
    try {
      await expect(cjs.tryLock(path)).resolves.toBeUndefined();
      const error = await cjs.withFileLock(path, () => 'must not run', { timeout: 50 }).catch((e: unknown) => e);
      expect(error).toBeInstanceOf(cjs.LockTimeoutError);
      expect(error).toBeInstanceOf(FileLockError);
    } finally {
      await held.release();
    }
    const viaCjs = await cjs.tryLock(path);
    expect(viaCjs).toBeDefined();
    expect(await agent.canLock(path)).toBe(false);
    await viaCjs!.release();
    expect(await agent.canLock(path)).toBe(true);
  });
});

describe('reentrancy', () => {
  it('a nested withFileLock on the same path inside fn runs at once', async () => {
    const path = resourceIn(tempDir());
    // A timeout turns a self-deadlock into a failure instead of a hang.
    const result = await withFileLock(path, () => withFileLock(path, () => 'inner', { timeout: 2_000 }), { timeout: 2_000 });
    expect(result).toBe('inner');
  });

  it('a nested call through another spelling of the path is reentrant too', async () => {
    const dir = tempDir();
    const path = resourceIn(dir);
    symlinkSync(path, join(dir, 'alias'));
    const result = await withFileLock(path, () => withFileLock(join(dir, 'alias'), () => 'inner', { timeout: 2_000 }));
    expect(result).toBe('inner');
  });

  it('only the outermost release frees the lock', async () => {
    const path = resourceIn(tempDir());
    const seen: boolean[] = [];
    await withFileLock(path, async () => {
      await withFileLock(path, async () => {
        seen.push(await agent.canLock(path));
      }, { timeout: 2_000 });
      // The inner call has ended; the outer one still holds the lock.
      seen.push(await agent.canLock(path));
    });
    seen.push(await agent.canLock(path));
    expect(seen).toEqual([false, false, true]);
  });

  it('a nested held lock that escapes the outer callback keeps the file locked until it is released', async () => {
    const path = resourceIn(tempDir());
    let escaped: Awaited<ReturnType<typeof lock>> | undefined;
    await withFileLock(path, async () => {
      escaped = await lock(path, { timeout: 2_000 });
    });
    expect(escaped!.released).toBe(false);
    expect(await agent.canLock(path)).toBe(false);
    await escaped!.release();
    expect(await agent.canLock(path)).toBe(true);
  });

  /**
   * Runs fn in a withFileLock on path nested in an outer one that returns
   * without awaiting it; resolves to fn's value, once the lock is free again.
   */
  async function inUnawaitedNested<T>(path: string, fn: () => Promise<T>, options = {}): Promise<T> {
    let inner: Promise<T> | undefined;
    await withFileLock(path, () => {
      inner = withFileLock(path, fn, options);
    });
    const value = await inner!;
    expect(await agent.canLock(path)).toBe(true);
    return value;
  }

  it('a nested withFileLock that is not awaited still runs under the lock after the outer call ended', async () => {
    const path = resourceIn(tempDir());
    const seen = await inUnawaitedNested(path, async () => {
      await sleep(50);
      return agent.canLock(path);
    }, { timeout: 2_000 });
    expect(seen).toBe(false);
  });

  it('a same-path call inside a nested fn that the outer fn did not await runs at once, at any depth', async () => {
    const path = resourceIn(tempDir());
    const seen = await inUnawaitedNested(path, async () => {
      await sleep(10); // the outer fn has returned by now
      return withFileLock(path, async () => {
        await sleep(10);
        const deepest = await withFileLock(path, () => 'ran', { timeout: 2_000 });
        return [deepest, await agent.canLock(path)];
      }, { timeout: 2_000 });
    }, { timeout: 2_000 });
    expect(seen).toEqual(['ran', false]);
  });

  it('lock() and tryLock() inside a non-awaited nested fn are reentrant too', async () => {
    const path = resourceIn(tempDir());
    const seen = await inUnawaitedNested(path, async () => {
      await sleep(10);
      const viaLock = await lock(path, { timeout: 2_000 });
      const viaTry = await tryLock(path);
      const held = [viaLock.released, viaTry?.released];
      await viaTry?.release();
      await viaLock.release();
      return [...held, await agent.canLock(path)];
    });
    expect(seen).toEqual([false, false, false]);
  });

  it('a nested error propagates through the outer call and still releases the lock', async () => {
    const path = resourceIn(tempDir());
    const error = new Error('inner failure');
    const caught = await withFileLock(path, () =>
      withFileLock(path, () => {
        throw error;
      }, { timeout: 2_000 }),
    ).catch((e: unknown) => e);
    expect(caught).toBe(error);
    expect(await agent.canLock(path)).toBe(true);
  });

  it('a nested withFileLock on a different path locks that path and releases it on return', async () => {
    const dir = tempDir();
    const a = resourceIn(dir, 'a');
    const b = resourceIn(dir, 'b');
    const seen: Record<string, boolean> = {};
    await withFileLock(a, async () => {
      await withFileLock(b, async () => {
        seen.aInside = await agent.canLock(a);
        seen.bInside = await agent.canLock(b);
      }, { timeout: 2_000 });
      seen.aAfterInner = await agent.canLock(a);
      seen.bAfterInner = await agent.canLock(b);
    });
    expect(seen).toEqual({ aInside: false, bInside: false, aAfterInner: false, bAfterInner: true });
    expect(await agent.canLock(a)).toBe(true);
  });

  it('a continuation created inside fn that runs after fn ended waits for the lock like anyone else', async () => {
    const path = resourceIn(tempDir());
    const events: string[] = [];
    let open!: () => void;
    const gate = new Promise<void>((resolve) => (open = resolve));
    let later!: Promise<void>;
    await withFileLock(path, () => {
      // The continuation inherits fn's async context but runs after fn's lock is gone.
      later = gate.then(() =>
        withFileLock(path, () => {
          events.push('continuation ran');
        }, { timeout: 10_000 }),
      );
    });
    const other = await lock(path);
    events.push('other holder took the lock');
    open();
    await sleep(200);
    events.push('other holder releases');
    await other.release();
    await later;
    expect(events).toEqual(['other holder took the lock', 'other holder releases', 'continuation ran']);
  });

  it('a timer set inside fn that fires after fn ended waits for the lock like anyone else', async () => {
    const path = resourceIn(tempDir());
    const events: string[] = [];
    let open!: () => void;
    const gate = new Promise<void>((resolve) => (open = resolve));
    let later!: Promise<void>;
    await withFileLock(path, () => {
      later = new Promise<void>((resolve, reject) => {
        setTimeout(async () => {
          await gate;
          withFileLock(path, () => {
            events.push('timer callback ran');
          }, { timeout: 10_000 }).then(resolve, reject);
        }, 0);
      });
    });
    await agent.call('lock', { path });
    events.push('another process took the lock');
    open();
    await sleep(200);
    events.push('another process releases');
    await agent.call('release', { path });
    await later;
    expect(events).toEqual(['another process took the lock', 'another process releases', 'timer callback ran']);
  });
});
