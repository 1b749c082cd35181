// A test runner small enough to behave the same under every runtime the
// matrix drives: Node 18-26 on Linux, Windows Node under Wine, arm64 Node
// under qemu-user, Bun and Deno. node:test differs between those (and Bun
// and Deno implement it only in part), so the suites use this instead.
// Output is TAP-like; the last line is "N passed, N failed". It also holds
// what both suites use: the second process (peer.mjs) and small assertions.
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { existsSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { fileURLToPath } from 'node:url';

export const runtime = globalThis.Deno ? 'deno' : process.versions.bun ? 'bun' : 'node';
export const isWindows = process.platform === 'win32';

const tests = [];

/** Registers a test. tags: 'smoke' marks the subset that Bun and Deno run. */
export function test(name, fn, { tags = [], timeout = 60_000 } = {}) {
  tests.push({ name, fn, tags, timeout });
}

/**
 * Runs the registered tests one after another. `--smoke` runs only the smoke
 * tests; `--grep TEXT` only tests whose name contains TEXT.
 */
export async function run(argv = process.argv.slice(2)) {
  const smoke = argv.includes('--smoke');
  const grepAt = argv.indexOf('--grep');
  const grep = grepAt >= 0 ? argv[grepAt + 1] : undefined;
  const selected = tests.filter((t) => (!smoke || t.tags.includes('smoke')) && (grep === undefined || t.name.includes(grep)));
  const label = `${runtime} ${runtime === 'node' ? process.version : runtime === 'bun' ? process.versions.bun : globalThis.Deno.version.deno}`;
  console.log(`# ${label} ${process.platform}-${process.arch}: ${selected.length} tests`);
  let passed = 0;
  let failed = 0;
  for (const [i, t] of selected.entries()) {
    const started = Date.now();
    let timer;
    try {
      await Promise.race([
        t.fn(),
        new Promise((_, reject) => {
          timer = setTimeout(() => reject(new Error(`timed out after ${t.timeout} ms`)), t.timeout);
        }),
      ]);
      passed++;
      console.log(`ok ${i + 1} - ${t.name} (${Date.now() - started} ms)`);
    } catch (error) {
      failed++;
      console.log(`not ok ${i + 1} - ${t.name} (${Date.now() - started} ms)`);
      console.log(String(error?.stack ?? error).replace(/^/gm, '  # '));
    } finally {
      clearTimeout(timer);
    }
  }
  if (selected.length === 0) failed++;
  try {
    await removeRunDir();
  } catch (error) {
    failed++;
    console.log(`not ok - cleanup\n  # ${error.message}`);
  }
  console.log(`${passed} passed, ${failed} failed`);
  // Leaves the exit to the event loop so that unref'd timers cannot keep a
  // broken runtime alive; the matrix kills a leg that hangs.
  process.exitCode = failed > 0 ? 1 : 0;
}

// One directory per run under the system temp dir, one subdirectory per test.
// It is removed once, at the end: a lock taken again and again (hot) keeps its
// handle open for a while after the release, and on Windows a file deleted
// meanwhile stays "delete pending" and keeps its directory from being removed.
let runDir;

/** Runs fn with a fresh directory of its own. */
export async function inTempDir(fn) {
  runDir ??= mkdtempSync(join(tmpdir(), 'nfl-port-'));
  return fn(mkdtempSync(join(runDir, 't-')));
}

async function removeRunDir() {
  if (runDir === undefined) return;
  let lastError;
  const removed = () => {
    try {
      rmSync(runDir, { recursive: true, force: true });
      return true;
    } catch (error) {
      lastError = error;
      return false;
    }
  };
  await until(removed, `the temp dir ${runDir} to be removable`, 15_000).catch((error) => {
    throw new Error(`${error.message}: ${lastError?.message}`);
  });
}

/**
 * Starts this runtime on script with args, the way a user would start a second
 * process. stdio is inherited, never piped: under Wine a pipe from Linux to
 * Windows Node fails with EBADF, so results travel as exit codes and files.
 */
export function spawnRuntime(script, args) {
  const argv = runtime === 'deno' ? ['run', '-A', script, ...args] : [script, ...args];
  const child = spawn(process.execPath, argv, { stdio: ['ignore', 'inherit', 'inherit'] });
  const exited = new Promise((resolve, reject) => {
    child.on('error', reject);
    child.on('exit', (code, signal) => resolve(code ?? signal));
  });
  return { child, exited };
}

/** Polls until predicate() is true; rejects after ms with what was awaited. */
export async function until(predicate, what, ms = 30_000) {
  const deadline = Date.now() + ms;
  for (;;) {
    if (await predicate()) return;
    if (Date.now() > deadline) throw new Error(`gave up after ${ms} ms waiting for ${what}`);
    await sleep(25);
  }
}

export const waitForFile = (file, ms) => until(() => existsSync(file), `${file} to appear`, ms);

/** What the promise rejected with; fails if it resolved. */
export async function rejectsWith(promise) {
  try {
    await promise;
  } catch (error) {
    return error;
  }
  assert.fail('expected a rejection');
}

// --- the second process ------------------------------------------------------

/** peer.mjs, and the exit codes it answers with besides 0 (see there). */
export const PEER = join(dirname(fileURLToPath(import.meta.url)), 'peer.mjs');
export const BUSY = 3;
export const TIMED_OUT = 4;

/** Exit code of a second process making one tryLock attempt on resource. */
export const tryInOtherProcess = (resource, lockfilePath) => spawnRuntime(PEER, ['try', resource, ...(lockfilePath ? [lockfilePath] : [])]).exited;

/** A second process holding the lock on resource (with options) until release() or kill(). */
export async function holdInOtherProcess(resource, options) {
  const ready = `${resource}.ready-${Math.random().toString(36).slice(2)}`;
  const releaseFile = `${ready}.release`;
  const peer = spawnRuntime(PEER, ['hold', resource, ready, releaseFile, ...(options ? [JSON.stringify(options)] : [])]);
  const exitedEarly = peer.exited.then((code) => {
    throw new Error(`the holding process exited with ${code} before it held the lock`);
  });
  await Promise.race([waitForFile(ready), exitedEarly]);
  exitedEarly.catch(() => {});
  return {
    async release() {
      writeFileSync(releaseFile, '');
      assert.equal(await peer.exited, 0, 'the holding process releases and exits cleanly');
    },
    async kill() {
      peer.child.kill('SIGKILL');
      await peer.exited;
    },
  };
}

/**
 * Prints which binary node-gyp-build picked: the matrix checks that it is the
 * prebuild of this platform, since the installed package has no build/.
 */
export function printAddon() {
  const require = createRequire(import.meta.url);
  console.log(`# addon: ${require('node-gyp-build').path(dirname(require.resolve('native-file-lock/package.json')))}`);
}
