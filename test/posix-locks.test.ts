// NFS-style lock semantics, in two models, since NFS cannot be mounted here.
//
// - fcntl mode: NATIVE_FILE_LOCK_TEST_LOCK_KIND=fcntl (read once when the
//   addon loads) makes the addon use process-owned POSIX record locks
//   (F_SETLK/F_SETLKW), dropped when ANY descriptor of the file in the
//   process is closed: the older emulation, and the strictest case for the
//   registry. Peer: Python's fcntl.lockf.
// - NFS model: how Linux emulates flock on NFS and SMB today. An LD_PRELOAD
//   shim (test/nfs-model/) turns every flock() into a whole-file OFD record
//   lock, owned by the open file description, in the same lock space as any
//   other record lock on the file (such as a queue ticket) and taken through
//   the same descriptor. The addon cannot see through the shim with statfs,
//   so NATIVE_FILE_LOCK_TEST_FLOCK=emulated tells it what it would detect on
//   NFS (or =native forces queue tickets on). Peers: flock(1) and Python's
//   fcntl.flock under the same shim.
//
// Every test runs real child processes with real peers; in plain flock mode
// those are fcntl.flock and util-linux flock(1).
import { spawn, type ChildProcessWithoutNullStreams } from 'node:child_process';
import { linkSync, mkdirSync, mkdtempSync, readFileSync, readdirSync, rmSync, statSync, symlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createInterface } from 'node:readline';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';

import { fixture, plainEnv, requires, waitFor } from './helpers.js';
import { flockProbe, pythonProbe } from './peers.js';
import { buildShim, preloadWith } from './nfs-model/build.mjs';

// Every scenario probes the lock from Python's fcntl module.
requires('posix', 'python3');

/**
 * The NFS model's environment for the addon and its peers (see the top of
 * this file). tickets 'detect': as the addon would detect NFS; 'on': queue
 * tickets forced on.
 */
function nfsModel(tickets: 'detect' | 'on' = 'detect'): Record<string, string> {
  const shim = buildShim();
  return {
    LD_PRELOAD: preloadWith(shim),
    NATIVE_FILE_LOCK_TEST_FLOCK: tickets === 'on' ? 'native' : 'emulated',
    NFL_PEER_PRELOAD: shim,
  };
}

const MODES = [
  // The default: flock(2), seen by flock(1) and Python's fcntl.flock.
  { kind: 'flock', env: () => ({}), probeKind: 'flock', needs: [] },
  // Process-owned POSIX record locks, seen by Python's fcntl.lockf.
  { kind: 'fcntl', env: () => ({ NATIVE_FILE_LOCK_TEST_LOCK_KIND: 'fcntl' }), probeKind: 'lockf', needs: [] },
  // flock as Linux emulates it on NFS, seen by fcntl.flock under the same emulation.
  { kind: 'NFS-model', env: () => nfsModel(), probeKind: 'flock', needs: ['linux', 'c compiler'] },
] as const;

let dir: string;
const children: ChildProcessWithoutNullStreams[] = [];

beforeEach(() => {
  dir = mkdtempSync(join(tmpdir(), 'nfl-posix-'));
});

afterEach(() => {
  for (const child of children.splice(0)) if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL');
  rmSync(dir, { recursive: true, force: true });
});

function startChild(scenario: string, args: Record<string, unknown>, env: Record<string, string>) {
  const child = spawn(process.execPath, [fixture('posix-locks-child.mjs'), scenario, JSON.stringify(args)], {
    env: { ...process.env, ...env },
    stdio: ['pipe', 'pipe', 'pipe'],
  });
  children.push(child);
  let stderr = '';
  child.stderr.setEncoding('utf8').on('data', (chunk: string) => (stderr += chunk));
  const lines: string[] = [];
  const waiters: Array<(line: string) => void> = [];
  createInterface({ input: child.stdout }).on('line', (line) => {
    const waiter = waiters.shift();
    if (waiter) waiter(line);
    else lines.push(line);
  });
  const exited = new Promise<number | null>((resolve) => child.once('close', resolve));
  const nextLine = () =>
    new Promise<string>((resolve, reject) => {
      const early = lines.shift();
      if (early !== undefined) return resolve(early);
      waiters.push(resolve);
      void exited.then((code) => reject(new Error(`child exited (${code}) before printing; stderr: ${stderr}`)));
    });
  const result = async <T>(): Promise<T> => {
    for (;;) {
      const line = await nextLine();
      if (line.startsWith('RESULT ')) return JSON.parse(line.slice(7)) as T;
    }
  };
  return { child, nextLine, result, send: (line: string) => child.stdin.write(line + '\n') };
}

