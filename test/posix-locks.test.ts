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
import { spawn, spawnSync, type ChildProcessWithoutNullStreams } from 'node:child_process';
import { mkdirSync, mkdtempSync, readFileSync, rmSync, statSync, symlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createInterface } from 'node:readline';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';

import { requires, waitFor } from './helpers.js';
import { buildShim, preloadWith } from './nfs-model/build.mjs';

// Every scenario probes the lock from Python's fcntl module.
requires('posix', 'python3');

const packageRoot = fileURLToPath(new URL('..', import.meta.url));
const indexUrl = pathToFileURL(join(packageRoot, 'dist/esm/index.js')).href;

// Answers each line 'probe' on stdin with 'held' or 'free': whether a lock of
// the given kind on the file could be taken right now (it is given back at once).
const PROBE_PEER = String.raw`
import fcntl, os, sys
path, kind = sys.argv[1], sys.argv[2]
fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o666)
take = (lambda: fcntl.lockf(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)) if kind == 'lockf' else (lambda: fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB))
give = (lambda: fcntl.lockf(fd, fcntl.LOCK_UN)) if kind == 'lockf' else (lambda: fcntl.flock(fd, fcntl.LOCK_UN))
for line in sys.stdin:
    try:
        take()
    except OSError:
        print('held', flush=True)
        continue
    give()
    print('free', flush=True)
`;

