// The short form of `npm run soak`: 16 processes, random SIGKILLs, one lock.
// The bookkeeping that proves "no overlap, nothing lost" is tested first on
// hand-written journals, so that a soak passing means something.
import { spawn } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterEach, describe, expect, it } from 'vitest';

import { requires } from './helpers.js';
import { auditJournals, type SoakResult } from './soak/run.mjs';

const driver = fileURLToPath(new URL('./soak/run.mjs', import.meta.url));
// Three soaks (flock, fcntl, the NFS model) of this many seconds each.
const SOAK_SECONDS = Number(process.env.NFL_SOAK_TEST_SECONDS ?? 10);
// What each soak must exercise, by count: a slow or sanitized build runs
// longer to reach it instead of failing. The bound only stops a stuck run.
const MIN_KILLS = 20;
const MIN_HOLDER_KILLS = 3;
const MIN_SECTIONS = 200;
const MAX_SECONDS = 240;

describe('the soak audit', () => {
  const dirs: string[] = [];
  afterEach(() => {
    for (const dir of dirs.splice(0)) rmSync(dir, { recursive: true, force: true });
  });
  function tempDir(): string {
    const dir = mkdtempSync(join(tmpdir(), 'nfl-audit-'));
    dirs.push(dir);
    return dir;
  }

  function audit(journals: Record<number, string[]>, killedAt: Record<number, number>, counter: number) {
    const dir = tempDir();
    for (const [id, lines] of Object.entries(journals)) writeFileSync(join(dir, `journal-${id}.log`), lines.map((l) => l + '\n').join(''));
    const instances = new Map<number, { killedAt?: number }>();
    for (const id of Object.keys(journals)) instances.set(Number(id), { killedAt: killedAt[Number(id)] });
    return auditJournals(dir, instances, String(counter));
  }

  it('accepts sections that follow each other and counts them', () => {
    const result = audit({ 0: ['E 1 100 with free', 'I 1 1', 'C 1 1'], 1: ['E 1 101 try free', 'I 1 2', 'C 1 2', 'B 1', 'T 1', 'A 1'] }, {}, 2);
    expect(result).toMatchObject({ committed: 2, logged: 2, reconciled: 0, overlaps: 0, lost: 0, busy: 1, timeouts: 1, aborts: 1 });
    expect(result.problems).toEqual([]);
  });

  it('counts a section killed after its counter write but before its journal write as committed', () => {
    const result = audit(
      { 0: ['E 1 100 with free', 'I 1 1'], 1: ['E 1 105 with 0:1', 'I 1 2', 'C 1 2'] },
      { 0: 104 },
      2,
    );
    expect(result).toMatchObject({ committed: 2, logged: 1, reconciled: 1, overlaps: 0, lost: 0 });
  });

  it('does not count a section killed before its counter write', () => {
    const result = audit({ 0: ['E 1 100 with free', 'I 1 1'], 1: ['E 1 105 with 0:1', 'I 1 1', 'C 1 1'] }, { 0: 104 }, 1);
    expect(result).toMatchObject({ committed: 1, reconciled: 0, overlaps: 0, lost: 0 });
  });

  it('reports an entry while a live holder is inside as an overlap', () => {
    const result = audit({ 0: ['E 1 100 with free', 'I 1 1', 'C 1 1'], 1: ['E 1 101 with 0:1', 'I 1 2', 'C 1 2'] }, {}, 2);
    expect(result.overlaps).toBe(1);
  });

  it('reports an entry before the holder was killed as an overlap', () => {
    const result = audit({ 0: ['E 1 100 with free', 'I 1 1'], 1: ['E 1 101 with 0:1', 'I 1 1', 'C 1 1'] }, { 0: 150 }, 1);
    expect(result.overlaps).toBe(1);
  });

  it('reports two sections that wrote the same counter value, and increments the counter does not show', () => {
    const twice = audit({ 0: ['E 1 100 with free', 'I 1 1', 'C 1 1'], 1: ['E 1 100 with free', 'I 1 1', 'C 1 1'] }, {}, 1);
    expect(twice.overlaps).toBeGreaterThan(0);
    const missing = audit({ 0: ['E 1 100 with free', 'I 1 1', 'C 1 1'] }, {}, 2);
    expect(missing.lost).toBe(1);
    const overwritten = audit({ 0: ['E 1 100 with free', 'I 1 1', 'C 1 1', 'E 2 101 with free', 'I 2 2', 'C 2 2'] }, {}, 1);
    expect(overwritten.lost).toBe(1);
  });

  it('accepts shared sections side by side and one that sees the marker of a writer killed inside before it entered', () => {
    const result = audit({ 0: ['E 1 100 with free', 'I 1 1'], 1: ['S 1 101 shared free', 'S 2 160 shared 0:1'], 2: ['S 1 101 shared free'] }, { 0: 150 }, 0);
    expect(result).toMatchObject({ shared: 3, overlaps: 0, lost: 0 });
    expect(result.problems).toEqual([]);
  });

  it('reports a shared section that a writer entered, or that began while a live writer was inside, as an overlap', () => {
    const entered = audit({ 0: ['S 1 100 shared free', 'X 1 shared 1:1'], 1: ['E 1 101 with free', 'I 1 1', 'C 1 1'] }, {}, 1);
    expect(entered.overlaps).toBe(1);
    const inside = audit({ 0: ['E 1 100 with free', 'I 1 1', 'C 1 1'], 1: ['S 1 101 shared 0:1'] }, {}, 1);
    expect(inside.overlaps).toBe(1);
  });

  it('ignores a final line cut short by a kill', () => {
    const dir = tempDir();
    writeFileSync(join(dir, 'journal-0.log'), 'E 1 100 with free\nI 1 1\nC 1 1\nE 2 10');
    const result = auditJournals(dir, new Map([[0, { killedAt: 200 }]]), '1');
    expect(result).toMatchObject({ committed: 1, entered: 1, lost: 0, overlaps: 0 });
    expect(result.problems).toEqual([]);
  });
});

