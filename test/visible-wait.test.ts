import { describe, expect, it, onTestFinished } from 'vitest';

import { lock, lockAll, tryLock, withFileLock, type WaitInfo } from 'native-file-lock';

import { agentForFile, fixture, lockFileOf, rejection, resourceIn, runNode, sleep, tempDir, waitFor } from './helpers.js';

const agent = agentForFile();

/** Process warnings of this package emitted until the test ends. */
function collectWarnings(): Error[] {
  const warnings: Error[] = [];
  const listener = (warning: Error) => {
    if (warning.name === 'NativeFileLockWarning') warnings.push(warning);
  };
  process.on('warning', listener);
  onTestFinished(() => {
    process.off('warning', listener);
  });
  return warnings;
}

describe('onWait', () => {
  it('is called with a growing waitedMs while another process holds the lock, and never after the wait ended', async () => {
    const path = resourceIn(tempDir());
    await agent().call('lock', { path });
    const calls: WaitInfo[] = [];
    const done = withFileLock(path, () => 'ran', { onWait: (info) => void calls.push(info), onWaitAfterMs: 50 });
    await waitFor(() => calls.length >= 2, 'two onWait calls');
    await agent().call('release', { path });
    expect(await done).toBe('ran');
    const count = calls.length;
    expect(calls[0]).toMatchObject({ waitedMs: expect.any(Number), path: lockFileOf(path), resource: path });
    // The holder is known where /proc/locks tells it, and absent elsewhere.
    if (process.platform === 'linux') expect(calls[0]!.holder).toEqual({ pid: agent().pid });
    else expect(calls[0]).not.toHaveProperty('holder');
    expect(calls[0]!.waitedMs).toBeGreaterThanOrEqual(40);
    for (let i = 1; i < calls.length; i++) expect(calls[i]!.waitedMs).toBeGreaterThan(calls[i - 1]!.waitedMs);
    await sleep(300);
    expect(calls.length).toBe(count);
  });

  it('is never called after a wait ends in a timeout or an abort', async () => {
    const path = resourceIn(tempDir());
    await agent().call('lock', { path });
    try {
      let calls = 0;
      const onWait = () => void calls++;
      const timedOut = await rejection(() => lock(path, { timeout: 200, onWait, onWaitAfterMs: 20 }));
      expect(timedOut).toMatchObject({ code: 'ELOCKTIMEOUT' });
      const controller = new AbortController();
      const aborted = lock(path, { signal: controller.signal, onWait, onWaitAfterMs: 20 });
      await waitFor(() => calls > 0, 'an onWait call during the second wait');
      controller.abort(new Error('stop'));
      await expect(aborted).rejects.toThrow('stop');
      const count = calls;
      await sleep(300);
      expect(calls).toBe(count);
    } finally {
      await agent().call('release', { path });
    }
  });

  it('is not called when the lock is free, nor by tryLock, which does not wait', async () => {
    const path = resourceIn(tempDir());
    let calls = 0;
    const onWait = () => void calls++;
    await withFileLock(path, () => sleep(150), { onWait, onWaitAfterMs: 0 });
    await agent().call('lock', { path });
    try {
      expect(await tryLock(path, { onWait, onWaitAfterMs: 0 })).toBeUndefined();
      await sleep(150);
    } finally {
      await agent().call('release', { path });
    }
    expect(calls).toBe(0);
  });

  it('that throws does not break the wait: each throw becomes a process warning and the lock is still taken', async () => {
    const path = resourceIn(tempDir());
    const warnings = collectWarnings();
    await agent().call('lock', { path });
    let calls = 0;
    const done = withFileLock(path, () => 'ran', {
      onWait: () => {
        calls++;
        throw new Error('observer failed');
      },
      onWaitAfterMs: 30,
    });
    await waitFor(() => calls >= 2, 'onWait called again after it threw');
    await agent().call('release', { path });
    expect(await done).toBe('ran');
    await waitFor(() => warnings.length >= 2, 'the warnings for the throws');
    expect(warnings[0]).toMatchObject({ code: 'NFL_ON_WAIT_FAILED' });
    expect(warnings[0]!.message).toContain(lockFileOf(path));
    expect(warnings[0]!.message).toContain('observer failed');
  });

  it('is called by lockAll for the lock of the set that another process holds', async () => {
    const dir = tempDir();
    const free = resourceIn(dir, 'a');
    const busy = resourceIn(dir, 'b');
    await agent().call('lock', { path: busy });
    const calls: WaitInfo[] = [];
    const taking = lockAll([free, busy], { onWait: (info) => void calls.push(info), onWaitAfterMs: 30 });
    await waitFor(() => calls.length > 0, 'an onWait call');
    await agent().call('release', { path: busy });
    await (await taking).release();
    expect(calls[0]).toMatchObject({ path: lockFileOf(busy), resource: busy });
  });

  it('rejects a bad onWait or onWaitAfterMs with a typed error', async () => {
    const path = resourceIn(tempDir());
    await expect(lock(path, { onWait: 'log' as never })).rejects.toThrow(TypeError);
    await expect(lock(path, { onWait: 'log' as never })).rejects.toThrow('options.onWait must be a function');
    await expect(lock(path, { onWaitAfterMs: '50' as never })).rejects.toThrow(TypeError);
    await expect(lock(path, { onWaitAfterMs: -1 })).rejects.toThrow(RangeError);
    await expect(lock(path, { onWaitAfterMs: Infinity })).rejects.toThrow(RangeError);
    await expect(lock(path, { onWaitAfterMs: NaN })).rejects.toThrow(RangeError);
    await expect(withFileLock(path, () => {}, { warnAfterMs: NaN })).rejects.toThrow(RangeError);
    await expect(tryLock(path, { warnAfterMs: -5 })).rejects.toThrow('options.warnAfterMs');
    // Nothing was left held by the refused calls.
    expect(await agent().canLock(path)).toBe(true);
  });
});