// One child process (and its worker_threads). Scenarios are selected by argv;
// the result is printed as 'RESULT <json>'. Control lines arrive on stdin.
const CHILD = String.raw`
import { spawn } from 'node:child_process';
import { once } from 'node:events';
import { closeSync, openSync, readFileSync, writeFileSync } from 'node:fs';
import { createInterface } from 'node:readline';
import { Worker, isMainThread, parentPort, workerData } from 'node:worker_threads';
import { fileURLToPath } from 'node:url';

const { withFileLock, lock, tryLock, LockTimeoutError } = await import(process.env.NFL_INDEX_URL);
const PROBE_PEER = process.env.NFL_PROBE_PEER;
const sleep = (ms) => new Promise((resolve) => setTimeout(resolve, ms));
const describe = (v) => (v instanceof Error ? v.name + ' ' + v.code + ' ' + v.message : v?.path ? 'a lock on ' + v.path : String(v));
const rand = (n) => Math.floor(Math.random() * n);

// A peer in another process that reports whether the lock file is locked.
function peer(lockPath, kind) {
  const { LD_PRELOAD, NFL_PEER_PRELOAD, ...env } = process.env;
  if (NFL_PEER_PRELOAD) env.LD_PRELOAD = NFL_PEER_PRELOAD;
  const py = spawn('python3', ['-c', PROBE_PEER, lockPath, kind], { stdio: ['pipe', 'pipe', 'inherit'], env });
  const replies = [];
  createInterface({ input: py.stdout }).on('line', (line) => replies.shift()?.(line));
  py.once('exit', (code) => { for (const reply of replies.splice(0)) reply('unknown: the peer exited with ' + code); });
  return {
    probe: () => new Promise((resolve) => { replies.push(resolve); py.stdin.write('probe\n'); }),
    close: () => new Promise((resolve) => { py.once('exit', resolve); py.stdin.end(); }),
  };
}

function checker(p) {
  const result = { held: 0, bad: [] };
  result.expectHeld = async (where) => {
    const seen = await p.probe();
    if (seen === 'held') result.held++;
    else result.bad.push(where + ': the peer found the lock ' + seen);
  };
  result.expect = (ok, what) => { if (!ok) result.bad.push(what); };
  return result;
}

const stdinLines = isMainThread ? createInterface({ input: process.stdin }) : undefined;
const nextLine = () => new Promise((resolve) => stdinLines.once('line', resolve));

// Increments the counter file under the lock, probing from outside that the
// lock is held for the whole critical section.
async function increments(res, lockPath, counter, n, probeKind) {
  const p = peer(lockPath, probeKind);
  const c = checker(p);
  for (let i = 0; i < n; i++) {
    await withFileLock(res, async () => {
      await c.expectHeld('before increment ' + i);
      const value = Number(readFileSync(counter, 'utf8'));
      await sleep(rand(2));
      writeFileSync(counter, String(value + 1));
      await c.expectHeld('after increment ' + i);
    });
  }
  await p.close();
  return { held: c.held, bad: c.bad };
}

const scenarios = {
  // Holders in sequence, many concurrent waiters, and every way of not
  // getting the lock while it is held: none may drop it.
  async holders({ res, alias, linkedLockfile, lockPath, probeKind }) {
    const p = peer(lockPath, probeKind);
    const c = checker(p);
    for (let i = 0; i < 20; i++) await withFileLock(res, () => c.expectHeld('sequential holder ' + i));
    await Promise.all(
      Array.from({ length: 8 }, (_, i) =>
        withFileLock(res, async () => {
          await c.expectHeld('concurrent holder ' + i + ' on entry');
          await sleep(rand(3));
          await c.expectHeld('concurrent holder ' + i + ' on exit');
        }),
      ),
    );
    // Held with lock(), not withFileLock: inside a withFileLock callback the
    // same calls would be reentrant and succeed at once.
    const holder = await lock(res);
    c.expect((await tryLock(res)) === undefined, 'tryLock succeeded while the lock was held');
    await c.expectHeld('after a busy tryLock');
    const timedOut = await lock(res, { timeout: 5 }).then((h) => h, (e) => e);
    c.expect(timedOut instanceof LockTimeoutError, 'a lock with timeout 5 got ' + describe(timedOut));
    await c.expectHeld('after a timeout');
    const controller = new AbortController();
    setTimeout(() => controller.abort(new Error('gave up')), 5);
    const aborted = await lock(res, { signal: controller.signal }).then((h) => h, (e) => e);
    c.expect(aborted?.message === 'gave up', 'an aborted lock got ' + describe(aborted));
    await c.expectHeld('after an abort');
    // The same lock file reached through other names shares the one descriptor.
    const viaAlias = await lock(alias, { timeout: 5 }).then((h) => h, (e) => e);
    c.expect(viaAlias instanceof LockTimeoutError, 'the lock through a symlinked resource got ' + describe(viaAlias));
    await c.expectHeld('after a wait through a symlinked resource');
    const viaDir = await lock('unused', { lockfilePath: linkedLockfile, timeout: 5 }).then((h) => h, (e) => e);
    c.expect(viaDir instanceof LockTimeoutError, 'the lock through a symlinked directory got ' + describe(viaDir));
    await c.expectHeld('after a wait through a symlinked directory');
    await holder.release();
    await withFileLock(res, async () => {
      await withFileLock(res, () => c.expectHeld('inside a nested withFileLock'));
      await c.expectHeld('after a nested withFileLock');
    });
    // The idle descriptor is closed after 1-2 s and a new one opened later.
    await withFileLock(res, () => c.expectHeld('before the idle sweep'));
    await sleep(2500);
    await withFileLock(res, () => c.expectHeld('after the idle sweep'));
    const outside = await p.probe();
    c.expect(outside === 'free', 'the peer found the lock ' + outside + ' after every holder released it');
    await p.close();
    return { held: c.held, bad: c.bad };
  },

  async increments({ res, lockPath, counter, n, probeKind }) {
    return increments(res, lockPath, counter, n, probeKind);
  },

  // worker_threads of this process incrementing one counter.
  async threads({ res, lockPath, counter, n, threads, probeKind }) {
    const results = await Promise.all(
      Array.from({ length: threads }, () => {
        const worker = new Worker(new URL(import.meta.url), { workerData: { res, lockPath, counter, n, probeKind } });
        return new Promise((resolve, reject) => {
          worker.once('message', resolve);
          worker.once('error', reject);
        });
      }),
    );
    return { held: results.reduce((s, r) => s + r.held, 0), bad: results.flatMap((r) => r.bad) };
  },

  // A worker_thread that ends while holding the lock must not keep it.
  async threadEndsHolding({ res, lockPath, probeKind }) {
    const p = peer(lockPath, probeKind);
    const c = checker(p);
    for (const how of ['exit', 'terminate']) {
      const worker = new Worker(
        'const { workerData, parentPort } = require("node:worker_threads");' +
          'import(workerData.url).then(async ({ lock }) => { await lock(workerData.res); parentPort.postMessage("held");' +
          ' parentPort.once("message", () => process.exit(0)); });',
        { eval: true, workerData: { url: process.env.NFL_INDEX_URL, res, how } },
      );
      const exited = new Promise((resolve) => worker.once('exit', resolve));
      await new Promise((resolve) => worker.once('message', resolve));
      await c.expectHeld('while a worker_thread holds it (' + how + ')');
      if (how === 'terminate') await worker.terminate();
      else worker.postMessage('exit now');
      await exited;
      const after = await lock(res, { timeout: 3000 }).then((h) => h, (e) => e);
      c.expect(typeof after?.release === 'function', 'after the thread ended (' + how + ') the lock was not free: ' + describe(after));
      await c.expectHeld('held by the main thread after the worker ended (' + how + ')');
      await after.release?.();
    }
    await p.close();
    return { held: c.held, bad: c.bad };
  },

  // Holds the lock and follows instructions on stdin, for probes from the test.
  // Holds the lock as a worker_thread got it through the native wait: the
  // main thread holds first while the worker waits in the process-wide slot.
  async holdAfterWait({ res }) {
    const main = await lock(res);
    const worker = new Worker(
      'const { workerData, parentPort } = require("node:worker_threads");' +
        'import(workerData.url).then(async ({ lock }) => { parentPort.postMessage("waiting"); const held = await lock(workerData.res);' +
        ' parentPort.postMessage("held"); parentPort.once("message", async () => { await held.release(); parentPort.postMessage("released"); }); });',
      { eval: true, workerData: { url: process.env.NFL_INDEX_URL, res } },
    );
    const next = async () => (await once(worker, 'message'))[0];
    await next();
    // Long enough for the worker to be waiting in the slot, not just in line.
    await sleep(300);
    await main.release();
    await next();
    console.log('HELD');
    await nextLine();
    worker.postMessage('release');
    await next();
    await worker.terminate();
    return { released: true };
  },

  // Waits for the lock, then releases it.
  async take({ res }) {
    console.log('WAITING');
    const held = await lock(res);
    console.log('HELD');
    await held.release();
    return { released: true };
  },

  async hold({ res, lockPath }) {
    const held = await lock(res);
    console.log('HELD');
    for (;;) {
      const line = await nextLine();
      if (line === 'close-own-descriptor') {
        // The caller's own open/close of the lock file: under record-lock
        // semantics this drops the process's lock (the documented limit).
        closeSync(openSync(lockPath, 'r'));
        console.log('CLOSED');
      } else if (line === 'hardlink') {
        const other = await tryLock('unused', { lockfilePath: lockPath + '.hardlink' });
        console.log(other === undefined ? 'HARDLINK busy' : 'HARDLINK acquired');
        await other?.release();
        console.log('HARDLINK released');
      } else break;
    }
    await held.release();
    return { released: true };
  },
};

if (isMainThread) {
  const [name, json] = process.argv.slice(2);
  const result = await scenarios[name](JSON.parse(json));
  console.log('RESULT ' + JSON.stringify(result));
  process.exit(0);
} else {
  const { res, lockPath, counter, n, probeKind } = workerData;
  parentPort.postMessage(await increments(res, lockPath, counter, n, probeKind));
}
`;

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
let childScript: string;
const children: ChildProcessWithoutNullStreams[] = [];

