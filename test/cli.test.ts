// The command-line tool (bin/native-file-lock.mjs) as a user runs it: real
// processes, against util-linux flock(1) in both directions and the library.
import { mkdirSync, readFileSync, realpathSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';

import { inspect, tryLock } from 'native-file-lock';

import { isRunning, lockFileOf, Proc, requires, resourceIn, runNode, runSync, skipWithout, sleep, tempDir, waitFor } from './helpers.js';
import { preloadWith } from './nfs-model/build.mjs';
import { flockProbe, runFlock } from './peers.js';

const BIN = fileURLToPath(new URL('../bin/native-file-lock.mjs', import.meta.url));
const root = fileURLToPath(new URL('..', import.meta.url));

/** The CLI with these arguments. */
const cli = (args: readonly string[], options: { cwd?: string; env?: NodeJS.ProcessEnv } = {}) => runNode(BIN, args, options);

/** A node command (argv) that prints 'ready', then runs until its stdin ends. */
const HOLD = [process.execPath, '-e', "process.stdout.write('ready\\n'); process.stdin.resume(); process.stdin.on('end', () => process.exit(0));"];

/** Runs the CLI to its end: its exit code and output. */
async function run(args: readonly string[], options: { cwd?: string } = {}): Promise<{ code: number | null; stdout: string; stderr: string }> {
  const p = cli(args, options);
  p.child.stdin!.end();
  const exit = await p.exited;
  return { code: exit.code, stdout: p.stdout, stderr: p.stderr };
}

describe('the CLI runs a command under the lock', () => {
  it('passes the exit code of the command through', async () => {
    const file = resourceIn(tempDir());
    expect((await run([file, process.execPath, '-e', 'process.exit(7)'])).code).toBe(7);
    expect((await run([file, process.execPath, '-e', 'process.exit(0)'])).code).toBe(0);
  });

  it('runs a -c shell command, before or after the file as flock(1) allows, and passes its exit code through', async () => {
    const file = resourceIn(tempDir());
    const before = await run(['-c', 'echo one; exit 3', file]);
    expect(before).toMatchObject({ code: 3, stdout: 'one\n' });
    const after = await run([file, '-c', 'echo two; exit 4']);
    expect(after).toMatchObject({ code: 4, stdout: 'two\n' });
  });

  it('exits 128+n when signal n kills the command, as shells do', async (ctx) => {
    skipWithout(ctx, 'posix');
    const file = resourceIn(tempDir());
    expect((await run([file, '-c', 'kill -TERM $$'])).code).toBe(128 + 15);
    expect((await run([file, '-c', 'kill -KILL $$'])).code).toBe(128 + 9);
  });

  it('holds <file>.lock while the command runs, as the library does, and frees it when the command exits', async () => {
    const file = resourceIn(tempDir());
    const holder = cli([file, ...HOLD]);
    await holder.waitForOutput('ready');
    expect(await tryLock(file)).toBeUndefined();
    holder.child.stdin!.end();
    await holder.succeeded();
    const held = await tryLock(file);
    expect(held).toBeDefined();
    await held!.release();
  });

  it('waits for a lock the library holds, then runs the command', async () => {
    const file = resourceIn(tempDir());
    const held = (await tryLock(file))!;
    const waiter = cli([file, '-c', 'echo ran']);
    await sleep(500);
    expect(waiter.stdout).toBe('');
    expect(waiter.running).toBe(true);
    await held.release();
    await waiter.succeeded();
    expect(waiter.stdout).toBe('ran\n');
  });

  it('ends options at --, before the file (which may then start with a dash) or right after it', async () => {
    const dir = tempDir();
    const out = await run(['-n', '--', '-file', '-c', 'echo ok'], { cwd: dir });
    expect(out).toMatchObject({ code: 0, stdout: 'ok\n' });
    // A `--` right after the file ends them too, before a command with its own flags.
    const after = await run(['-n', 'file', '--', process.execPath, '-e', 'console.log(process.argv.length)'], { cwd: dir });
    expect(after).toMatchObject({ code: 0, stdout: '1\n' });
  });

  it('accepts -w in seconds, fractions, exponent forms as flock(1) does, and the 300ms, 5s and 2m forms when the lock is free', async () => {
    const file = resourceIn(tempDir());
    for (const time of ['5', '0.5', '1e3', '2.5E-1', '300ms', '5s', '2m']) {
      expect((await run(['-w', time, file, '-c', 'exit 0'])).code, time).toBe(0);
    }
    expect((await run([`--timeout=2s`, file, '-c', 'exit 0'])).code).toBe(0);
    expect((await run([`-w2s`, file, '-c', 'exit 0'])).code).toBe(0);
  });
});

describe('the CLI with a busy lock', () => {
  it('-n exits 1 at once, or the -E code, and never runs the command', async () => {
    const file = resourceIn(tempDir());
    const held = (await tryLock(file))!;
    try {
      expect(await run(['-n', file, '-c', 'echo ran'])).toMatchObject({ code: 1, stdout: '' });
      expect(await run(['-n', '-E', '9', file, '-c', 'echo ran'])).toMatchObject({ code: 9, stdout: '' });
      expect(await run(['--nonblock', '--conflict-exit-code=42', file, '-c', 'echo ran'])).toMatchObject({ code: 42, stdout: '' });
    } finally {
      await held.release();
    }
  });

  it('-w exits 1 when the time runs out, or the -E code, and never runs the command', async () => {
    const file = resourceIn(tempDir());
    const held = (await tryLock(file))!;
    try {
      expect(await run(['-w', '300ms', file, '-c', 'echo ran'])).toMatchObject({ code: 1, stdout: '' });
      expect(await run(['-w', '0.2', '-E', '5', file, '-c', 'echo ran'])).toMatchObject({ code: 5, stdout: '' });
    } finally {
      await held.release();
    }
  });
});

describe('the CLI and util-linux flock(1)', () => {
  requires('flock(1)', 'posix');

  it('flock(1) holding <file>.lock makes the CLI -n exit 1, or the -E code', async () => {
    const file = resourceIn(tempDir());
    const holder = runFlock([lockFileOf(file), 'sh', '-c', 'echo locked; read line']);
    await holder.waitForOutput('locked');
    expect(await run(['-n', file, '-c', 'echo ran'])).toMatchObject({ code: 1, stdout: '' });
    expect(await run(['-n', '-E', '75', file, '-c', 'echo ran'])).toMatchObject({ code: 75, stdout: '' });
    expect(await run(['-w', '200ms', file, '-c', 'echo ran'])).toMatchObject({ code: 1, stdout: '' });
    holder.child.stdin!.end('\n');
    await holder.succeeded();
    expect(await run(['-n', file, '-c', 'echo ran'])).toMatchObject({ code: 0, stdout: 'ran\n' });
  });

  it('with --lock-file-itself, flock(1) and the CLI lock the same file: each sees the other busy', async () => {
    const file = resourceIn(tempDir());
    const cliHolder = cli(['--lock-file-itself', file, ...HOLD]);
    await cliHolder.waitForOutput('ready');
    expect(flockProbe(file)).toBe('held');
    cliHolder.child.stdin!.end();
    await cliHolder.succeeded();
    expect(flockProbe(file)).toBe('free');

    const flockHolder = runFlock([file, 'sh', '-c', 'echo locked; read line']);
    await flockHolder.waitForOutput('locked');
    expect(await run(['-n', '--lock-file-itself', file, '-c', 'echo ran'])).toMatchObject({ code: 1, stdout: '' });
    flockHolder.child.stdin!.end('\n');
    await flockHolder.succeeded();
  });

  it('on a terminal, a wait over a second shows one status line on stderr naming the holder; off a terminal, none', async () => {
    const file = resourceIn(tempDir());
    const holder = runFlock([lockFileOf(file), 'sh', '-c', 'echo locked; read line']);
    await holder.waitForOutput('locked');
    // script(1) gives the CLI a terminal.
    // process.env, not plainEnv: the CLI inside is node, and a sanitizer runtime it needs stays preloaded.
    const onTty = new Proc('script', ['-qec', `${process.execPath} ${BIN} ${file} -c 'echo done'`, '/dev/null'], { env: process.env });
    const offTty = cli([file, '-c', 'echo done']);
    await onTty.waitForOutput(`native-file-lock: waiting 1 s for the exclusive lock on '${file}' (held by pid ${holder.pid})`);
    holder.child.stdin!.end('\n');
    await holder.succeeded();
    await onTty.succeeded();
    await offTty.succeeded();
    expect(onTty.stdout).toContain('done');
    expect(offTty.stdout).toBe('done\n');
    expect(offTty.stderr).toBe('');
  });

  it('without --lock-file-itself the CLI locks <file>.lock and leaves <file> to flock(1)', async () => {
    const file = resourceIn(tempDir());
    const holder = cli([file, ...HOLD]);
    await holder.waitForOutput('ready');
    expect(flockProbe(lockFileOf(file))).toBe('held');
    expect(flockProbe(file)).toBe('free');
    holder.child.stdin!.end();
    await holder.succeeded();
  });

  it('-s takes a shared lock: flock -s gets in beside it, flock -x does not', async () => {
    const file = resourceIn(tempDir());
    const holder = cli(['-s', file, ...HOLD]);
    await holder.waitForOutput('ready');
    const lockFile = lockFileOf(file);
    expect(spawnStatus('flock', ['-n', '-s', lockFile, 'true'])).toBe(0);
    expect(spawnStatus('flock', ['-n', '-x', lockFile, 'true'])).toBe(1);
    // A second shared CLI runs at once; an exclusive one is busy.
    expect((await run(['-n', '-s', file, '-c', 'exit 0'])).code).toBe(0);
    expect((await run(['-n', '-x', file, '-c', 'exit 0'])).code).toBe(1);
    holder.child.stdin!.end();
    await holder.succeeded();
  });

  it('the command does not inherit the lock: when the CLI is SIGKILLed the lock is free at once while the command runs on', async () => {
    const file = resourceIn(tempDir());
    const holder = cli([file, process.execPath, '-e', "console.log('child', process.pid); setInterval(() => {}, 1000)"]);
    await holder.waitForOutput('child');
    const childPid = Number(/child (\d+)/.exec(holder.stdout)![1]);
    try {
      expect(flockProbe(lockFileOf(file))).toBe('held');
      holder.kill('SIGKILL');
      // 'close' waits for the command too (it shares stdout): wait for the CLI's own exit.
      await waitFor(() => !holder.running, 'the CLI to die');
      expect(isRunning(childPid)).toBe(true);
      expect(flockProbe(lockFileOf(file))).toBe('free');
    } finally {
      try {
        process.kill(childPid, 'SIGKILL');
      } catch {
        // Already gone.
      }
    }
  });
});

describe('the CLI forwards signals', () => {
  requires('posix');

  for (const signal of ['SIGINT', 'SIGTERM', 'SIGHUP'] as const) {
    it(`forwards ${signal} to the command and exits with the command's code`, async () => {
      const file = resourceIn(tempDir());
      const script = `process.on('${signal}', () => { console.log('got ${signal}'); process.exit(3); }); console.log('ready'); setInterval(() => {}, 1000);`;
      const p = cli([file, process.execPath, '-e', script]);
      await p.waitForOutput('ready');
      p.kill(signal);
      const exit = await p.exited;
      expect(p.stdout).toContain(`got ${signal}`);
      expect(exit.code).toBe(3);
      expect(await isFree(file)).toBe(true);
    });
  }
});

describe('the CLI while it waits', () => {
  requires('posix');

  it('ends at SIGTERM while still waiting for the lock, and never runs the command', async () => {
    const file = resourceIn(tempDir());
    const held = (await tryLock(file))!;
    try {
      const waiter = cli([file, '-c', 'echo ran']);
      await waitFor(() => (inspect(file).waiting ?? 1) >= 1, 'the CLI to wait');
      waiter.kill('SIGTERM');
      const exit = await waiter.exited;
      expect(exit.signal ?? exit.code).toBe(exit.signal ? 'SIGTERM' : 143);
      expect(waiter.stdout).toBe('');
    } finally {
      await held.release();
    }
  });
});

describe('the CLI reports errors with flock(1)\'s exit codes', () => {
  it("exits 64 with a usage message for missing arguments, unknown options, bad values and flock(1)'s descriptor forms (-u, a descriptor number)", async () => {
    const file = resourceIn(tempDir());
    const usageErrors = [[], [file], ['--bogus', file, 'true'], ['-w', 'soon', file, 'true'], ['-E', '300', file, 'true'], [file, '-c'], ['-u', file], ['--unlock', file], ['3']];
    for (const args of usageErrors) {
      const out = await run(args);
      expect(out.code, args.join(' ')).toBe(64);
      expect(out.stderr).toMatch(/native-file-lock: .+\nTry 'native-file-lock --help'/);
    }
  });

  it('prints help and its version', async () => {
    const help = await run(['--help']);
    expect(help.code).toBe(0);
    for (const flag of ['--shared', '--exclusive', '--nonblock', '--timeout', '--conflict-exit-code', '--lock-file-itself', 'status', 'doctor']) expect(help.stdout).toContain(flag);
    const version = await run(['-V']);
    const pkg = JSON.parse(readFileSync(join(root, 'package.json'), 'utf8')) as { version: string };
    expect(version).toMatchObject({ code: 0, stdout: `native-file-lock ${pkg.version}\n` });
  });

  it('exits 69 when the command cannot be run and 66 when the lock file cannot be opened', async () => {
    const dir = tempDir();
    const file = resourceIn(dir);
    const missingCommand = await run([file, join(dir, 'no-such-command')]);
    expect(missingCommand.code).toBe(69);
    expect(missingCommand.stderr).toContain('no-such-command');
    const noDir = await run([join(dir, 'no-such-dir', 'file'), '-c', 'echo ran']);
    expect(noDir).toMatchObject({ code: 66, stdout: '' });
    expect(noDir.stderr).toContain('no-such-dir');
  });
});

describe('native-file-lock status', () => {
  interface State {
    path: string;
    locked: boolean;
    shared?: boolean;
    holder?: { pid?: number };
    waiting?: number;
  }

  it('says free, then held with the holding pid while the CLI runs a command under the lock', async () => {
    const file = resourceIn(tempDir());
    expect(JSON.parse((await run(['status', file, '--json'])).stdout)).toMatchObject({ locked: false });
    const holder = cli([file, ...HOLD]);
    await holder.waitForOutput('ready');
    const out = await run(['status', file, '--json']);
    expect(out.code, out.stderr).toBe(0);
    const state = JSON.parse(out.stdout) as State;
    expect(state.locked).toBe(true);
    expect(state.shared).toBe(false);
    if (process.platform === 'linux') expect(state.holder?.pid).toBe(holder.pid);
    const text = await run(['status', file]);
    expect(text.stdout).toBe(`${file}: held exclusive${process.platform === 'linux' ? ` by pid ${holder.pid}` : ''}\n`);
    holder.child.stdin!.end();
    await holder.succeeded();
    expect((await run(['status', file])).stdout).toBe(`${file}: free\n`);
  });

  it("lists every lock file of a directory with flock(1)'s holder and a waiting CLI", async (ctx) => {
    skipWithout(ctx, 'linux', 'flock(1)', '/proc');
    const dir = tempDir();
    const busy = resourceIn(dir, 'busy');
    const idle = resourceIn(dir, 'idle');
    await (await tryLock(idle))!.release();
    const holder = runFlock([lockFileOf(busy), 'sh', '-c', 'echo locked; read line']);
    await holder.waitForOutput('locked');
    const waiter = cli([busy, '-c', 'exit 0']);
    await waitFor(async () => ((JSON.parse((await run(['status', busy, '--json'])).stdout) as State).waiting ?? 0) >= 1, 'the CLI to wait');
    const out = await run(['status', dir, '--json']);
    const states = JSON.parse(out.stdout) as State[];
    expect(states.map((s) => s.path)).toEqual([join(realpathSync(dir), 'busy.lock'), join(realpathSync(dir), 'idle.lock')]);
    expect(states[0]).toMatchObject({ locked: true, holder: { pid: holder.pid } });
    expect(states[0]!.waiting).toBeGreaterThanOrEqual(1);
    expect(states[1]).toMatchObject({ locked: false });
    holder.child.stdin!.end('\n');
    await holder.succeeded();
    await waiter.succeeded();
  });

  it('exits non-zero with the path when the lock cannot be inspected', async () => {
    const missingDir = join(tempDir(), 'no-such-dir', 'file');
    const out = await run(['status', missingDir]);
    expect(out.code).not.toBe(0);
    expect(out.stdout).toContain('ENOENT');
  });
});

describe('native-file-lock doctor', () => {
  it('names the file system and finds that two processes exclude each other in the directory', async () => {
    const dir = tempDir();
    const out = await run(['doctor', dir, '--json']);
    expect(out.code, out.stderr).toBe(0);
    const report = JSON.parse(out.stdout) as { ok: boolean; fileSystem: { type: string }; exclusion: { ok: boolean; steps: { expected: string; got: string }[] } };
    expect(report.ok).toBe(true);
    expect(report.fileSystem.type).not.toBe('');
    expect(report.exclusion.steps.map((s) => s.got)).toEqual(['busy', 'free']);
    const text = await run(['doctor', dir]);
    expect(text.code).toBe(0);
    expect(text.stdout).toMatch(/file system: .+\n/);
    expect(text.stdout).toContain('locks exclude between processes here');
  });

  it('names an overlay mount, warns what overlay means for locks, and still finds that two processes exclude', async (ctx) => {
    skipWithout(ctx, 'mount');
    const dir = tempDir();
    for (const sub of ['lower', 'upper', 'work', 'merged']) mkdirSync(join(dir, sub));
    const merged = join(dir, 'merged');
    expect(runSync('mount', ['-t', 'overlay', 'overlay', '-o', `lowerdir=${dir}/lower,upperdir=${dir}/upper,workdir=${dir}/work`, merged]).status).toBe(0);
    try {
      const out = await run(['doctor', merged, '--json']);
      expect(out.code, out.stderr).toBe(0);
      const report = JSON.parse(out.stdout) as { ok: boolean; fileSystem: { type: string; mountPoint: string }; warnings: string[] };
      expect(report.fileSystem).toMatchObject({ type: 'overlay', mountPoint: merged });
      expect(report.warnings).toHaveLength(1);
      expect(report.warnings[0]).toMatch(/^overlay \(containers\): /);
      expect(report.ok).toBe(true);
    } finally {
      runSync('umount', [merged]);
    }
  });

  it('exits 1 and says so where locks do not exclude (flock(2) made to always succeed)', async (ctx) => {
    skipWithout(ctx, 'linux', 'c compiler');
    // A file system whose flock only pretends, modelled by a preloaded flock() that grants everything.
    const dir = tempDir();
    writeFileSync(join(dir, 'noflock.c'), '#include <sys/file.h>\nint flock(int fd, int op) { (void)fd; (void)op; return 0; }\n');
    const built = runSync('cc', ['-shared', '-fPIC', '-o', join(dir, 'noflock.so'), join(dir, 'noflock.c')]);
    expect(built.status, built.stderr).toBe(0);
    // After whatever is preloaded already: a sanitizer runtime must stay first.
    const p = cli(['doctor', dir, '--json'], { env: { ...process.env, LD_PRELOAD: preloadWith(join(dir, 'noflock.so'), process.env.LD_PRELOAD) } });
    p.child.stdin!.end();
    const exit = await p.exited;
    expect(exit.code, p.stderr).toBe(1);
    const report = JSON.parse(p.stdout) as { ok: boolean; exclusion: { steps: { got: string }[]; error: string } };
    expect(report.ok).toBe(false);
    expect(report.exclusion.steps[0]!.got).toBe('free');
    expect(report.exclusion.error).toBe('locks do not exclude between processes here');
  });

  it('exits non-zero for a directory that does not exist', async () => {
    const out = await run(['doctor', join(tempDir(), 'missing')]);
    expect(out.code).not.toBe(0);
    expect(out.stderr).toContain('missing');
  });
});

/** The exit status of a program run to its end (flock(1) here). */
function spawnStatus(command: string, args: readonly string[]): number | null {
  return runSync(command, args).status;
}

/** True if this process could take the lock for file right now (released again at once). */
async function isFree(file: string): Promise<boolean> {
  const held = await tryLock(file);
  await held?.release();
  return held !== undefined;
}
