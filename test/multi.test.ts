import { mkdirSync, readFileSync, realpathSync, writeFileSync } from 'node:fs';
import { getEventListeners } from 'node:events';
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';
import { describe, expect, it } from 'vitest';

import { FileLockError, lock, lockAll, tryLockAll, withFileLock, withFileLocks, type FileLocks } from 'native-file-lock';

import { agentForFile, expectFree, fixture, lockFds, lockFileOf, overlapsIn, Proc, resourceIn, runNode, skipWithout, tempDir } from './helpers.js';
import { letGo, runFlock } from './peers.js';

const agent = agentForFile();

/** Three resources in a fresh directory, named so that a, b, c is their canonical order. */
function threePaths(): [string, string, string] {
  const dir = tempDir();
  return [resourceIn(dir, 'a'), resourceIn(dir, 'b'), resourceIn(dir, 'c')];
}

/** flock(1) holding path's lock file until a line arrives on its stdin (or the test ends). */
async function flockHolds(path: string): Promise<Proc> {
  const peer = runFlock([lockFileOf(path), 'sh', '-c', 'echo locked; read line']);
  await peer.waitForOutput('locked');
  return peer;
}

async function expectAllFree(paths: readonly string[]): Promise<void> {
  for (const path of paths) await expectFree(agent(), path);
}