/** One attempt by a peer process (under the model's shim, if given) to take the lock: 'held' if it could not. */
function probeOnce(lockPath: string, kind: 'lockf' | 'flock' | 'flock(1)', model: Record<string, string> = {}): 'held' | 'free' {
  const env = model.NFL_PEER_PRELOAD ? { ...plainEnv, LD_PRELOAD: model.NFL_PEER_PRELOAD } : plainEnv;
  return kind === 'flock(1)' ? flockProbe(lockPath, env) : pythonProbe(lockPath, kind, env);
}

function lockFixture() {
  const res = join(dir, 'data');
  writeFileSync(res, 'payload');
  const alias = join(dir, 'alias');
  symlinkSync(res, alias);
  const realDir = join(dir, 'real');
  mkdirSync(realDir);
  symlinkSync(dir, join(realDir, 'link'));
  const counter = join(dir, 'counter');
  writeFileSync(counter, '0');
  return { res, alias, lockPath: res + '.lock', linkedLockfile: join(realDir, 'link', 'data.lock'), counter };
}

interface Checked {
  held: number;
  bad: string[];
}

describe.each(MODES)('with $kind locks', ({ env, probeKind, needs }) => {
  requires(...needs);
  it('never drops a held lock while other callers in the process come and go (holders in sequence, concurrent waiters, tryLock, timeouts, aborts, other names, idle close)', async () => {
    const f = lockFixture();
    const child = startChild('holders', { ...f, probeKind }, env());
    const result = await child.result<Checked>();
    expect(result.bad).toEqual([]);
    // 20 sequential + 16 concurrent + 7 while held + 2 around the idle sweep.
    expect(result.held).toBe(45);
  });

  it('keeps worker_threads of one process out of each other: 4 threads, 4 x 40 increments, none lost, the lock held throughout each', async () => {
    const f = lockFixture();
    const child = startChild('threads', { ...f, n: 40, threads: 4, probeKind }, env());
    const result = await child.result<Checked>();
    expect(result.bad).toEqual([]);
    expect(result.held).toBe(4 * 40 * 2);
    expect(readFileSync(f.counter, 'utf8')).toBe(String(4 * 40));
  });

  it('keeps processes with several worker_threads each out of each other: 2 processes x 3 threads, none lost', async () => {
    const f = lockFixture();
    const a = startChild('threads', { ...f, n: 25, threads: 3, probeKind }, env());
    const b = startChild('threads', { ...f, n: 25, threads: 3, probeKind }, env());
    const [ra, rb] = await Promise.all([a.result<Checked>(), b.result<Checked>()]);
    expect([...ra.bad, ...rb.bad]).toEqual([]);
    expect(readFileSync(f.counter, 'utf8')).toBe(String(2 * 3 * 25));
  });

  it('frees the lock of a worker_thread that exits or is terminated while holding it', async () => {
    const f = lockFixture();
    const child = startChild('threadEndsHolding', { ...f, probeKind }, env());
    const result = await child.result<Checked>();
    expect(result.bad).toEqual([]);
    expect(result.held).toBe(4);
  });
});

describe('which peers see the lock', () => {
  // How flock and record locks interact is Linux's (BSD merges them).
  requires('linux', 'flock(1)');
  it('in flock mode conflicts with flock(1) and fcntl.flock but not with fcntl.lockf record locks', async () => {
    const f = lockFixture();
    const child = startChild('hold', f, {});
    expect(await child.nextLine()).toBe('HELD');
    expect(probeOnce(f.lockPath, 'flock(1)')).toBe('held');
    expect(probeOnce(f.lockPath, 'flock')).toBe('held');
    expect(probeOnce(f.lockPath, 'lockf')).toBe('free');
    child.send('release');
    await child.result();
    expect(probeOnce(f.lockPath, 'flock(1)')).toBe('free');
  });

  it('in fcntl mode conflicts with fcntl.lockf record locks but not with flock(1) or fcntl.flock (they do not interact on local Linux file systems)', async () => {
    const f = lockFixture();
    const child = startChild('hold', f, MODES[1].env());
    expect(await child.nextLine()).toBe('HELD');
    expect(probeOnce(f.lockPath, 'lockf')).toBe('held');
    expect(probeOnce(f.lockPath, 'flock(1)')).toBe('free');
    expect(probeOnce(f.lockPath, 'flock')).toBe('free');
    child.send('release');
    await child.result();
    expect(probeOnce(f.lockPath, 'lockf')).toBe('free');
  });
});

