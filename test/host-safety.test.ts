// The addon runs inside other people's processes: nothing it does may crash
// or freeze them. Each scenario runs in a child process of its own, since
// some end the process on purpose or change process-wide signal handling.
import { execFileSync } from 'node:child_process';
import { chmodSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';

import { lock, type FileLock } from 'native-file-lock';

import { fixture, NODE_HEADERS, Proc, requires, runNode, skipWithout, tempDir, type Exit } from './helpers.js';

// native/wait_pool.h: threads that may block in a wait, plus the poller.
const WAIT_THREADS = 8 + 1;

// test/fixtures/host-addon.c, built once per run of this file into a
// directory that every user may read.
let builtAddon: string | undefined;
let addonDir: string | undefined;
afterAll(() => addonDir && rmSync(addonDir, { recursive: true, force: true }));
function hostAddon(): string {
  if (builtAddon === undefined) {
    addonDir = mkdtempSync(join(tmpdir(), 'nfl-host-addon-'));
    chmodSync(addonDir, 0o755);
    builtAddon = join(addonDir, 'host-addon.node');
    execFileSync('cc', ['-shared', '-fPIC', `-I${NODE_HEADERS}`, fixture('host-addon.c'), '-o', builtAddon]);
  }
  return builtAddon;
}

function parseLast<T>(proc: Proc): T {
  const lines = proc.stdout.trim().split('\n');
  return JSON.parse(lines[lines.length - 1]!) as T;
}

async function succeeded<T>(proc: Proc): Promise<T> {
  await proc.succeeded();
  return parseLast<T>(proc);
}

describe('an addon loaded only by worker_threads', () => {
  requires('flock(1)', '/proc');

  it('survives being unloaded and reloaded by workers that waited, keeps one bounded pool, and the process exits normally after idling past the park time', async () => {
    const cycles = 6;
    const proc = runNode(fixture('host-worker-cycle.mjs'), [tempDir(), String(cycles), '1500'], {
      env: { ...process.env, NATIVE_FILE_LOCK_TEST_PARK_MS: '500' },
    });
    const result = await succeeded<{
      baseline: number;
      afterCycles: number;
      afterIdle: number;
      timeouts: { code: string; ms: number }[];
    }>(proc);
    expect(proc.stderr).toBe('');
    // One pool whatever the number of loads: a parked thread and the poller, not one per worker.
    expect(result.afterCycles - result.baseline).toBeLessThanOrEqual(2);
    expect(result.afterIdle).toBeLessThanOrEqual(result.baseline);
    expect(result.timeouts).toHaveLength(cycles);
    for (const t of result.timeouts) {
      expect(t.code).toBe('ELOCKTIMEOUT');
      expect(t.ms).toBeLessThan(5_000);
    }
  });
});

describe('the process ends while waits are finishing', () => {
  it('process.exit() or an uncaught exception within a few ms of 200 waits ending never crashes the process (100 runs)', async () => {
    // Fewer under a sanitizer build (.ci/sanitize.sh), where each run is several times slower.
    const runs = process.env.LD_PRELOAD?.includes('asan') ? 24 : 100;
    const count = 200;
    const crashes: string[] = [];
    async function run(i: number): Promise<void> {
      const dir = tempDir();
      const mode = i % 2 === 0 ? 'exit' : 'throw';
      const held: FileLock[] = [];
      for (let k = 0; k < count; k++) held.push(await lock(join(dir, `k${k}`), { lockfilePath: join(dir, `k${k}.lock`) }));
      const proc = runNode(fixture('host-exit-race.mjs'), [dir, String(count), mode]);
      try {
        await proc.waitForOutput('waiting', 60_000);
      } finally {
        for (const h of held) await h.release();
      }
      const exit: Exit = await proc.exited;
      const expected = mode === 'exit' ? 0 : 1;
      if (exit.signal !== null || exit.code !== expected || (mode === 'throw' && !proc.stderr.includes('uncaught on purpose'))) {
        crashes.push(`run ${i} (${mode}): ${JSON.stringify(exit)} ${proc.stderr.slice(0, 300)}`);
      }
    }
    // Four at a time.
    for (let i = 0; i < runs; i += 4) await Promise.all([i, i + 1, i + 2, i + 3].map(run));
    expect(crashes).toEqual([]);
  }, 600_000);
});

describe('a worker that ends while its finished waits are being reported', () => {
  requires('python3');

  it.each(['throw', 'terminate'])(
    'ending by %s within a few ms of its first lock arriving never takes the process down (12 rounds)',
    async (mode) => {
      const rounds = 12;
      const proc = runNode(fixture('host-worker-teardown.mjs'), [String(rounds), '50', mode]);
      const result = await succeeded<{ rounds: number; errors: string[]; errorCount: number }>(proc);
      expect(proc.stderr).not.toMatch(/FATAL ERROR/);
      expect(result.rounds).toBe(rounds);
      // The worker's own uncaught exception reaches its 'error' event, and nothing else does.
      expect(result.errors).toEqual(mode === 'throw' ? ['uncaught on purpose'] : []);
      if (mode === 'throw') expect(result.errorCount).toBe(rounds);
    },
    300_000,
  );
});

describe('many concurrent waits', () => {
  requires('python3', '/proc');

  it('two thousand waits on distinct lock files run on a bounded number of threads, and all get their lock promptly once it is free', async () => {
    const count = 2000;
    const result = await succeeded<{ baseline: number; maxThreads: number; acquired: number; maxMs: number }>(
      runNode(fixture('host-many-waits.mjs'), [tempDir(), String(count)]),
    );
    expect(result.maxThreads - result.baseline).toBeLessThanOrEqual(WAIT_THREADS);
    expect(result.acquired).toBe(count);
    // From the holder letting go to the last of them holding its lock.
    expect(result.maxMs).toBeLessThan(10_000);
  });
});

describe('a process that may create few threads (unprivileged user, small ulimit -u)', () => {
  requires('setpriv', 'python3', '/proc');

  /** Runs node as nobody, with ulimit -u nproc if given (root ignores RLIMIT_NPROC). */
  function asNobody(script: string, args: string[], nproc?: number): Proc {
    const node = [process.execPath, script, ...args].map((a) => `'${a}'`).join(' ');
    const limit = nproc === undefined ? '' : `ulimit -u ${nproc} && `;
    return new Proc('setpriv', ['--reuid=nobody', '--regid=nogroup', '--clear-groups', 'bash', '-c', `${limit}exec ${node}`]);
  }

  function sharedDir(): string {
    const dir = tempDir();
    chmodSync(dir, 0o777);
    return dir;
  }

  it('with ulimit -u 150, three hundred concurrent waits all get their lock and the process exits normally', async () => {
    const result = await succeeded<{ acquired: number }>(asNobody(fixture('host-many-waits.mjs'), [sharedDir(), '300'], 150));
    expect(result.acquired).toBe(300);
  });

  it('a wait that cannot get a thread fails with EAGAIN from pthread_create on that call, and waits work again once threads can be had', async (ctx) => {
    skipWithout(ctx, 'c compiler', 'node headers');
    const proc = asNobody(fixture('host-many-waits.mjs'), [sharedDir(), '20', 'nproc', hostAddon()]);
    await proc.succeeded();
    const [outcomes, after] = proc.stdout.trim().split('\n').map((line) => JSON.parse(line));
    expect(outcomes).toEqual({ outcomes: Array(20).fill('EAGAIN pthread_create') });
    expect(after).toEqual({ acquiredAfter: 20 });
  });
});

describe('a host that takes over the wake signal (SIGRTMIN+3) after the first wait', () => {
  requires('c compiler', 'node headers', 'flock(1)');

  it.each(['restart', 'ignore', 'default'])(
    'with a %s disposition, a blocked wait, a timeout, an abort and terminate() of a waiting worker all end promptly, the event loop keeps ticking and the process survives',
    async (kind) => {
      const result = await succeeded<Record<string, { ms: number; code?: string; message?: string; value?: unknown }> & { maxGapMs: number }>(
        runNode(fixture('host-signal.mjs'), [hostAddon(), tempDir(), kind]),
      );
      // Bounds far below the 8 s the holders would otherwise hold.
      expect(result.blockedAbort).toMatchObject({ message: 'stop' });
      expect(result.blockedAbort!.ms).toBeLessThan(3_000);
      expect(result.timeout).toMatchObject({ code: 'ELOCKTIMEOUT' });
      expect(result.timeout!.ms).toBeLessThan(3_000);
      expect(result.abort).toMatchObject({ message: 'stop' });
      expect(result.abort!.ms).toBeLessThan(3_000);
      expect(result.terminate!.ms).toBeLessThan(3_000);
      expect(result.maxGapMs).toBeLessThan(2_000);
      // The wait still blocked when it was aborted gave back what it got.
      expect(result.again).toMatchObject({ value: 2 });
    },
  );
});