describe('the soak driver', () => {
  requires('/proc', 'flock(1)');
  it('ends with a problem named, instead of waiting forever, when its workers die before they are ready', async () => {
    // NFL_SOAK_TEST_WORKER_EXIT makes every worker exit with that code before it says it is ready.
    const args = [driver, '--duration', '1', '--processes', '4', '--max-duration', '5'];
    const child = spawn(process.execPath, args, { stdio: ['ignore', 'pipe', 'pipe'], env: { ...process.env, NFL_SOAK_TEST_WORKER_EXIT: '7' } });
    let stdout = '';
    child.stdout.setEncoding('utf8').on('data', (chunk: string) => (stdout += chunk));
    child.stderr.resume();
    const code = await new Promise<number | null>((resolve) => {
      const timer = setTimeout(() => {
        child.kill('SIGKILL');
        resolve(null);
      }, 60_000);
      child.once('close', (exitCode) => {
        clearTimeout(timer);
        resolve(exitCode);
      });
    });
    expect(code).toBe(1);
    const line = stdout.split('\n').find((l) => l.startsWith('SOAK_RESULT '));
    const result = JSON.parse(line!.slice('SOAK_RESULT '.length)) as SoakResult;
    expect(result.problems.join('\n')).toMatch(/exited on its own: \{"code":7/);
    expect(result.problems.join('\n')).toMatch(/stopped starting workers/);
  }, 90_000);
});

// nfs: the NFS model (test/nfs-model/), flock emulated with whole-file OFD record locks.
describe.each(['flock', 'fcntl', 'nfs'] as const)('the soak with %s locks', (lockKind) => {
  // The driver counts descriptors in /proc and checks the lock with flock(1) or Python's lockf.
  const needs = { flock: ['flock(1)'], fcntl: ['posix', 'python3'], nfs: ['linux', 'c compiler', 'flock(1)'] } as const;
  requires('/proc', ...needs[lockKind]);
  it(
    'lets no two of 16 processes hold the lock at once and loses no increment while holders and waiters are SIGKILLed',
    async () => {
      const args = [
        driver,
        ...['--duration', String(SOAK_SECONDS), '--processes', '16', '--lock-kind', lockKind],
        ...['--min-kills', String(MIN_KILLS), '--min-holder-kills', String(MIN_HOLDER_KILLS), '--min-sections', String(MIN_SECTIONS)],
        ...['--max-duration', String(MAX_SECONDS)],
      ];
      const child = spawn(process.execPath, args, { stdio: ['ignore', 'pipe', 'pipe'] });
      let stdout = '';
      let stderr = '';
      child.stdout.setEncoding('utf8').on('data', (chunk: string) => (stdout += chunk));
      child.stderr.setEncoding('utf8').on('data', (chunk: string) => (stderr += chunk));
      const code = await new Promise<number | null>((resolve) => child.once('close', resolve));
      const line = stdout.split('\n').find((l) => l.startsWith('SOAK_RESULT '));
      if (line === undefined) throw new Error(`the soak printed no result (exit ${code}); stdout: ${stdout}\nstderr: ${stderr}`);
      const result = JSON.parse(line.slice('SOAK_RESULT '.length)) as SoakResult;
      console.log(stdout.split('\n').find((l) => l.startsWith('soak ')));

      expect(result.lockKind).toBe(lockKind);
      expect(result.problems.slice(0, 10)).toEqual([]);
      expect(result.overlaps).toBe(0);
      expect(result.lost).toBe(0);
      expect(result.errors).toBe(0);
      expect(result.criticalSections).toBe(result.counter);
      expect(result.sharedSections).toBeGreaterThan(0);
      expect(result.leakedDescriptors).toBe(0);
      expect(result.lockFreeAfter).toBe(true);
      // The run must actually have exercised what it claims to.
      expect(result.kills).toBeGreaterThanOrEqual(MIN_KILLS);
      expect(result.holderKills).toBeGreaterThanOrEqual(MIN_HOLDER_KILLS);
      expect(result.spawned).toBe(16 + result.kills);
      expect(result.criticalSections).toBeGreaterThanOrEqual(MIN_SECTIONS);
      expect(result.timeouts + result.aborts + result.busy).toBeGreaterThan(0);
      expect(code).toBe(0);
    },
    Math.max(SOAK_SECONDS, MAX_SECONDS) * 1000 + 60_000,
  );
});