describe('the limits of record-lock semantics (what NFS users must know)', () => {
  it('in fcntl mode the caller opening and closing the lock file itself drops the lock; in flock mode it does not', async () => {
    const f = lockFixture();
    const posix = startChild('hold', f, MODES[1].env());
    expect(await posix.nextLine()).toBe('HELD');
    expect(probeOnce(f.lockPath, 'lockf')).toBe('held');
    posix.send('close-own-descriptor');
    expect(await posix.nextLine()).toBe('CLOSED');
    expect(probeOnce(f.lockPath, 'lockf')).toBe('free');
    posix.send('release');
    await posix.result();

    const flockChild = startChild('hold', f, {});
    expect(await flockChild.nextLine()).toBe('HELD');
    flockChild.send('close-own-descriptor');
    expect(await flockChild.nextLine()).toBe('CLOSED');
    expect(probeOnce(f.lockPath, 'flock')).toBe('held');
    flockChild.send('release');
    await flockChild.result();
  });

  it('a hard link to the lock file is a second lock in the same process in fcntl mode (both callers get in, and one release drops both), and excludes in flock mode', async () => {
    const f = lockFixture();
    writeFileSync(f.lockPath, '');
    linkSync(f.lockPath, f.lockPath + '.hardlink');
    const posix = startChild('hold', f, MODES[1].env());
    expect(await posix.nextLine()).toBe('HELD');
    posix.send('hardlink');
    expect(await posix.nextLine()).toBe('HARDLINK acquired');
    expect(await posix.nextLine()).toBe('HARDLINK released');
    // Unlocking through the second name unlocked the file for the whole
    // process: the first holder, still inside, no longer excludes anyone.
    expect(probeOnce(f.lockPath, 'lockf')).toBe('free');
    posix.send('release');
    await posix.result();

    const flockChild = startChild('hold', f, {});
    expect(await flockChild.nextLine()).toBe('HELD');
    flockChild.send('hardlink');
    expect(await flockChild.nextLine()).toBe('HARDLINK busy');
    flockChild.send('release');
    await flockChild.result();
  });
});

describe('the NFS model: flock emulated with whole-file OFD record locks', () => {
  requires('linux', 'c compiler', 'flock(1)', '/proc');

  it('flock(1), fcntl.flock and fcntl.lockf all see the lock there, because flock and record locks share one lock space', async () => {
    const f = lockFixture();
    const model = nfsModel();
    const child = startChild('hold', f, model);
    expect(await child.nextLine()).toBe('HELD');
    expect(probeOnce(f.lockPath, 'flock(1)', model)).toBe('held');
    expect(probeOnce(f.lockPath, 'flock', model)).toBe('held');
    expect(probeOnce(f.lockPath, 'lockf')).toBe('held');
    child.send('release');
    await child.result();
    expect(probeOnce(f.lockPath, 'flock(1)', model)).toBe('free');
    expect(probeOnce(f.lockPath, 'lockf')).toBe('free');
  });

  /**
   * Another process holds the lock as it got it after waiting; this one waits
   * for it and is stopped (SIGSTOP) while it waits; the holder releases.
   * Returns what flock(1) and fcntl.flock find then.
   */
  async function peersAfterStoppedWaiter(model: Record<string, string>): Promise<string[]> {
    const f = lockFixture();
    const holder = startChild('holdAfterWait', f, model);
    expect(await holder.nextLine()).toBe('HELD');
    const waiter = startChild('take', f, model);
    expect(await waiter.nextLine()).toBe('WAITING');
    // Stopped once it blocks on the lock: /proc/locks lists a blocked request as '->'.
    const inode = statSync(f.lockPath).ino;
    await waitFor(
      () => readFileSync('/proc/locks', 'utf8').split('\n').some((line) => line.includes('->') && line.includes(`:${inode} `)),
      'the waiter to block on the lock',
      15_000,
    );
    waiter.child.kill('SIGSTOP');
    try {
      // A stop lands asynchronously: until every thread has stopped, the wait
      // thread could still be granted the lock released below.
      const pid = waiter.child.pid!;
      await waitFor(
        () => {
          try {
            return readdirSync(`/proc/${pid}/task`).every((tid) => /^\d+ \(.*\) [tT] /.test(readFileSync(`/proc/${pid}/task/${tid}/stat`, 'utf8')));
          } catch {
            return false; // a thread ended between the listing and the read: look again
          }
        },
        'every thread of the waiter to stop',
        15_000,
      );
      holder.send('release');
      await holder.result();
      return [probeOnce(f.lockPath, 'flock(1)', model), probeOnce(f.lockPath, 'flock', model)];
    } finally {
      waiter.child.kill('SIGCONT');
      expect(await waiter.nextLine()).toBe('HELD');
      await waiter.result();
    }
  }

  it('a waiter stopped while it waits does not keep flock(1) or Python out of the free lock: no queue tickets where flock is emulated', async () => {
    expect(await peersAfterStoppedWaiter(nfsModel())).toEqual(['free', 'free']);
  });

  it('with queue tickets forced on, that stopped waiter would keep flock(1) and Python out of the free lock (why they are off there)', async () => {
    expect(await peersAfterStoppedWaiter(nfsModel('on'))).toEqual(['held', 'held']);
  });
});
