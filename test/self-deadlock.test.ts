// A wait on a lock that this thread holds must never end the process as if
// the work were done. Real processes, CommonJS and ES modules: the script's
// exit code and output are what a user sees.
import { realpathSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';

import { Proc, resourceIn, sleep, tempDir } from './helpers.js';

const root = fileURLToPath(new URL('..', import.meta.url));

/** Runs body as an ES module or inside an async main() of a CommonJS script, with `path` defined. */
function script(kind: 'esm' | 'cjs', path: string, body: string): Proc {
  const code =
    kind === 'esm'
      ? `import { lock, withFileLock } from 'native-file-lock';\nconst path = ${JSON.stringify(path)};\n${body}`
      : `const { lock, withFileLock } = require('native-file-lock');\nconst path = ${JSON.stringify(path)};\nasync function main() {\n${body}\n}\nmain();`;
  // Run from the package root, so that the script finds the package by its own name.
  return new Proc(process.execPath, [...(kind === 'esm' ? ['--input-type=module'] : []), '-e', code], { cwd: root });
}

describe.each(['esm', 'cjs'] as const)('a self-deadlock in a script (%s)', (kind) => {
  it('rejects with EDEADLK naming the lock file instead of exiting as if it had succeeded', async () => {
    const path = resourceIn(tempDir());
    const child = script(
      kind,
      path,
      `const held = await lock(path);
      console.log('holding');
      await withFileLock(path, () => console.log('fn ran'));
      console.log('done');`,
    );
    const exit = await child.exited;
    expect(child.stdout).toBe('holding\n');
    expect(exit.code).toBe(1);
    expect(child.stderr).toContain('EDEADLK');
    expect(child.stderr).toContain(realpathSync(path) + '.lock');
  });

  it('a caller that catches the error sees a FileLockError with code EDEADLK, path and resource', async () => {
    const path = resourceIn(tempDir());
    const child = script(
      kind,
      path,
      `const { FileLockError } = await import('native-file-lock');
      const held = await lock(path);
      const error = await withFileLock(path, () => 'ran').catch((e) => e);
      console.log(JSON.stringify({ isFileLockError: error instanceof FileLockError, code: error.code, path: error.path, resource: error.resource, heldStill: !held.released }));
      await held.release();
      console.log(await withFileLock(path, () => 'free again'));`,
    );
    await child.succeeded();
    const [report, after] = child.stdout.trim().split('\n');
    expect(JSON.parse(report)).toEqual({ isFileLockError: true, code: 'EDEADLK', path: realpathSync(path) + '.lock', resource: path, heldStill: true });
    expect(after).toBe('free again');
  });

  it("does not count on an onWait that would release the holder: its timer is unref'd, so the wait is EDEADLK before onWait runs", async () => {
    const path = resourceIn(tempDir());
    const child = script(
      kind,
      path,
      `const held = await lock(path);
      let called = false;
      const onWait = () => { called = true; return held.release(); };
      const error = await withFileLock(path, () => 'ran', { onWait, onWaitAfterMs: 50 }).catch((e) => e);
      console.log(JSON.stringify({ code: error.code, called }));`,
    );
    await child.succeeded();
    expect(JSON.parse(child.stdout.trim())).toEqual({ code: 'EDEADLK', called: false });
  });

  it('keeps the process alive while a signal handler may still release the holder', async () => {
    const path = resourceIn(tempDir());
    const child = script(
      kind,
      path,
      `const held = await lock(path);
      process.once('SIGUSR2', () => held.release());
      const waiting = withFileLock(path, () => 'fn ran');
      console.log('waiting');
      console.log(await waiting);`,
    );
    await child.waitForOutput('waiting');
    await sleep(500);
    expect(child.running).toBe(true);
    child.kill('SIGUSR2');
    await child.succeeded();
    expect(child.stdout).toBe('waiting\nfn ran\n');
  });

  it('is not reported while pending work can still release the holder', async () => {
    const path = resourceIn(tempDir());
    const child = script(
      kind,
      path,
      `const held = await lock(path);
      setTimeout(() => held.release(), 300);
      const other = await lock(path + '-other');
      const viaTimer = await withFileLock(path, () => 'after the timer');
      // Registered after the library's own listener: it runs later in the same emit.
      process.once('beforeExit', () => setTimeout(() => other.release(), 100));
      const viaListener = await withFileLock(path + '-other', () => 'after the beforeExit listener');
      const timedOut = await lock(path + '-other', { timeout: 0 }).then(() => 'free', (e) => e.code);
      console.log(viaTimer, '/', viaListener, '/', timedOut);`,
    );
    await child.succeeded();
    expect(child.stdout).toBe('after the timer / after the beforeExit listener / free\n');
  });
});