describe('warnAfterMs', () => {
  it('emits exactly one warning naming the lock file while a lock is held longer, and releases nothing', async () => {
    const path = resourceIn(tempDir());
    const warnings = collectWarnings();
    const held = await lock(path, { warnAfterMs: 50 });
    await waitFor(() => warnings.length > 0, 'the held-long warning');
    await sleep(300);
    expect(held.released).toBe(false);
    expect(await agent().canLock(path)).toBe(false);
    await held.release();
    await sleep(100);
    expect(warnings).toHaveLength(1);
    expect(warnings[0]).toMatchObject({ name: 'NativeFileLockWarning', code: 'NFL_HELD_LONG' });
    expect(warnings[0]!.message).toContain(lockFileOf(path));
    expect(warnings[0]!.message).toMatch(/held by this process for \d+ ms/);
  });

  it('emits no warning when the lock is released in time', async () => {
    const path = resourceIn(tempDir());
    const warnings = collectWarnings();
    await withFileLock(path, () => sleep(10), { warnAfterMs: 400 });
    const held = await tryLock(path, { warnAfterMs: 400 });
    await held!.release();
    await sleep(700);
    expect(warnings).toHaveLength(0);
  });
});

describe('NODE_DEBUG=native-file-lock', () => {
  async function runDebugFixture(env: NodeJS.ProcessEnv): Promise<{ stderr: string; lockPath: string }> {
    const path = resourceIn(tempDir());
    const lockPath = await agent().call<string>('lock', { path });
    const child = runNode(fixture('debug-log.mjs'), [path], { env });
    try {
      await child.waitForOutput('waiting');
    } finally {
      await agent().call('release', { path });
    }
    await child.succeeded();
    expect(child.stdout).toContain('done');
    return { stderr: child.stderr, lockPath };
  }

  it('logs acquire, wait, hand-off, release, timeout and abort lines with the lock file and durations', async () => {
    const { stderr, lockPath } = await runDebugFixture({ ...process.env, NODE_DEBUG: 'native-file-lock' });
    const lines = stderr.split('\n').filter((line) => line.includes('NATIVE-FILE-LOCK'));
    const find = (pattern: RegExp) => lines.find((line) => pattern.test(line) && line.includes(`'${lockPath}'`));
    expect(find(/: timeout '.*' after waiting \d+ ms/), stderr).toBeDefined();
    expect(find(/: abort '.*' after waiting \d+ ms/), stderr).toBeDefined();
    expect(find(/: wait '.*held by pid/), stderr).toBeDefined();
    expect(find(/: acquire '.*' after waiting \d+ ms/), stderr).toBeDefined();
    expect(find(/: hand-off '.*waited \d+ ms/), stderr).toBeDefined();
    expect(find(/: acquire '.*' \(no wait\)/), stderr).toBeDefined();
    expect(find(/: release '.*' after holding it \d+ ms/), stderr).toBeDefined();
    expect(lines.filter((line) => line.includes(': release ')).length).toBe(3);
  });

  it('logs nothing without NODE_DEBUG', async () => {
    const { NODE_DEBUG: _debug, ...env } = process.env;
    const { stderr } = await runDebugFixture(env);
    expect(stderr).toBe('');
  });
});