describe('several locks at once', () => {
  it('four processes taking random orders of three paths thousands of times never deadlock and never overlap', async (ctx) => {
    skipWithout(ctx, 'posix');
    const paths = threePaths();
    const log = join(tempDir(), 'log');
    writeFileSync(log, '');
    const ROUNDS = 750;
    const workers = Array.from({ length: 4 }, () => runNode(fixture('multi-worker.mjs'), ['sets', log, String(ROUNDS), ...paths]));
    await Promise.all(workers.map((w) => w.waitForOutput('ready')));
    for (const w of workers) w.child.stdin!.write('go\n');
    await Promise.all(workers.map((w) => w.succeeded()));
    const results = workers.map((w) => JSON.parse(/done (.*)/.exec(w.stdout)![1]!) as { rounds: number; timeouts: number });
    expect(results.reduce((n, r) => n + r.rounds, 0)).toBe(4 * ROUNDS);
    expect(results.map((r) => r.timeouts)).toEqual([0, 0, 0, 0]);
    const { overlaps, sections } = overlapsIn(readFileSync(log, 'utf8'));
    expect(overlaps).toBe(0);
    // 2 or 3 paths a round.
    expect(sections).toBeGreaterThanOrEqual(4 * ROUNDS * 2);
  }, 180_000);

  it('takes the locks in one canonical order whatever order the paths are given in, and merges duplicates', async () => {
    const [a, b, c] = threePaths();
    const first = await lockAll([c, a, b, a]);
    const order = first.locks.map((l) => l.path);
    await first.release();
    const second = await lockAll([b, pathToFileURL(c), Buffer.from(a), join(a, '..', '.', 'a')]);
    expect(second.locks.map((l) => l.path)).toEqual(order);
    expect(order).toEqual([a, b, c].map(lockFileOf));
    await second.release();
  });

  it('lockAll returns locks held together: each readable, release() releases all once, released turns true', async () => {
    const paths = threePaths();
    const held: FileLocks = await lockAll(paths);
    expect(held.locks).toHaveLength(3);
    expect(held.released).toBe(false);
    for (const path of paths) expect(await agent().canLock(path)).toBe(false);
    await held.release();
    expect(held.released).toBe(true);
    expect(held.locks.every((l) => l.released)).toBe(true);
    await held.release();
    await expectAllFree(paths);
  });

  it('await using releases every lock at the end of the block', async () => {
    const paths = threePaths();
    {
      await using held = await lockAll(paths);
      expect(held.locks).toHaveLength(3);
      expect(await agent().canLock(paths[1])).toBe(false);
    }
    await expectAllFree(paths);
  });

  it('withFileLocks runs fn holding every lock, returns its value, and releases them all when fn throws', async () => {
    const paths = threePaths();
    expect(await withFileLocks(paths, async () => (await agent().canLock(paths[2])) ? 'free' : 'held')).toBe('held');
    await expectAllFree(paths);
    await expect(
      withFileLocks(paths, () => {
        throw new Error('boom');
      }),
    ).rejects.toThrow('boom');
    await expectAllFree(paths);
  });

  it('on a timeout, with a flock(1) peer holding one path, nothing is left held or open', async (ctx) => {
    skipWithout(ctx, 'flock(1)', '/proc');
    const paths = threePaths();
    await flockHolds(paths[1]);
    const error = await lockAll(paths, { timeout: 200 }).catch((e: unknown) => e);
    expect(error).toBeInstanceOf(FileLockError);
    expect((error as FileLockError).code).toBe('ELOCKTIMEOUT');
    expect((error as FileLockError).path).toBe(lockFileOf(paths[1]));
    await expectAllFree([paths[0], paths[2]]);
    expect(lockFds()).toEqual([]);
  });

  it('one deadline covers the whole set: a path freed late does not restart the clock for the next', async (ctx) => {
    skipWithout(ctx, 'flock(1)');
    const paths = threePaths();
    // a is freed after 700 ms, c stays held: with a fresh 1,000 ms per path
    // the call would give up at about 1,700 ms.
    runFlock([lockFileOf(paths[0]), 'sleep', '0.7']);
    await flockHolds(paths[2]);
    const started = performance.now();
    await expect(withFileLocks(paths, () => 'ran', { timeout: 1000 })).rejects.toMatchObject({ code: 'ELOCKTIMEOUT' });
    expect(performance.now() - started).toBeLessThan(1600);
    await expectAllFree(paths.slice(0, 2));
  });

  it('on an abort, with a flock(1) peer holding one path, rejects with the reason and holds nothing', async (ctx) => {
    skipWithout(ctx, 'flock(1)', '/proc');
    const paths = threePaths();
    await flockHolds(paths[2]);
    const controller = new AbortController();
    const pending = withFileLocks(paths, () => 'ran', { signal: controller.signal });
    setTimeout(() => controller.abort(new Error('stop')), 100);
    await expect(pending).rejects.toThrow('stop');
    await expectAllFree(paths.slice(0, 2));
    expect(lockFds()).toEqual([]);
    const aborted = AbortSignal.abort(new Error('before'));
    await expect(lockAll(paths.slice(0, 2), { signal: aborted })).rejects.toThrow('before');
  });

  it('leaves no abort listener on the signal, whether the set was taken, timed out or failed', async () => {
    const [a, b, c] = threePaths();
    const controller = new AbortController();
    const { signal } = controller;
    await withFileLocks([a, b, c], () => undefined, { signal });
    const held = await lockAll([a, b], { signal });
    await expect(lockAll([b, c], { signal, timeout: 50 })).rejects.toMatchObject({ code: 'ELOCKTIMEOUT' });
    await held.release();
    await (await tryLockAll([a, c], { signal }))!.release();
    expect(getEventListeners(signal, 'abort')).toHaveLength(0);
  });

  it('on an error with one path, the locks already taken are released', async () => {
    const dir = tempDir();
    const paths = [resourceIn(dir, 'a'), resourceIn(dir, 'b'), join(dir, 'z')];
    mkdirSync(join(dir, 'z.lock')); // sorts last: a and b are held when it fails
    const error = await lockAll(paths).catch((e: unknown) => e);
    expect((error as FileLockError).code).toBe('EISDIR');
    await expectAllFree(paths.slice(0, 2));
  });

  it('tryLockAll takes all or nothing: undefined while a flock(1) peer holds one path, all once it is free', async (ctx) => {
    skipWithout(ctx, 'flock(1)');
    const paths = threePaths();
    const peer = await flockHolds(paths[1]);
    expect(await tryLockAll(paths)).toBeUndefined();
    await expectAllFree([paths[0], paths[2]]);
    await letGo(peer);
    const held = await tryLockAll(paths);
    expect(held?.locks).toHaveLength(3);
    await held!.release();
  });

  it('tryLockAll answers undefined when this thread holds one of the paths', async () => {
    const paths = threePaths();
    const one = await lock(paths[2]);
    expect(await tryLockAll(paths)).toBeUndefined();
    await one.release();
    await expectAllFree(paths);
  });

  it('is reentrant with locks the enclosing fn holds, and fn sees every lock of the set as held', async () => {
    const [a, b, c] = threePaths();
    const ran = await withFileLock(b, () =>
      withFileLocks([c, b, a], async () => {
        // Each of these would wait forever if it were not reentrant.
        await withFileLock(a, () => undefined, { timeout: 1000 });
        const inner = await lock(c, { timeout: 1000 });
        await inner.release();
        return withFileLocks([a, c], () => 'nested', { timeout: 1000 });
      }),
    );
    expect(ran).toBe('nested');
    await expectAllFree([a, b, c]);
  });

  it('refuses bad arguments with a TypeError or RangeError naming what is wrong, holding nothing', async () => {
    const [a, b] = threePaths();
    const cases: [unknown, unknown, RegExp][] = [
      [a, undefined, /paths must be an array \(or iterable\) of paths, got string/],
      [new URL(`file://${a}`), undefined, /paths must be an array/],
      [undefined, undefined, /paths must be an array \(or iterable\) of paths, got undefined/],
      [42, undefined, /paths must be an array/],
      [[], undefined, /paths must name at least one path/],
      [[a, 42], undefined, /paths\[1\] must be a string, a file: URL or a Buffer, got number 42/],
      [[{ path: a, bogus: 1 }], undefined, /Unknown key 'bogus' in paths\[0\]/],
      [[{ path: a, shared: 'yes' }], undefined, /paths\[0\]\.shared must be a boolean/],
      [[{ lockfilePath: b }], undefined, /paths\[0\]\.path must be a string/],
      [[a, b], { lockfilePath: b }, /options\.lockfilePath names one lock file/],
      [[a, b], { timeout: -1 }, /options\.timeout must be a non-negative number/],
      [[a, b], { removeLockFile: 1 }, /options\.removeLockFile must be a boolean/],
    ];
    for (const [paths, options, message] of cases) {
      await expect(lockAll(paths as string[], options as object), String(message)).rejects.toThrow(message);
      await expect(tryLockAll(paths as string[], options as object)).rejects.toThrow(message);
      await expect(withFileLocks(paths as string[], () => 1, options as object)).rejects.toThrow(message);
    }
    await expect(withFileLocks([a], 'fn' as never)).rejects.toThrow(/fn must be a function, got string/);
    await expectAllFree([a, b]);
  });

  it('takes shared locks for { path, shared: true } entries; duplicates are shared only if every entry for the path is', async () => {
    const [a, b, c] = threePaths();
    const held = await lockAll([{ path: a, shared: true }, b, { path: c, shared: true }, c]);
    expect(held.locks.map((l) => l.shared)).toEqual([true, false, false]);
    expect(await agent().canLock(a, { shared: true })).toBe(true);
    expect(await agent().canLock(a)).toBe(false);
    expect(await agent().canLock(b, { shared: true })).toBe(false);
    expect(await agent().canLock(c, { shared: true })).toBe(false);
    // Another set reading a holds it at the same time, in this thread too.
    const reader = await tryLockAll([{ path: a, shared: true }]);
    expect(reader?.locks[0]?.shared).toBe(true);
    await reader!.release();
    await held.release();
    await expectAllFree([a, b, c]);
  });

  it('accepts any iterable of paths and entries with their own lock file', async () => {
    const [a, b] = threePaths();
    const other = join(tempDir(), 'elsewhere.lck');
    const entries = new Set<string | { path: string; lockfilePath?: string }>([a, { path: b, lockfilePath: other }]);
    const held = await lockAll(entries);
    expect(held.locks.map((l) => l.path).sort()).toEqual([lockFileOf(a), realpathSync(other)].sort());
    expect(await agent().canLock(b, { lockfilePath: other })).toBe(false);
    await held.release();
  });
});
