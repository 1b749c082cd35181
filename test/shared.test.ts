// Shared (reader) locks: many holders at once in a thread, across threads
// and processes; an exclusive holder excludes them all; interop with
// flock(1) and Python; reentrancy between the modes; writer preference.
import { statSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { Worker } from 'node:worker_threads';
import { describe, expect, it } from 'vitest';

import { FileLockError, lock, tryLock, withFileLock } from 'native-file-lock';

import { Agent, agentForFile, fixture, lockFileOf, plainEnv, Proc, requires, resourceIn, runNode, runSync, settlesWithin, skipWithout, tempDir, ThreadAgent, waitFor, workersDone } from './helpers.js';
import { buildShim, nfsEnv, peerEnv } from './nfs-model/build.mjs';
import { letGo, pythonHolder, pythonProbe, runFlock } from './peers.js';

const SHARED = { shared: true } as const;

const agent = agentForFile();
const second = agentForFile();

/** True if this thread could take the lock in that mode right now (released again at once). */
async function canLock(path: string, options: { shared?: boolean } = {}): Promise<boolean> {
  const held = await tryLock(path, options);
  await held?.release();
  return held !== undefined;
}

describe('the shared option', () => {
  it('must be a boolean: anything else is a TypeError naming options.shared, and nothing is locked', async () => {
    const path = resourceIn(tempDir());
    for (const shared of ['yes', 1, null, {}]) {
      const options = { shared } as unknown as { shared: boolean };
      await expect(lock(path, options)).rejects.toThrow(TypeError);
      await expect(lock(path, options)).rejects.toThrow(/options\.shared must be a boolean/);
      await expect(tryLock(path, options)).rejects.toThrow(/options\.shared must be a boolean/);
      await expect(withFileLock(path, () => 1, options)).rejects.toThrow(/options\.shared must be a boolean/);
    }
    expect(await agent().canLock(path)).toBe(true);
  });

  it('is exposed on the FileLock: true for a shared lock, false for the default exclusive one', async () => {
    const path = resourceIn(tempDir());
    const shared = await lock(path, SHARED);
    expect(shared.shared).toBe(true);
    await shared.release();
    const exclusive = await lock(path, { shared: false });
    expect(exclusive.shared).toBe(false);
    await exclusive.release();
    const plain = (await tryLock(path))!;
    expect(plain.shared).toBe(false);
    await plain.release();
  });
});

describe('many shared holders in one thread', () => {
  it('hold the lock at once, and the lock file is locked shared for other processes', async () => {
    const path = resourceIn(tempDir());
    const holders = await Promise.all(Array.from({ length: 8 }, () => lock(path, { ...SHARED, timeout: 5_000 })));
    try {
      expect(holders.every((h) => h.shared && !h.released)).toBe(true);
      expect(await canLock(path, SHARED)).toBe(true);
      expect(await agent().canLock(path, SHARED)).toBe(true);
      expect(await agent().canLock(path)).toBe(false);
      // Releasing all but one keeps the file locked.
      for (const h of holders.slice(1)) await h.release();
      expect(await agent().canLock(path)).toBe(false);
    } finally {
      for (const h of holders) await h.release();
    }
    expect(await agent().canLock(path)).toBe(true);
  });

  it('run their callbacks at the same time', async () => {
    const path = resourceIn(tempDir());
    let inside = 0;
    let most = 0;
    await Promise.all(
      Array.from({ length: 5 }, () =>
        withFileLock(
          path,
          async () => {
            most = Math.max(most, ++inside);
            await waitFor(() => most === 5, 'all five shared callbacks to run together', 5_000);
            inside--;
          },
          SHARED,
        ),
      ),
    );
    expect(most).toBe(5);
  });

  it('keep an exclusive caller of the same thread waiting until the last of them releases', async () => {
    const path = resourceIn(tempDir());
    const a = await lock(path, SHARED);
    const b = await lock(path, SHARED);
    expect(await canLock(path)).toBe(false);
    const writer = lock(path, { timeout: 10_000 });
    await a.release();
    expect(await settlesWithin(writer, 200)).toBe('pending');
    await b.release();
    const held = await writer;
    expect(held.shared).toBe(false);
    expect(await canLock(path, SHARED)).toBe(false);
    await held.release();
  });

  it('are all kept out while an exclusive lock is held, and all let in together when it is released', async () => {
    const path = resourceIn(tempDir());
    const writer = await lock(path);
    const readers = Array.from({ length: 4 }, () => lock(path, { ...SHARED, timeout: 10_000 }));
    expect(await settlesWithin(Promise.race(readers), 200)).toBe('pending');
    await writer.release();
    const held = await Promise.all(readers);
    expect(await agent().canLock(path)).toBe(false);
    for (const h of held) await h.release();
  });

  it('a queued exclusive caller holds back shared callers that come after it (writer preference in the line)', async () => {
    const path = resourceIn(tempDir());
    const order: string[] = [];
    const first = await lock(path, SHARED);
    const writer = lock(path, { timeout: 10_000 }).then((h) => (order.push('writer'), h));
    // The lock is shared-held, but a writer is waiting: a new reader must not slip in.
    expect(await canLock(path, SHARED)).toBe(false);
    const late = lock(path, { ...SHARED, timeout: 10_000 }).then((h) => (order.push('late reader'), h));
    expect(await settlesWithin(late, 200)).toBe('pending');
    await first.release();
    const w = await writer;
    expect(await settlesWithin(late, 200)).toBe('pending');
    await w.release();
    await (await late).release();
    expect(order).toEqual(['writer', 'late reader']);
  });
});

describe('a writer that gives up', () => {
  it('a queued exclusive caller that times out lets the shared callers queued behind it in at once', async () => {
    const path = resourceIn(tempDir());
    const reader = await lock(path, SHARED);
    const writer = lock(path, { timeout: 300 });
    const late = lock(path, { ...SHARED, timeout: 10_000 });
    await expect(writer).rejects.toMatchObject({ code: 'ELOCKTIMEOUT' });
    expect(await settlesWithin(late, 2_000)).toBe('settled');
    await (await late).release();
    await reader.release();
  });

  it('an exclusive waiter in a worker that times out lets new shared holders of the main thread in again', async () => {
    const path = resourceIn(tempDir());
    const worker = await ThreadAgent.start();
    const reader = await lock(path, SHARED);
    const writer = worker.request('lock', { path, options: { timeout: 500 } });
    await waitFor(async () => !(await canLock(path, SHARED)), 'new shared locks to be refused while the worker waits', 5_000);
    const reply = await writer;
    expect(reply.ok ? 'acquired' : reply.error.code).toBe('ELOCKTIMEOUT');
    await waitFor(() => canLock(path, SHARED), 'shared locks to be let in again', 5_000);
    await reader.release();
  });

  it('an exclusive waiter in another process that times out lets new shared holders in again', async (ctx) => {
    skipWithout(ctx, 'linux');
    const path = resourceIn(tempDir());
    await agent().call('lock', { path, options: SHARED });
    const writer = second().request('lock', { path, options: { timeout: 500 } });
    await waitFor(async () => !(await canLock(path, SHARED)), 'new shared locks to be refused while another process waits to write', 5_000);
    const reply = await writer;
    expect(reply.ok ? 'acquired' : reply.error.code).toBe('ELOCKTIMEOUT');
    await waitFor(() => canLock(path, SHARED), 'shared locks to be let in again', 5_000);
    await agent().call('release', { path });
  });
});

describe('shared holders across worker_threads', () => {
  it('a shared lock in the main thread and in a worker are held at once; an exclusive one in either is refused', async () => {
    const path = resourceIn(tempDir());
    const worker = await ThreadAgent.start();
    const held = await lock(path, SHARED);
    try {
      expect(await worker.canLock(path, SHARED)).toBe(true);
      expect(await worker.canLock(path)).toBe(false);
      await worker.call('lock', { path, options: SHARED });
      expect(await canLock(path)).toBe(false);
    } finally {
      await held.release();
    }
    // The worker still holds its share.
    expect(await canLock(path)).toBe(false);
    expect(await agent().canLock(path)).toBe(false);
    await worker.call('release', { path });
    expect(await agent().canLock(path)).toBe(true);
  });

  it('an exclusive waiter in a worker stops new shared holders in the main thread until it has had its turn', async () => {
    const path = resourceIn(tempDir());
    const worker = await ThreadAgent.start();
    const reader = await lock(path, SHARED);
    const writer = worker.call('lock', { path, options: { timeout: 10_000 } });
    // Once the worker waits, no new reader of this thread gets in.
    await waitFor(async () => !(await canLock(path, SHARED)), 'new shared locks to be refused while the worker waits', 5_000);
    const late = lock(path, { ...SHARED, timeout: 10_000 });
    expect(await settlesWithin(late, 200)).toBe('pending');
    await reader.release();
    await writer;
    expect(await settlesWithin(late, 200)).toBe('pending');
    await worker.call('release', { path });
    await (await late).release();
  });

  it('four workers mixing shared and exclusive calls at random never let an exclusive holder in beside anyone', async () => {
    const path = resourceIn(tempDir());
    const state = new SharedArrayBuffer(5 * 4);
    const rounds = 150;
    const workers = Array.from({ length: 4 }, () => new Worker(fixture('shared-mix.mjs'), { workerData: { path, state, rounds } }));
    await workersDone(workers);
    const [sharedNow, exclusiveNow, violations, sharedSections, exclusiveSections] = new Int32Array(state);
    expect({ sharedNow, exclusiveNow, violations }).toEqual({ sharedNow: 0, exclusiveNow: 0, violations: 0 });
    expect(sharedSections + exclusiveSections).toBe(4 * 2 * rounds);
    expect(sharedSections).toBeGreaterThan(0);
    expect(exclusiveSections).toBeGreaterThan(0);
    expect(await agent().canLock(path)).toBe(true);
  });

  it('a worker that ends while holding a shared lock gives its share back', async () => {
    const path = resourceIn(tempDir());
    const worker = await ThreadAgent.start();
    await worker.call('lock', { path, options: SHARED });
    const mine = await lock(path, SHARED);
    await worker.stop();
    // The main thread's share is still held; the worker's is gone with it.
    expect(await agent().canLock(path)).toBe(false);
    await mine.release();
    expect(await agent().canLock(path)).toBe(true);
  });
});

describe('shared holders across processes', () => {
  it('three processes hold shared locks at once, and none of them can take an exclusive one', async () => {
    const path = resourceIn(tempDir());
    await agent().call('lock', { path, options: SHARED });
    await second().call('lock', { path, options: SHARED });
    const mine = await lock(path, { ...SHARED, timeout: 5_000 });
    try {
      expect(await canLock(path)).toBe(false);
      expect(await agent().canLock(path)).toBe(false);
      expect(await second().canLock(path)).toBe(false);
    } finally {
      await mine.release();
      await agent().call('release', { path });
    }
    expect(await agent().canLock(path)).toBe(false);
    await second().call('release', { path });
    expect(await agent().canLock(path)).toBe(true);
  });

  it('an exclusive waiter in another process waits for every shared holder of this process, then excludes them', async () => {
    const path = resourceIn(tempDir());
    const a = await lock(path, SHARED);
    const b = await lock(path, SHARED);
    const writer = agent().call('lock', { path, options: { timeout: 10_000 } });
    expect(await settlesWithin(writer, 300)).toBe('pending');
    await a.release();
    expect(await settlesWithin(writer, 300)).toBe('pending');
    await b.release();
    await writer;
    expect(await canLock(path, SHARED)).toBe(false);
    await agent().call('release', { path });
    expect(await canLock(path, SHARED)).toBe(true);
  });

  it('an exclusive waiter in another process stops new shared holders of every process (Linux queue tickets)', async (ctx) => {
    skipWithout(ctx, 'linux');
    const path = resourceIn(tempDir());
    await agent().call('lock', { path, options: SHARED });
    const writer = second().call('lock', { path, options: { timeout: 10_000 } });
    await waitFor(async () => !(await canLock(path, SHARED)), 'new shared locks to be refused while another process waits to write', 5_000);
    const late = lock(path, { ...SHARED, timeout: 10_000 });
    expect(await settlesWithin(late, 300)).toBe('pending');
    await agent().call('release', { path });
    await writer;
    expect(await settlesWithin(late, 200)).toBe('pending');
    await second().call('release', { path });
    await (await late).release();
  });
});

describe('interop with util-linux flock(1)', () => {
  requires('flock(1)');

  it('while flock -s holds the lock file, a shared lock is taken at once and an exclusive one waits', async () => {
    const path = resourceIn(tempDir());
    const holder = runFlock(['-s', lockFileOf(path), 'sh', '-c', 'echo locked; read line']);
    await holder.waitForOutput('locked');
    const shared = await tryLock(path, SHARED);
    expect(shared).toBeDefined();
    await shared!.release();
    const writer = lock(path, { timeout: 10_000 });
    expect(await settlesWithin(writer, 300)).toBe('pending');
    await letGo(holder);
    await (await writer).release();
  });

  it('while flock -x holds the lock file, a shared lock waits for it', async () => {
    const path = resourceIn(tempDir());
    const holder = runFlock(['-x', lockFileOf(path), 'sh', '-c', 'echo locked; read line']);
    await holder.waitForOutput('locked');
    expect(await tryLock(path, SHARED)).toBeUndefined();
    const reader = lock(path, { ...SHARED, timeout: 10_000 });
    expect(await settlesWithin(reader, 300)).toBe('pending');
    await letGo(holder);
    await (await reader).release();
  });

  it('while we hold a shared lock, flock -s -n succeeds, flock -x -n fails, and flock -x waits until we release', async () => {
    const path = resourceIn(tempDir());
    const held = await lock(path, SHARED);
    let waiter: Proc;
    try {
      expect((await runFlock(['-s', '-n', held.path, 'true']).exited).code).toBe(0);
      expect((await runFlock(['-x', '-n', held.path, 'true']).exited).code).toBe(1);
      waiter = runFlock(['-x', '-w', '30', held.path, 'echo', 'got it']);
      expect(await settlesWithin(waiter.exited, 300)).toBe('pending');
    } finally {
      await held.release();
    }
    await waiter.succeeded();
    expect(waiter.stdout).toContain('got it');
  });

  it('while we hold an exclusive lock, flock -s -n fails', async () => {
    const path = resourceIn(tempDir());
    const held = await lock(path);
    try {
      expect((await runFlock(['-s', '-n', held.path, 'true']).exited).code).toBe(1);
    } finally {
      await held.release();
    }
    expect((await runFlock(['-s', '-n', held.path, 'true']).exited).code).toBe(0);
  });
});

describe("interop with Python's fcntl.flock", () => {
  requires('python3');

  it('while Python holds LOCK_SH, a shared lock is taken at once and an exclusive one waits', async () => {
    const path = resourceIn(tempDir());
    const holder = pythonHolder(lockFileOf(path), 'flock', 'LOCK_SH');
    await holder.waitForOutput('locked');
    expect(await canLock(path, SHARED)).toBe(true);
    const writer = lock(path, { timeout: 10_000 });
    expect(await settlesWithin(writer, 300)).toBe('pending');
    await letGo(holder);
    await (await writer).release();
  });

  it('while Python holds LOCK_EX, a shared lock waits for it', async () => {
    const path = resourceIn(tempDir());
    const holder = pythonHolder(lockFileOf(path), 'flock', 'LOCK_EX');
    await holder.waitForOutput('locked');
    expect(await canLock(path, SHARED)).toBe(false);
    const reader = lock(path, { ...SHARED, timeout: 10_000 });
    expect(await settlesWithin(reader, 300)).toBe('pending');
    await letGo(holder);
    await (await reader).release();
  });

  it('while we hold a shared lock, Python takes LOCK_SH at once and its LOCK_EX waits until we release', async () => {
    const path = resourceIn(tempDir());
    const held = await lock(path, SHARED);
    let waiter: Proc;
    try {
      expect(pythonProbe(held.path, 'flock', plainEnv, 'LOCK_SH')).toBe('free');
      expect(pythonProbe(held.path, 'flock', plainEnv, 'LOCK_EX')).toBe('held');
      waiter = pythonHolder(held.path, 'flock', 'LOCK_EX');
      expect(await settlesWithin(waiter.exited, 300)).toBe('pending');
      expect(waiter.stdout).toBe('');
    } finally {
      await held.release();
    }
    await waiter.waitForOutput('locked');
    await letGo(waiter);
  });

  it('while we hold an exclusive lock, Python cannot take LOCK_SH', async () => {
    const path = resourceIn(tempDir());
    const held = await lock(path);
    try {
      expect(pythonProbe(held.path, 'flock', plainEnv, 'LOCK_SH')).toBe('held');
    } finally {
      await held.release();
    }
    expect(pythonProbe(held.path, 'flock', plainEnv, 'LOCK_SH')).toBe('free');
  });
});

describe('reentrancy between shared and exclusive', () => {
  it('a shared call inside an exclusive withFileLock runs at once and holds the exclusive lock', async () => {
    const path = resourceIn(tempDir());
    const inner = await withFileLock(path, () => withFileLock(path, async () => (await agent().canLock(path, SHARED)) ? 'let in' : 'kept out', SHARED));
    expect(inner).toBe('kept out');
    expect(await agent().canLock(path)).toBe(true);
  });

  it('a shared call inside a shared withFileLock runs at once', async () => {
    const path = resourceIn(tempDir());
    const ran = await withFileLock(path, () => withFileLock(path, () => 'ran', { ...SHARED, timeout: 0 }), SHARED);
    expect(ran).toBe('ran');
  });

  it('an exclusive call inside a shared withFileLock fails at once with EDEADLK naming the lock file and saying to release and retake', async () => {
    const path = resourceIn(tempDir());
    const errors: unknown[] = [];
    await withFileLock(
      path,
      async () => {
        for (const attempt of [() => lock(path), () => tryLock(path), () => withFileLock(path, () => 'never'), () => lock(path, { shared: false, timeout: 60_000 })]) {
          errors.push(await attempt().then(
            () => 'acquired',
            (error: unknown) => error,
          ));
        }
        // The shared lock is untouched by the refusals.
        expect(await agent().canLock(path, SHARED)).toBe(true);
        expect(await agent().canLock(path)).toBe(false);
      },
      SHARED,
    );
    expect(errors).toHaveLength(4);
    for (const error of errors) {
      expect(error).toBeInstanceOf(FileLockError);
      const e = error as FileLockError;
      expect(e.code).toBe('EDEADLK');
      expect(e.path).toBe(lockFileOf(path));
      expect(e.message).toContain(lockFileOf(path));
      expect(e.message).toMatch(/shared/);
      expect(e.message).toMatch(/upgrade/);
      expect(e.message).toMatch(/release/);
    }
    // Released normally, and an exclusive lock can be taken afterwards.
    expect(await agent().canLock(path)).toBe(true);
    const after = await lock(path, { timeout: 1_000 });
    await after.release();
  });

  it('an exclusive call inside a shared call nested in an exclusive withFileLock runs at once: the lock held is exclusive', async () => {
    const path = resourceIn(tempDir());
    const result = await withFileLock(path, () => withFileLock(path, () => withFileLock(path, () => 'ran', { timeout: 0 }), SHARED));
    expect(result).toBe('ran');
  });

  it('a reentrant lock reports the mode of the lock actually held', async () => {
    const path = resourceIn(tempDir());
    const modes = await withFileLock(path, async () => {
      const inner = await lock(path, SHARED);
      await inner.release();
      return inner.shared;
    });
    expect(modes).toBe(false);
  });
});

describe('record-lock mode (how Linux emulates flock on NFS)', () => {
  requires('linux', 'python3');

  it('shared holders in two processes hold F_RDLCK locks at once: lockf LOCK_SH gets in, lockf LOCK_EX and an exclusive lock are kept out', async () => {
    const path = resourceIn(tempDir());
    const lockFile = lockFileOf(path);
    const env = { ...process.env, NATIVE_FILE_LOCK_TEST_LOCK_KIND: 'fcntl' }; // node: keeps a preloaded sanitizer runtime
    const [a, b] = await Promise.all([Agent.start(env), Agent.start(env)]);
    try {
      await a.call('lock', { path, options: SHARED });
      await b.call('lock', { path, options: { ...SHARED, timeout: 5_000 } });
      expect(pythonProbe(lockFile, 'lockf', plainEnv, 'LOCK_SH')).toBe('free');
      expect(pythonProbe(lockFile, 'lockf', plainEnv, 'LOCK_EX')).toBe('held');
      expect(await a.canLock(path, SHARED)).toBe(true);
      await a.call('release', { path });
      expect(await a.canLock(path)).toBe(false);
      await b.call('release', { path });
      expect(pythonProbe(lockFile, 'lockf', plainEnv, 'LOCK_EX')).toBe('free');
      expect(await a.canLock(path)).toBe(true);
    } finally {
      await Promise.all([a.stop(), b.stop()]);
    }
  });
});

describe('the NFS model (flock emulated with whole-file OFD record locks)', () => {
  requires('linux', 'c compiler', 'flock(1)');

  it('shared holders in two processes coexist with flock -s under the same emulation, and flock -x and an exclusive lock are kept out', async () => {
    const path = resourceIn(tempDir());
    const lockFile = lockFileOf(path);
    const shim = buildShim();
    const [a, b] = await Promise.all([Agent.start(nfsEnv(shim)), Agent.start(nfsEnv(shim))]);
    const flock = (args: string[]) => runSync('flock', args, { env: peerEnv(shim) }).status;
    try {
      await a.call('lock', { path, options: SHARED });
      await b.call('lock', { path, options: { ...SHARED, timeout: 5_000 } });
      expect(flock(['-s', '-n', lockFile, 'true'])).toBe(0);
      expect(flock(['-x', '-n', lockFile, 'true'])).toBe(1);
      expect(await a.canLock(path)).toBe(false);
      await a.call('release', { path });
      await b.call('release', { path });
      expect(flock(['-x', '-n', lockFile, 'true'])).toBe(0);
    } finally {
      await Promise.all([a.stop(), b.stop()]);
    }
  });
});

// --- writer starvation -----------------------------------------------------------

describe('a writer among overlapping readers in other processes', () => {
  const HOLD_MS = 100; // long against the moments a writer takes to queue, even on a loaded machine
  const LOOPS = 2; // per reader process, staggered: some reader always holds the lock
  const BOUND = 20; // reader acquisitions the writer may wait through

  /** Starts the 4th process's exclusive wait once the readers have run a while; its tally figures. */
  async function writerAmong(path: string, tally: string, readers: Proc[]): Promise<{ before: number; acquired: number; after: number }> {
    await waitFor(
      () => {
        const stopped = readers.find((r) => !r.running);
        if (stopped) throw new Error(`a reader exited early; stderr: ${stopped.stderr}`);
        return statSync(tally).size >= 3 * 3 * LOOPS;
      },
      'the readers to be running',
      15_000,
    );
    const writer = runNode(fixture('shared-loop.mjs'), ['writer', path, tally, String(HOLD_MS)]);
    await writer.succeeded();
    return JSON.parse(writer.stdout) as { before: number; acquired: number; after: number };
  }

  it(`3 processes of shared holders in a loop keep a writer in a 4th waiting through at most ${BOUND} reader holds`, async () => {
    const dir = tempDir();
    const path = resourceIn(dir);
    const tally = join(dir, 'tally');
    writeFileSync(tally, '');
    const ROUNDS = 60; // each loop would run ~6 s unstopped: far past the bound
    const readers = Array.from({ length: 3 }, () => runNode(fixture('shared-loop.mjs'), ['reader', path, tally, String(HOLD_MS), String(LOOPS), String(ROUNDS)]));
    await Promise.all(readers.map((r) => r.waitForOutput('ready')));
    for (const r of readers) r.child.stdin!.write('go\n');
    try {
      const w = await writerAmong(path, tally, readers);
      // Exclusive: no reader got in while the writer held the lock.
      expect(w.after).toBe(w.acquired);
      console.log(`this library's readers: the writer waited through ${w.acquired - w.before} reader holds`);
      expect(w.acquired - w.before).toBeLessThanOrEqual(BOUND);
      // The readers were still running when the writer got in: the bound was not met by them stopping.
      expect(w.acquired).toBeLessThan(3 * LOOPS * ROUNDS);
    } finally {
      for (const r of readers) r.child.stdin!.end();
    }
    await Promise.all(readers.map((r) => r.succeeded()));
  });

  it('with flock -s readers (not this library) the same writer may wait as long as they keep overlapping (documented, not asserted)', async (ctx) => {
    skipWithout(ctx, 'flock(1)');
    const dir = tempDir();
    const path = resourceIn(dir);
    const lockFile = lockFileOf(path);
    const tally = join(dir, 'tally');
    writeFileSync(tally, '');
    const ROUNDS = 15; // bounded: nothing stops flock(1) loops but themselves
    const loop = `for i in $(seq ${ROUNDS}); do flock -s "$0" sh -c 'printf r >> "$1"; sleep ${HOLD_MS / 1000}' sh "$1"; done`;
    const script = `(${loop}) & sleep ${HOLD_MS / 1000 / LOOPS}; (${loop}); wait`;
    const readers = Array.from({ length: 3 }, () => new Proc('sh', ['-c', script, lockFile, tally], { env: plainEnv }));
    const w = await writerAmong(path, tally, readers);
    expect(w.after).toBe(w.acquired);
    const total = 3 * LOOPS * ROUNDS;
    console.log(`flock -s readers: the writer waited through ${w.acquired - w.before} reader holds (of ${total}; ${total - w.acquired} left when it got in)`);
    await Promise.all(readers.map((r) => r.succeeded()));
  });
});
