// Property-based tests of the lock inside one process, through the public API
// only: fast-check generates interleavings of lock / tryLock / release /
// abort / timeout / nested withFileLock calls (awaited or not, at any depth)
// on two lock files, runs them on real timers, and checks the promises the
// library makes to callers in one process: never two holders, waiters served
// in the order they asked (unless they gave up), a same-path call inside any
// fn runs at once, and every call settles.
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import fc from 'fast-check';
import { afterAll, describe, expect, it } from 'vitest';

import { FileLockError, LockTimeoutError, lock, tryLock, withFileLock, type FileLock } from 'native-file-lock';

const dir = mkdtempSync(join(tmpdir(), 'nfl-property-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));
const PATHS = [join(dir, 'first'), join(dir, 'second')] as const;
type PathIndex = 0 | 1;

const sleep = (ms: number) => new Promise<void>((resolve) => setTimeout(resolve, ms));

type Release = 'release' | 'release-twice' | 'async-dispose' | 'dispose';
type Op =
  | { kind: 'lock'; path: PathIndex; start: number; hold: number; release: Release }
  | { kind: 'timeout'; path: PathIndex; start: number; hold: number; timeout: number }
  | { kind: 'abort'; path: PathIndex; start: number; hold: number; abortAfter: number | 'already' }
  | { kind: 'try'; path: PathIndex; start: number; hold: number }
  | {
      kind: 'with';
      path: PathIndex;
      start: number;
      hold: number;
      sync: boolean;
      nested: 'none' | 'same' | 'other';
      /** Depth of a chain of same-path calls the fn starts and does not await (0: none). */
      detached: number;
      throws: boolean;
    };

const path = fc.constantFrom<PathIndex>(0, 1);
// Most calls start in the same tick, so that they queue behind each other.
const start = fc.oneof({ weight: 3, arbitrary: fc.constant(0) }, { weight: 2, arbitrary: fc.integer({ min: 1, max: 8 }) });
const hold = fc.integer({ min: 0, max: 4 });
const op: fc.Arbitrary<Op> = fc.oneof(
  fc.record({ kind: fc.constant('lock' as const), path, start, hold, release: fc.constantFrom<Release>('release', 'release-twice', 'async-dispose', 'dispose') }),
  fc.record({ kind: fc.constant('timeout' as const), path, start, hold, timeout: fc.integer({ min: 0, max: 10 }) }),
  fc.record({ kind: fc.constant('abort' as const), path, start, hold, abortAfter: fc.oneof(fc.constant('already' as const), fc.integer({ min: 0, max: 10 })) }),
  fc.record({ kind: fc.constant('try' as const), path, start, hold }),
  fc.record({
    kind: fc.constant('with' as const),
    path,
    start,
    hold,
    sync: fc.boolean(),
    nested: fc.constantFrom('none' as const, 'same' as const, 'other' as const),
    detached: fc.oneof({ weight: 2, arbitrary: fc.constant(0) }, { weight: 1, arbitrary: fc.integer({ min: 1, max: 3 }) }),
    throws: fc.boolean(),
  }),
);

interface Outcome {
  granted: boolean;
  how: string;
}

interface Api {
  lock: typeof lock;
  tryLock: typeof tryLock;
  withFileLock: typeof withFileLock;
}
const library: Api = { lock, tryLock, withFileLock };

/** Runs one interleaving and returns what went wrong, if anything. */
async function runScenario(ops: Op[], { lock, tryLock, withFileLock }: Api = library, settleWithin = 5000): Promise<string[]> {
  const violations: string[] = [];
  const holders = [0, 0];
  const grants: number[][] = [[], []];
  let nextRequest = 0;
  /** Nested fns of a detached chain still running, per path: nobody else may enter meanwhile. */
  const nestedRunning = [0, 0];
  const detachedWork: Promise<void>[] = [];

  function enter(p: PathIndex, request: number, who: string): void {
    if (nestedRunning[p] > 0) violations.push(`${who}: entered while a nested call of another holder of path ${p} still ran`);
    holders[p]++;
    grants[p].push(request);
    if (holders[p] > 1) violations.push(`${who}: ${holders[p]} holders of path ${p} at once`);
  }
  function leave(p: PathIndex): void {
    holders[p]--;
  }
  async function inside(ms: number): Promise<void> {
    if (ms > 0) await sleep(ms);
  }

  function checkFileLock(fileLock: FileLock, p: PathIndex, who: string): void {
    if (fileLock.resource !== PATHS[p]) violations.push(`${who}: resource ${fileLock.resource}`);
    if (fileLock.path !== PATHS[p] + '.lock') violations.push(`${who}: lock path ${fileLock.path}`);
    if (fileLock.released) violations.push(`${who}: a fresh lock says it is released`);
  }

  /**
   * Starts a same-path withFileLock inside the current fn without awaiting it;
   * its fn starts another, awaited or not, down to depth 1. Each must run at
   * once, as a reentrant call, even after the fns around it have returned.
   */
  function detach(p: PathIndex, depth: number, delay: number, who: string): Promise<void> {
    let ranAtOnce = false;
    nestedRunning[p]++;
    const done = withFileLock(PATHS[p], async () => {
      ranAtOnce = true;
      try {
        await inside(delay);
        if (depth > 1) {
          const deeper = detach(p, depth - 1, delay, who);
          if (depth % 2 === 0) await deeper;
        }
        await inside(delay);
      } finally {
        nestedRunning[p]--;
      }
    }, { timeout: 1000 });
    if (!ranAtOnce) violations.push(`${who}: a detached nested call at depth ${depth} did not run at once`);
    const settledDone = done.then(
      () => {},
      (error: unknown) => {
        if (!ranAtOnce) nestedRunning[p]--;
        violations.push(`${who}: a detached nested call at depth ${depth} failed: ${String(error)}`);
      },
    );
    detachedWork.push(settledDone);
    return settledDone;
  }

  async function holdAndRelease(fileLock: FileLock, p: PathIndex, ms: number, how: Release, who: string): Promise<void> {
    await inside(ms);
    leave(p);
    if (how === 'release') await fileLock.release();
    else if (how === 'release-twice') {
      await fileLock.release();
      await fileLock.release();
    } else if (how === 'async-dispose') await fileLock[Symbol.asyncDispose]();
    else fileLock[Symbol.dispose]();
    if (!fileLock.released) violations.push(`${who}: released is still false after ${how}`);
  }

  async function run(o: Op, i: number): Promise<Outcome> {
    const who = `op ${i} (${o.kind} on path ${o.path})`;
    const request = nextRequest++;
    switch (o.kind) {
      case 'lock': {
        const fileLock = await lock(PATHS[o.path]);
        enter(o.path, request, who);
        checkFileLock(fileLock, o.path, who);
        await holdAndRelease(fileLock, o.path, o.hold, o.release, who);
        return { granted: true, how: 'lock' };
      }
      case 'timeout': {
        let fileLock: FileLock;
        try {
          fileLock = await lock(PATHS[o.path], { timeout: o.timeout });
        } catch (error) {
          if (!(error instanceof LockTimeoutError) || error.code !== 'ELOCKTIMEOUT' || error.path !== PATHS[o.path] + '.lock') {
            violations.push(`${who}: rejected with ${String(error)} instead of a LockTimeoutError`);
          }
          return { granted: false, how: 'timed out' };
        }
        enter(o.path, request, who);
        checkFileLock(fileLock, o.path, who);
        await holdAndRelease(fileLock, o.path, o.hold, 'release', who);
        return { granted: true, how: 'lock within timeout' };
      }
      case 'abort': {
        const controller = new AbortController();
        const reason = new Error(`abort of ${who}`);
        if (o.abortAfter === 'already') controller.abort(reason);
        const timer = o.abortAfter === 'already' ? undefined : setTimeout(() => controller.abort(reason), o.abortAfter);
        let fileLock: FileLock;
        try {
          fileLock = await lock(PATHS[o.path], { signal: controller.signal });
        } catch (error) {
          if (error !== reason) violations.push(`${who}: rejected with ${String(error)} instead of the abort reason`);
          return { granted: false, how: 'aborted' };
        } finally {
          clearTimeout(timer);
        }
        if (o.abortAfter === 'already') violations.push(`${who}: granted although the signal was already aborted`);
        enter(o.path, request, who);
        checkFileLock(fileLock, o.path, who);
        await holdAndRelease(fileLock, o.path, o.hold, 'release', who);
        return { granted: true, how: 'lock before abort' };
      }
      case 'try': {
        const fileLock = await tryLock(PATHS[o.path]);
        if (fileLock === undefined) return { granted: false, how: 'busy' };
        enter(o.path, request, who);
        checkFileLock(fileLock, o.path, who);
        await holdAndRelease(fileLock, o.path, o.hold, 'release', who);
        return { granted: true, how: 'tryLock' };
      }
      case 'with': {
        const failure = new Error(`thrown by ${who}`);
        const body = async (): Promise<string> => {
          enter(o.path, request, who);
          if (o.detached > 0) void detach(o.path, o.detached, o.hold, who);
          if (o.nested === 'same') {
            // Reentrant: must run at once, while this call still holds the lock.
            let ranInside = false;
            const value = await withFileLock(PATHS[o.path], () => {
              ranInside = holders[o.path] === 1;
              return 'inner';
            });
            if (value !== 'inner' || !ranInside) violations.push(`${who}: the nested call did not run inside the outer one`);
          } else if (o.nested === 'other' && o.path === 0) {
            // Always first → second, never the reverse, so no two calls can deadlock.
            const innerRequest = nextRequest++;
            await withFileLock(PATHS[1], async () => {
              enter(1, innerRequest, `${who} nested`);
              await inside(o.hold);
              leave(1);
            });
          }
          await inside(o.hold);
          leave(o.path);
          if (o.throws) throw failure;
          return 'value';
        };
        const syncBody = (): string => {
          enter(o.path, request, who);
          if (o.detached > 0) void detach(o.path, o.detached, o.hold + 1, who);
          leave(o.path);
          if (o.throws) throw failure;
          return 'value';
        };
        try {
          const value = await (o.sync ? withFileLock(PATHS[o.path], syncBody) : withFileLock(PATHS[o.path], body));
          if (o.throws || value !== 'value') violations.push(`${who}: resolved with ${String(value)}`);
        } catch (error) {
          if (!o.throws || error !== failure) violations.push(`${who}: rejected with ${String(error)} instead of fn's own error`);
        }
        return { granted: true, how: 'withFileLock' };
      }
    }
  }

  const settled = ops.map(() => false);
  const runs = ops.map((o, i) => {
    const started = o.start === 0 ? run(o, i) : sleep(o.start).then(() => run(o, i));
    return started.then(
      (outcome) => {
        settled[i] = true;
        return outcome;
      },
      (error: unknown) => {
        settled[i] = true;
        violations.push(`op ${i} (${o.kind}) failed unexpectedly: ${String(error)}`);
        return { granted: false, how: 'error' };
      },
    );
  });
  // Generous: the longest scenario holds for well under 200 ms in total.
  let timer: ReturnType<typeof setTimeout> | undefined;
  await Promise.race([
    Promise.all(runs).then(async () => {
      // Detached chains may start more of themselves while they run.
      for (let seen = -1; seen !== detachedWork.length; ) {
        seen = detachedWork.length;
        await Promise.all(detachedWork);
      }
    }),
    new Promise((resolve) => (timer = setTimeout(resolve, settleWithin))),
  ]);
  clearTimeout(timer);
  const pending = settled.flatMap((done, i) => (done ? [] : [`op ${i} (${ops[i].kind})`]));
  if (pending.length > 0) violations.push(`never settled: ${pending.join(', ')}`);

  for (const p of [0, 1] as const) {
    // Grants in the order requests were made: FIFO among those that did not give up.
    for (let k = 1; k < grants[p].length; k++) {
      if (grants[p][k] < grants[p][k - 1]) violations.push(`path ${p}: request ${grants[p][k]} served after the later request ${grants[p][k - 1]}`);
    }
    if (holders[p] !== 0) violations.push(`path ${p}: ${holders[p]} holders left at the end`);
    // Nothing may stay held once every call has settled.
    const after = await tryLock(PATHS[p]);
    if (after === undefined) violations.push(`path ${p}: still locked after every call settled`);
    else await after.release();
  }
  return violations;
}

describe('the in-process lock under random interleavings', () => {
  it('never has two holders, serves waiters first come first served and settles every call', async () => {
    await fc.assert(
      fc.asyncProperty(fc.array(op, { minLength: 1, maxLength: 16 }), async (ops) => {
        const violations = await runScenario(ops);
        expect(violations).toEqual([]);
      }),
      { numRuns: 100, endOnFailure: true },
    );
  });

  it('reports overlapping holders, served-out-of-order waiters and calls that never settle when a lock has those faults', async () => {
    // Deliberately broken stand-ins, to show that the checks above can fail.
    const fakeFileLock = (lockPath: unknown): FileLock => {
      const path = String(lockPath);
      const fileLock = {
        path: path + '.lock',
        resource: path,
        shared: false,
        released: false,
        release: async () => void (fileLock.released = true),
        [Symbol.asyncDispose]: async () => void (fileLock.released = true),
        [Symbol.dispose]: () => void (fileLock.released = true),
      };
      return fileLock;
    };
    const excludesNobody: Api = {
      lock: async (path) => fakeFileLock(path),
      tryLock: async (path) => fakeFileLock(path),
      withFileLock: async (_path, fn) => await fn(),
    } as Api;
    const overlapping = await runScenario(
      [
        { kind: 'lock', path: 0, start: 0, hold: 3, release: 'release' },
        { kind: 'lock', path: 0, start: 0, hold: 3, release: 'release' },
      ],
      excludesNobody,
    );
    expect(overlapping.join('\n')).toMatch(/2 holders of path 0 at once/);

    // Last come, first served.
    const stack: Array<() => void> = [];
    let busy = false;
    const lifo: Api = {
      lock: async (path) => {
        if (busy) await new Promise<void>((resolve) => stack.push(resolve));
        busy = true;
        const fileLock = fakeFileLock(path);
        fileLock.release = async () => {
          (fileLock as { released: boolean }).released = true;
          const next = stack.pop();
          if (next) next();
          else busy = false;
        };
        return fileLock;
      },
      tryLock: async (path) => (busy ? undefined : lifo.lock(path)),
      withFileLock: async () => {
        throw new Error('not used');
      },
    } as Api;
    const unfair = await runScenario(
      [
        { kind: 'lock', path: 0, start: 0, hold: 2, release: 'release' },
        { kind: 'lock', path: 0, start: 0, hold: 0, release: 'release' },
        { kind: 'lock', path: 0, start: 0, hold: 0, release: 'release' },
      ],
      lifo,
    );
    expect(unfair.join('\n')).toMatch(/served after the later request/);

    const hangs: Api = { ...excludesNobody, lock: () => new Promise<FileLock>(() => {}) };
    const stuck = await runScenario([{ kind: 'lock', path: 0, start: 0, hold: 0, release: 'release' }], hangs, 200);
    expect(stuck.join('\n')).toMatch(/never settled: op 0/);
  });

  it('rejects a waiter that gives up without disturbing the order of those behind it', async () => {
    const order: string[] = [];
    const holder = await lock(PATHS[0]);
    const controller = new AbortController();
    const a = withFileLock(PATHS[0], () => order.push('a'));
    const b = lock(PATHS[0], { signal: controller.signal });
    const c = lock(PATHS[0], { timeout: 1 });
    const d = withFileLock(PATHS[0], () => order.push('d'));
    controller.abort(new Error('gave up'));
    await expect(b).rejects.toThrow('gave up');
    await expect(c).rejects.toBeInstanceOf(FileLockError);
    await holder.release();
    await Promise.all([a, d]);
    expect(order).toEqual(['a', 'd']);
  });
});
