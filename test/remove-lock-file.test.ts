import { appendFileSync, existsSync, readdirSync, readFileSync, renameSync, statSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';

import { lock, lockAll, tryLock, withFileLock, withFileLocks } from 'native-file-lock';

import { Agent, fixture, overlapsIn, Proc, resourceIn, runNode, sleep, skipWithout, tempDir, waitFor } from './helpers.js';

let agent: Agent;
beforeAll(async () => {
  agent = await Agent.start();
});
afterAll(async () => {
  await agent.stop();
});

const lockFilesIn = (dir: string) => readdirSync(dir).filter((name) => name.endsWith('.lock'));

describe('removeLockFile', () => {
  it('deletes the lock file at release; without it the lock file stays', async () => {
    const dir = tempDir();
    const path = resourceIn(dir);
    await withFileLock(path, () => expect(existsSync(`${path}.lock`)).toBe(true), { removeLockFile: true });
    expect(lockFilesIn(dir)).toEqual([]);
    const held = await lock(path, { removeLockFile: true });
    await held.release();
    expect(lockFilesIn(dir)).toEqual([]);
    await withFileLock(path, () => undefined);
    expect(lockFilesIn(dir)).toEqual(['data.lock']);
  });

  it('a cache that locks 5,000 keys once each with removeLockFile leaves 0 lock files', async () => {
    const dir = tempDir();
    for (let k = 0; k < 5000; k++) {
      await withFileLock(join(dir, `key${k}`), () => undefined, { removeLockFile: true });
    }
    expect(lockFilesIn(dir)).toHaveLength(0);
    // The same cache without the option keeps one lock file per key.
    for (let k = 0; k < 50; k++) await withFileLock(join(dir, `key${k}`), () => undefined);
    expect(lockFilesIn(dir)).toHaveLength(50);
  });

  it('withFileLocks and lockAll remove every lock file of the set', async () => {
    const dir = tempDir();
    const paths = ['a', 'b', 'c'].map((name) => join(dir, name));
    await withFileLocks(paths, () => expect(lockFilesIn(dir)).toHaveLength(3), { removeLockFile: true });
    expect(lockFilesIn(dir)).toEqual([]);
    const held = await lockAll(paths, { removeLockFile: true });
    await held.release();
    expect(lockFilesIn(dir)).toEqual([]);
  });

  it('deletes the lock file only if its path still names the file that was locked', async (ctx) => {
    skipWithout(ctx, 'posix');
    const dir = tempDir();
    const path = resourceIn(dir);
    const held = await lock(path, { removeLockFile: true });
    // Someone replaced the lock file while it was held: theirs is not ours to delete.
    renameSync(`${path}.lock`, join(dir, 'moved'));
    writeFileSync(`${path}.lock`, '');
    const replacement = statSync(`${path}.lock`).ino;
    await held.release();
    expect(statSync(`${path}.lock`).ino).toBe(replacement);
    // Already gone at release: nothing to delete, no error.
    const again = await lock(path, { removeLockFile: true });
    renameSync(`${path}.lock`, join(dir, 'moved2'));
    await again.release();
    expect(existsSync(`${path}.lock`)).toBe(false);
  });

  it('a process waiting for the lock gets it on a new lock file, and holds it exclusively', async () => {
    const dir = tempDir();
    const path = resourceIn(dir);
    const held = await lock(path, { removeLockFile: true });
    const waiting = agent.call('lock', { path, options: { timeout: 10_000 } });
    await sleep(100);
    await held.release();
    await waiting;
    // (A new file may reuse the deleted one's inode number: only the name can be checked.)
    expect(existsSync(`${path}.lock`)).toBe(true);
    expect(await tryLock(path)).toBeUndefined();
    await agent.call('release', { path });
    expect(existsSync(`${path}.lock`)).toBe(true);
  });

  it('a nested call asking for removal deletes the lock file at the last release', async () => {
    const dir = tempDir();
    const path = resourceIn(dir);
    await withFileLock(path, async () => {
      await withFileLock(path, () => undefined, { removeLockFile: true });
      expect(lockFilesIn(dir)).toEqual(['data.lock']);
      expect(await agent.canLock(path)).toBe(false);
    });
    expect(lockFilesIn(dir)).toEqual([]);
  });

  it('a shared holder deletes the lock file only when no other holder is left, in this process or another', async () => {
    const dir = tempDir();
    const path = resourceIn(dir);
    await agent.call('lock', { path, options: { shared: true } });
    const first = await lock(path, { shared: true, removeLockFile: true });
    const second = await lock(path, { shared: true });
    await first.release();
    await second.release();
    expect(lockFilesIn(dir)).toEqual(['data.lock']);
    const mine = await lock(path, { shared: true, removeLockFile: true });
    await mine.release();
    // The agent still holds it shared: a writer is still kept out.
    expect(lockFilesIn(dir)).toEqual(['data.lock']);
    expect(await tryLock(path)).toBeUndefined();
    await agent.call('release', { path });
    const alone = await lock(path, { shared: true, removeLockFile: true });
    await alone.release();
    expect(lockFilesIn(dir)).toEqual([]);
  });

  it('refuses a removeLockFile that is not a boolean', async () => {
    const path = resourceIn(tempDir());
    await expect(lock(path, { removeLockFile: 'yes' as never })).rejects.toThrow(/options\.removeLockFile must be a boolean, got string "yes"/);
    expect(await agent.canLock(path)).toBe(true);
  });

  it('processes locking (exclusive and shared), timing out and being killed (SIGKILL) while holding never overlap, and leave no lock file', async (ctx) => {
    skipWithout(ctx, 'linux');
    const dir = tempDir();
    const log = join(tempDir(), 'log');
    writeFileSync(log, '');
    const KEYS = 8;
    const start = async () => {
      const worker = runNode(fixture('multi-worker.mjs'), ['keys', log, dir, String(KEYS)]);
      await worker.waitForOutput('ready');
      worker.child.stdin!.write('go\n');
      return worker;
    };
    const workers: Proc[] = await Promise.all(Array.from({ length: 4 }, start));
    const replacements: Promise<Proc>[] = [];
    let kills = 0;
    const started = Date.now();
    // At least 3 s and 16 kills, whatever the machine's load.
    while (kills < 16 || Date.now() - started < 3000) {
      await sleep(100 + Math.random() * 100);
      const victim = workers.splice(Math.floor(Math.random() * workers.length), 1)[0]!;
      // Stopped first, so that nothing it writes can follow the K line.
      victim.kill('SIGSTOP');
      await waitFor(() => readFileSync(`/proc/${victim.pid}/stat`, 'utf8').split(') ')[1]!.startsWith('T'), 'the victim to stop', 5000, 1);
      appendFileSync(log, `K ${victim.pid}\n`);
      victim.kill('SIGKILL');
      await victim.exited;
      kills++;
      replacements.push(start());
      // Keep at least two running while replacements start up.
      while (workers.length < 2) workers.push(await replacements.shift()!);
    }
    workers.push(...(await Promise.all(replacements)));
    for (const worker of workers) worker.child.stdin!.write('finish\n');
    await Promise.all(workers.map((w) => w.succeeded()));
    const results = workers.map((w) => JSON.parse(/done (.*)/.exec(w.stdout)![1]!) as { sections: number; timeouts: number; busy: number });
    const { overlaps, sections, killedHolding } = overlapsIn(readFileSync(log, 'utf8'));
    expect(overlaps).toBe(0);
    expect(kills).toBeGreaterThanOrEqual(16);
    expect(killedHolding).toBeGreaterThan(0);
    expect(results.reduce((n, r) => n + r.timeouts + r.busy, 0)).toBeGreaterThan(0);
    expect(sections).toBeGreaterThan(200);
    expect(lockFilesIn(dir)).toEqual([]);
    console.log(`removeLockFile under kills: ${sections} sections, ${kills} kills (${killedHolding} while holding), ${JSON.stringify(results)}`);
  }, 240_000);
});
