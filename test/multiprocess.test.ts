import { spawn } from 'node:child_process';
import { appendFileSync, mkdirSync, readFileSync, symlinkSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { Worker } from 'node:worker_threads';
import { describe, expect, it } from 'vitest';

import { lock, tryLock, withFileLock } from 'native-file-lock';

import { Agent, agentForFile, agentForTest, blockedOn, fixture, isRunning, lockFileOf, openFiles, Proc, requires, resourceIn, runNode, settlesWithin, skipWithout, sleep, tempDir, turnMarkerHeld, waitFor, workersDone } from './helpers.js';
import { flockProbe, letGo, pythonHolder, pythonProbe, runFlock } from './peers.js';

const agent = agentForFile();

describe('a counter file incremented by several processes', () => {
  const PROCESSES = 4;
  const INCREMENTS = 50;

  async function runCounters(mode: 'lock' | 'nolock'): Promise<number> {
    const file = join(tempDir(), 'counter');
    writeFileSync(file, '0'.padStart(12, '0'));
    const children = Array.from({ length: PROCESSES }, () => runNode(fixture('counter.mjs'), [file, String(INCREMENTS), mode]));
    await Promise.all(children.map((child) => child.waitForOutput('ready')));
    // Released together so that the increments really interleave.
    for (const child of children) child.child.stdin!.end('go\n');
    await Promise.all(children.map((child) => child.succeeded()));
    return Number(readFileSync(file, 'utf8'));
  }

  it('loses no update when every increment runs under withFileLock', async () => {
    expect(await runCounters('lock')).toBe(PROCESSES * INCREMENTS);
  });

  it('loses updates without the lock (the workload really races)', async () => {
    expect(await runCounters('nolock')).toBeLessThan(PROCESSES * INCREMENTS);
  });
});

describe('worker threads', () => {
  it('four workers incrementing one counter file under withFileLock lose no update', async () => {
    const file = join(tempDir(), 'counter');
    writeFileSync(file, '0'.padStart(12, '0'));
    const n = 50;
    const workers = Array.from({ length: 4 }, () => new Worker(fixture('counter.mjs'), { workerData: { file, n, mode: 'lock' } }));
    await workersDone(workers);
    expect(Number(readFileSync(file, 'utf8'))).toBe(4 * n);
  });

  it('a worker cannot take a lock the main thread holds, and can once it is released', async () => {
    const path = resourceIn(tempDir());
    const probe = () =>
      new Promise<boolean>((resolve, reject) => {
        const worker = new Worker(fixture('thread-probe.mjs'), { workerData: { path } });
        worker.once('message', resolve);
        worker.once('error', reject);
      });
    const held = await lock(path);
    try {
      expect(await probe()).toBe(false);
    } finally {
      await held.release();
    }
    expect(await probe()).toBe(true);
  });
});

/**
 * With holder (a peer process that prints 'locked' once it holds the lock
 * file and lets go on a line of input) holding: tryLock fails, withFileLock
 * waits, and its callback runs only after the peer let go.
 */
async function expectToWaitFor(path: string, holder: Proc): Promise<void> {
  await holder.waitForOutput('locked');
  await expect(tryLock(path)).resolves.toBeUndefined();
  let released = false;
  let ranAfterRelease: boolean | undefined;
  const waiting = withFileLock(path, () => {
    ranAfterRelease = released;
  });
  expect(await settlesWithin(waiting, 300)).toBe('pending');

  released = true;
  await letGo(holder);
  expect(await settlesWithin(waiting, 5_000)).toBe('settled');
  await waiting;
  expect(ranAfterRelease).toBe(true);
}

describe.each([
  {
    peer: 'util-linux flock(1)',
    needs: 'flock(1)',
    holder: (lockPath: string) => runFlock([lockPath, 'sh', '-c', 'echo locked; read line']),
    probe: flockProbe,
    waiter: (lockPath: string) => runFlock(['-w', '30', lockPath, 'echo', 'locked']),
  },
  {
    peer: "Python's fcntl.flock",
    needs: 'python3',
    holder: (lockPath: string) => pythonHolder(lockPath),
    probe: (lockPath: string) => pythonProbe(lockPath),
    waiter: (lockPath: string) => {
      const waiter = pythonHolder(lockPath);
      // Lets go as soon as it has the lock.
      waiter.child.stdin!.end();
      return waiter;
    },
  },
] as const)('$peer', ({ needs, holder, probe, waiter: startWaiter }) => {
  requires(needs);
  it('while it holds the lock file, tryLock fails and withFileLock waits for it to let go', async () => {
    const path = resourceIn(tempDir());
    await expectToWaitFor(path, holder(lockFileOf(path)));
  });

  it('while we hold the lock, its non-blocking attempt fails and its blocking one succeeds once we release', async () => {
    const path = resourceIn(tempDir());
    const held = await lock(path);
    let waiter: Proc;
    try {
      expect(probe(held.path)).toBe('held');

      waiter = startWaiter(held.path);
      expect(await settlesWithin(waiter.exited, 500)).toBe('pending');
      expect(waiter.stdout).toBe('');
    } finally {
      await held.release();
    }
    await waiter.succeeded();
    expect(waiter.stdout).toContain('locked');
  });
});

describe('a POSIX record lock that someone else holds on the lock file', () => {
  requires('python3', 'flock(1)');
  // Waiters queue on an OFD lock of byte 0; a whole-file record lock from
  // another program conflicts with that byte but must not hold anyone up.

  it('neither stalls repeated locking nor keeps a waiter from the flock', async () => {
    const path = resourceIn(tempDir());
    const lockf = pythonHolder(lockFileOf(path), 'lockf');
    await lockf.waitForOutput('locked');
    for (let i = 0; i < 100; i++) await withFileLock(path, () => {}, { timeout: 2_000 });
    const holder = runFlock([lockFileOf(path), 'sh', '-c', 'echo locked; sleep 0.3']);
    await holder.waitForOutput('locked');
    const held = await lock(path, { timeout: 5_000 });
    await held.release();
    expect(lockf.running).toBe(true);
  });
});

describe('a holder that dies', () => {
  it('killed with SIGKILL lets a waiter in promptly', async () => {
    const holder = await Agent.start();
    const path = resourceIn(tempDir());
    await holder.call('lock', { path });
    let acquiredAt = 0;
    const waiting = withFileLock(path, () => {
      acquiredAt = performance.now();
    });
    expect(await settlesWithin(waiting, 200)).toBe('pending');
    const killedAt = performance.now();
    holder.kill('SIGKILL');
    await waiting;
    expect(acquiredAt - killedAt).toBeLessThan(5_000);
    expect((await holder.proc.exited).signal).toBe('SIGKILL');
  });
});

describe('turns between processes (Linux queue tickets)', () => {
  // A process that got the lock after waiting keeps the turn marker through
  // its turn, releases included, and the next queued process waits for it
  // instead of racing for every release. The marker must never keep that
  // waiter out of a free lock for long: not when its holder goes idle, not
  // when it is stopped.
  async function agentHoldingTheMarker(holder: Agent, path: string): Promise<void> {
    for (let attempt = 0; attempt < 20; attempt++) {
      // Hot (released three times within 100 ms), so its descriptor, and
      // with it the marker, stays open after the release.
      for (let i = 0; i < 3; i++) await holder.call('withFileLock', { path });
      const held = await lock(path);
      const turn = holder.call('withFileLock', { path });
      await waitFor(() => blockedOn(lockFileOf(path)) >= 1, 'the agent to wait for the lock');
      await held.release();
      await turn;
      // Its turn ends at its release only when 2 ms have passed since it began.
      if (turnMarkerHeld(lockFileOf(path))) return;
    }
    throw new Error('the agent never kept the turn marker after its hold');
  }

  it('a process gives the marker back at its first hold after its turn when nobody is queued', async (ctx) => {
    skipWithout(ctx, 'linux', '/proc');
    const holder = await agentForTest();
    const path = resourceIn(tempDir());
    await agentHoldingTheMarker(holder, path);
    // Holds far apart (each call is an IPC round trip, then 5 ms), the lock hot.
    for (let i = 0; i < 3; i++) {
      await sleep(5);
      await holder.call('withFileLock', { path });
    }
    expect(turnMarkerHeld(lockFileOf(path))).toBe(false);
  });

  it('a process whose every hold outlasts a turn steps back for a queued process at its next acquisition', async (ctx) => {
    skipWithout(ctx, 'linux');
    const holder = await agentForTest();
    const dir = tempDir();
    const path = resourceIn(dir);
    const log = join(dir, 'log');
    writeFileSync(log, '');
    const entries = () => readFileSync(log, 'utf8').split('\n').filter(Boolean);
    // Each hold lasts 5 ms, longer than a 2 ms turn: every acquisition comes
    // after the turn is over, so each one must look at the queue.
    const looping = holder.call('holdRepeatedly', { path, log, name: 'agent', times: 200, holdMs: 5 });
    let mostPassed = 0;
    for (let round = 0; round < 3; round++) {
      await waitFor(() => entries().length >= 3 * (round + 1), 'the agent to hold the lock again and again');
      const before = entries().length;
      await withFileLock(path, () => appendFileSync(log, 'this process\n'));
      const passed = entries().slice(before).indexOf('this process');
      mostPassed = Math.max(mostPassed, passed);
    }
    // The hold under way when this process queued, and at most one more.
    expect(mostPassed).toBeLessThanOrEqual(2);
    await looping;
  }, 30_000);

  it('a waiter gets the lock once it is free although a process stopped in its turn, between two holds, keeps the marker', async (ctx) => {
    skipWithout(ctx, 'linux', '/proc');
    const holder = await agentForTest();
    const path = resourceIn(tempDir());
    await agentHoldingTheMarker(holder, path);
    holder.kill('SIGSTOP');
    // This process waits (another holds the lock), so it queues and meets the marker.
    await agent().call('lock', { path });
    const waiting = lock(path, { timeout: 5_000 });
    expect(await settlesWithin(waiting, 100)).toBe('pending');
    await agent().call('release', { path });
    const held = await waiting;
    // The stopped process still holds the marker: this wait got past it.
    expect(turnMarkerHeld(lockFileOf(path))).toBe(true);
    await held.release();
  });
});

describe('a child process spawned while holding the lock', () => {
  // Lists the child's descriptors in /proc; sleep(1) outlives its parent.
  requires('/proc', 'flock(1)');

  it('does not keep our lock after we release it', async () => {
    const path = resourceIn(tempDir());
    const held = await lock(path);
    const sleeper = spawn('sleep', ['30'], { stdio: 'ignore' });
    try {
      // stdio 'ignore' is /dev/null: proof that the listing works, so the next line can fail.
      expect(openFiles(sleeper.pid!)).toContain('/dev/null');
      expect(openFiles(sleeper.pid!)).not.toContain(held.path);
      await held.release();
      expect(isRunning(sleeper.pid!)).toBe(true);
      expect(await agent().canLock(path)).toBe(true);
      // And flock(1), which knows nothing of this library, agrees.
      expect(flockProbe(held.path)).toBe('free');
    } finally {
      sleeper.kill('SIGKILL');
    }
  });

  it('does not inherit the lock of a holder that dies without releasing', async () => {
    const path = resourceIn(tempDir());
    const holder = await Agent.start();
    const lockPath = await holder.call<string>('lock', { path });
    const sleeperPid = await holder.call<number>('spawnSleep');
    try {
      expect(isRunning(sleeperPid)).toBe(true);
      expect(openFiles(sleeperPid)).toContain('/dev/null');
      expect(openFiles(sleeperPid)).not.toContain(lockPath);
      expect(await agent().canLock(path)).toBe(false);
      holder.kill('SIGKILL');
      await holder.proc.exited;
      // The sleeper outlives its parent; had it inherited the descriptor, the lock would stay held.
      expect(isRunning(sleeperPid)).toBe(true);
      await waitFor(() => agent().canLock(path), 'the lock to be free after its holder was killed', 5_000);
      const fileLock = await tryLock(path);
      expect(fileLock).toBeDefined();
      await fileLock!.release();
    } finally {
      process.kill(sleeperPid, 'SIGKILL');
    }
  });
});

describe('symbolic links', () => {
  it('a process locking through a symlink and one locking the file directly share one lock', async () => {
    const dir = tempDir();
    const path = resourceIn(dir);
    const link = join(dir, 'link');
    symlinkSync(path, link);

    const lockPath = await agent().call<string>('lock', { path: link });
    expect(lockPath).toBe(lockFileOf(path));
    await expect(tryLock(path)).resolves.toBeUndefined();
    await agent().call('release', { path: link });

    const held = await lock(path);
    expect(await agent().canLock(link)).toBe(false);
    await held.release();
    expect(await agent().canLock(link)).toBe(true);
  });

  it('flock(1) on the canonical lock file excludes a holder that came through a symlink', async (ctx) => {
    skipWithout(ctx, 'flock(1)');
    const dir = tempDir();
    const path = resourceIn(dir);
    const link = join(dir, 'link');
    symlinkSync(path, link);
    const held = await lock(link);
    try {
      expect(held.path).toBe(lockFileOf(path));
      expect(flockProbe(lockFileOf(path))).toBe('held');
    } finally {
      await held.release();
    }
    expect(flockProbe(lockFileOf(path))).toBe('free');
  });

  it('a file reached through a symlinked directory and directly shares one lock', async () => {
    const dir = tempDir();
    const real = join(dir, 'real');
    mkdirSync(real);
    const path = resourceIn(real);
    symlinkSync(real, join(dir, 'dirlink'));
    const viaLink = join(dir, 'dirlink', 'data');

    await agent().call('lock', { path: viaLink });
    await expect(tryLock(path)).resolves.toBeUndefined();
    await agent().call('release', { path: viaLink });
    const fileLock = await tryLock(path);
    expect(fileLock).toBeDefined();
    await fileLock!.release();
  });

  it('a resource that does not exist yet, named through a symlinked directory and directly, shares one lock', async () => {
    const dir = tempDir();
    const real = join(dir, 'real');
    mkdirSync(real);
    symlinkSync(real, join(dir, 'dirlink'));

    await agent().call('lock', { path: join(dir, 'dirlink', 'future') });
    await expect(tryLock(join(real, 'future'))).resolves.toBeUndefined();
    await agent().call('release', { path: join(dir, 'dirlink', 'future') });
    await expect(withFileLock(join(real, 'future'), () => 'ran', { timeout: 1_000 })).resolves.toBe('ran');
  });
});