beforeEach(() => {
  dir = mkdtempSync(join(tmpdir(), 'nfl-posix-'));
  childScript = join(dir, 'child.mjs');
  writeFileSync(childScript, CHILD);
});

afterEach(() => {
  for (const child of children.splice(0)) if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL');
  rmSync(dir, { recursive: true, force: true });
});

function startChild(scenario: string, args: Record<string, unknown>, env: Record<string, string>) {
  const child = spawn(process.execPath, [childScript, scenario, JSON.stringify(args)], {
    env: { ...process.env, ...env, NFL_INDEX_URL: indexUrl, NFL_PROBE_PEER: PROBE_PEER },
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

/** One attempt by a peer process to take the lock: 'held' if it could not. */
function probeOnce(lockPath: string, kind: 'lockf' | 'flock' | 'flock(1)', model: Record<string, string> = {}): 'held' | 'free' {
  const { LD_PRELOAD: _preload, ...env } = process.env;
  if (model.NFL_PEER_PRELOAD) env.LD_PRELOAD = model.NFL_PEER_PRELOAD;
  if (kind === 'flock(1)') {
    const status = spawnSync('flock', ['-n', lockPath, 'true'], { env }).status;
    return status === 0 ? 'free' : 'held';
  }
  const out = spawnSync('python3', ['-c', PROBE_PEER, lockPath, kind], { input: 'probe\n', encoding: 'utf8', env });
  const answer = out.stdout.trim();
  if (answer !== 'held' && answer !== 'free') throw new Error(`probe failed: ${out.stdout} ${out.stderr}`);
  return answer;
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
    spawnSync('ln', [f.lockPath, f.lockPath + '.hardlink']);
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
