#!/usr/bin/env node
// native-file-lock: run a command while holding a file lock, with the flags
// and exit codes of util-linux flock(1); plus `status` and `doctor`.
import { spawn, spawnSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { readdirSync, readFileSync, rmSync, statfsSync, statSync } from 'node:fs';
import { createRequire } from 'node:module';
import { constants as osConstants } from 'node:os';
import { join, resolve } from 'node:path';

import * as lib from 'native-file-lock';

const require = createRequire(import.meta.url);
const NAME = 'native-file-lock';

// sysexits.h, as flock(1) uses them.
const EX_USAGE = 64;
const EX_NOINPUT = 66;
const EX_UNAVAILABLE = 69;
const EX_OSERR = 71;
const EX_CANTCREAT = 73;

class UsageError extends Error {}

const USAGE = `Usage:
  ${NAME} [options] <file> <command> [<argument>...]
  ${NAME} [options] <file> -c <shell command>
  ${NAME} status [--lock-file-itself] <file|directory> [--json]
  ${NAME} doctor [directory] [--json]

Runs a command while holding a lock, like util-linux flock(1). The lock is
taken on <file>.lock (the library's lock file), or on <file> itself with
--lock-file-itself (the file flock(1) locks, for scripts that mix both).

Options:
  -s, --shared                  take a shared lock
  -x, -e, --exclusive           take an exclusive lock (the default)
  -n, --nb, --nonblock          fail (exit 1) rather than wait
  -w, --wait, --timeout <time>  wait at most <time>: seconds (0.5, 5), or 300ms, 5s, 2m
  -E, --conflict-exit-code <n>  exit code when -n or -w fails (default 1)
  -c, --command <command>       run a single command string through the shell
      --lock-file-itself        lock <file> itself instead of <file>.lock
  -o, --close, -F, --no-fork    accepted for flock(1) compatibility (the command
                                never inherits the lock's descriptor)
      --verbose                 say how long getting the lock took
  -h, --help                    display this help
  -V, --version                 display the version

Exit status: the command's (128+n if signal n killed it); 1 (or -E) when -n
finds the lock busy or -w runs out; 64 usage error; 66 lock file cannot be
opened; 69 command cannot be run; 71 file system cannot lock; 73 lock file
cannot be created (read-only or full file system).
`;

function version() {
  return require('native-file-lock/package.json').version;
}

function fail(message) {
  process.stderr.write(`${NAME}: ${message}\n`);
}

/** 5, 0.5, 1e3 (flock(1) reads any decimal float), 300ms, 5s, 2m → milliseconds. */
function parseTime(text) {
  const m = /^((?:\d+(?:\.\d*)?|\.\d+)(?:[eE][+-]?\d+)?)(ms|s|m)?$/.exec(text.trim());
  if (!m) throw new UsageError(`invalid timeout value: '${text}' (seconds, or 300ms, 5s, 2m)`);
  const n = Number(m[1]);
  const ms = m[2] === 'ms' ? n : m[2] === 'm' ? n * 60_000 : n * 1000;
  if (!Number.isFinite(ms)) throw new UsageError(`invalid timeout value: '${text}'`);
  return ms;
}

function parseExitCode(text) {
  if (!/^\d+$/.test(text) || Number(text) > 255) throw new UsageError(`invalid exit code: '${text}' (0 to 255)`);
  return Number(text);
}

// Long options: name → [key, takes a value].
const LONG = {
  shared: ['shared', false],
  exclusive: ['exclusive', false],
  nonblock: ['nonblock', false],
  nonblocking: ['nonblock', false],
  nb: ['nonblock', false],
  timeout: ['timeout', true],
  wait: ['timeout', true],
  'conflict-exit-code': ['conflictExitCode', true],
  command: ['command', true],
  'lock-file-itself': ['lockFileItself', false],
  close: ['ignored', false],
  'no-fork': ['ignored', false],
  verbose: ['verbose', false],
  help: ['help', false],
  version: ['version', false],
};
const SHORT = { s: 'shared', x: 'exclusive', e: 'exclusive', n: 'nonblock', w: 'timeout', E: 'conflict-exit-code', c: 'command', o: 'close', F: 'no-fork', h: 'help', V: 'version' };

/** getopt_long with a leading '+': options end at the first operand or at `--`. */
function parseLockArgs(argv) {
  const opts = { shared: false, nonblock: false, timeout: Infinity, conflictExitCode: 1, command: undefined, lockFileItself: false, verbose: false, help: false, version: false };
  const set = (long, value) => {
    const [key] = LONG[long];
    if (key === 'ignored') return;
    if (key === 'shared') opts.shared = true;
    else if (key === 'exclusive') opts.shared = false;
    else if (key === 'timeout') opts.timeout = parseTime(value);
    else if (key === 'conflictExitCode') opts.conflictExitCode = parseExitCode(value);
    else if (key === 'command') opts.command = value;
    else opts[key] = true;
  };
  let i = 0;
  for (; i < argv.length; i++) {
    const arg = argv[i];
    if (arg === '--') {
      i++;
      break;
    }
    if (arg.startsWith('--')) {
      const eq = arg.indexOf('=');
      const name = arg.slice(2, eq < 0 ? undefined : eq);
      const spec = LONG[name];
      if (!spec) throw new UsageError(`unrecognized option '${arg}'`);
      if (spec[1]) {
        let value = eq < 0 ? argv[++i] : arg.slice(eq + 1);
        if (value === undefined) throw new UsageError(`option '--${name}' requires an argument`);
        set(name, value);
      } else {
        if (eq >= 0) throw new UsageError(`option '--${name}' doesn't allow an argument`);
        set(name);
      }
      continue;
    }
    if (arg.startsWith('-') && arg.length > 1) {
      for (let j = 1; j < arg.length; j++) {
        const long = SHORT[arg[j]];
        if (!long) throw new UsageError(`invalid option -- '${arg[j]}'`);
        if (LONG[long][1]) {
          const value = j + 1 < arg.length ? arg.slice(j + 1) : argv[++i];
          if (value === undefined) throw new UsageError(`option requires an argument -- '${arg[j]}'`);
          set(long, value);
          break;
        }
        set(long);
      }
      continue;
    }
    break;
  }
  const rest = argv.slice(i);
  if (opts.help || opts.version) return { opts, file: undefined, argv: [] };
  if (rest.length === 0) throw new UsageError('not enough arguments');
  const [file, ...after] = rest;
  // `<file> -- <command>`: a `--` right after the file also ends the options.
  if (after[0] === '--') after.shift();
  // flock(1) takes -c after the file: `flock <file> -c <command>`.
  if (opts.command === undefined && (after[0] === '-c' || after[0] === '--command')) {
    if (after.length !== 2) throw new UsageError(`${after[0]} requires exactly one command argument`);
    opts.command = after[1];
    after.length = 0;
  }
  if (opts.command !== undefined && after.length > 0) throw new UsageError('-c takes one command string; nothing may follow it');
  if (opts.command === undefined && after.length === 0) throw new UsageError('no command to run (give a command, or -c "<shell command>")');
  return { opts, file, argv: after };
}

function shellCommand(command) {
  if (process.platform === 'win32') {
    const shell = process.env.ComSpec || 'cmd.exe';
    return { file: shell, args: ['/d', '/s', '/c', `"${command}"`], windowsVerbatimArguments: true };
  }
  // flock(1) runs $SHELL -c, or /bin/sh.
  return { file: process.env.SHELL || '/bin/sh', args: ['-c', command] };
}

/** Exit status for a failure to take the lock, as flock(1) would give it. */
function lockFailureStatus(error) {
  const code = error?.code;
  if (code === 'EROFS' || code === 'ENOSPC') return EX_CANTCREAT;
  if (code === 'EMFILE' || code === 'ENFILE' || code === 'ENOMEM' || code === 'ELOCKUNSUPPORTED' || code === 'EAGAIN') return EX_OSERR;
  return EX_NOINPUT;
}

/** The one status line of a wait on a terminal, rewritten in place each second. */
function waitLine(file, shared) {
  let shown = false;
  return {
    onWait(info) {
      const pid = info.holder ? ` (held by pid ${info.holder.pid ?? 'unknown'})` : '';
      process.stderr.write(`\r\x1b[K${NAME}: waiting ${Math.round(info.waitedMs / 1000)} s for the ${shared ? 'shared' : 'exclusive'} lock on '${file}'${pid}`);
      shown = true;
    },
    end() {
      if (shown) process.stderr.write('\n');
    },
  };
}

async function runLocked(args) {
  const { opts, file, argv } = parseLockArgs(args);
  if (opts.help) {
    process.stdout.write(USAGE);
    return 0;
  }
  if (opts.version) {
    process.stdout.write(`${NAME} ${version()}\n`);
    return 0;
  }
  const lockOptions = { shared: opts.shared };
  if (opts.lockFileItself) lockOptions.lockfilePath = file;
  const started = process.hrtime.bigint();
  let held;
  let status;
  try {
    if (opts.nonblock) {
      held = await lib.tryLock(file, lockOptions);
      if (!held) {
        if (opts.verbose) fail('failed to get lock');
        return opts.conflictExitCode;
      }
    } else {
      if (process.stderr.isTTY) {
        status = waitLine(file, opts.shared);
        lockOptions.onWait = status.onWait;
        lockOptions.onWaitAfterMs = 1000;
      }
      held = await lib.lock(file, { ...lockOptions, timeout: opts.timeout });
    }
  } catch (error) {
    if (error?.code === 'ELOCKTIMEOUT') {
      if (opts.verbose) fail(`timeout while waiting to get lock${error.holder?.pid ? ` (held by pid ${error.holder.pid})` : ''}`);
      return opts.conflictExitCode;
    }
    fail(error instanceof Error ? error.message : String(error));
    return error instanceof TypeError || error instanceof RangeError ? EX_USAGE : lockFailureStatus(error);
  } finally {
    status?.end();
  }
  if (opts.verbose) fail(`getting lock took ${(Number(process.hrtime.bigint() - started) / 1e9).toFixed(6)} seconds`);

  const target = opts.command !== undefined ? shellCommand(opts.command) : { file: argv[0], args: argv.slice(1) };
  if (opts.verbose) fail(`executing ${target.file}`);
  // The lock's descriptor is close-on-exec: the command never holds the lock.
  const child = spawn(target.file, target.args, { stdio: 'inherit', windowsVerbatimArguments: target.windowsVerbatimArguments });
  const forward = (signal) => {
    if (child.exitCode === null && child.signalCode === null) child.kill(signal);
  };
  const signals = process.platform === 'win32' ? ['SIGINT', 'SIGBREAK', 'SIGHUP'] : ['SIGINT', 'SIGTERM', 'SIGHUP'];
  for (const signal of signals) process.on(signal, forward);
  const exitStatus = await new Promise((done) => {
    child.once('error', (error) => {
      fail(`failed to execute ${target.file}: ${error.message}`);
      done(error.code === 'ENOMEM' ? EX_OSERR : EX_UNAVAILABLE);
    });
    child.once('exit', (code, signal) => {
      done(signal ? 128 + (osConstants.signals[signal] ?? 0) : (code ?? 0));
    });
  });
  for (const signal of signals) process.off(signal, forward);
  await held.release().catch(() => {});
  return exitStatus;
}

// --- status --------------------------------------------------------------------

function describeState(r) {
  if (r.error) return `error ${r.error.code ?? ''}: ${r.error.message}`;
  if (!r.locked) return 'free';
  const pids = (r.holders ?? (r.holder ? [r.holder] : [])).map((h) => h.pid ?? 'unknown');
  const by = pids.length > 0 ? ` by pid ${pids.join(', ')}` : '';
  const waiting = r.waiting ? `, ${r.waiting} waiting` : '';
  return `held ${r.shared ? 'shared' : 'exclusive'}${by}${waiting}`;
}

async function runStatus(args) {
  const json = args.includes('--json');
  const itself = args.includes('--lock-file-itself');
  const operands = args.filter((a) => a !== '--json' && a !== '--lock-file-itself');
  if (operands.length === 1 && (operands[0] === '-h' || operands[0] === '--help')) {
    process.stdout.write(USAGE);
    return 0;
  }
  if (operands.length !== 1) throw new UsageError('status takes one file or directory');
  if (typeof lib.inspect !== 'function') {
    fail('status needs inspect(), which this version of the library does not have');
    return EX_UNAVAILABLE;
  }
  const target = resolve(operands[0]);
  let isDir = false;
  try {
    isDir = statSync(target).isDirectory();
  } catch {}
  // A directory: every *.lock file in it, each inspected as the lock file itself.
  const entries = isDir
    ? readdirSync(target)
        .filter((name) => name.endsWith('.lock'))
        .sort()
        .map((name) => ({ path: join(target, name), options: { lockfilePath: join(target, name) } }))
    : [{ path: target, options: itself ? { lockfilePath: target } : {} }];
  const results = entries.map(({ path, options }) => {
    try {
      const state = lib.inspect(path, options);
      return { path, lockFile: options.lockfilePath ?? `${path}.lock`, ...state };
    } catch (error) {
      return { path, error: { code: error?.code, message: error?.message } };
    }
  });
  if (json) process.stdout.write(JSON.stringify(isDir ? results : results[0], null, 2) + '\n');
  else if (results.length === 0) process.stdout.write(`no lock files in ${target}\n`);
  else for (const r of results) process.stdout.write(`${r.path}: ${describeState(r)}\n`);
  return results.some((r) => r.error) ? 1 : 0;
}

// --- doctor --------------------------------------------------------------------

// Linux statfs f_type magic numbers (linux/magic.h and file systems' own).
const FS_MAGIC = new Map([
  [0xef53, 'ext2/ext3/ext4'],
  [0x58465342, 'xfs'],
  [0x9123683e, 'btrfs'],
  [0x01021994, 'tmpfs'],
  [0x858458f6, 'ramfs'],
  [0x2fc12fc1, 'zfs'],
  [0xf2f52010, 'f2fs'],
  [0x3153464a, 'jfs'],
  [0x52654973, 'reiserfs'],
  [0x4d44, 'vfat'],
  [0x2011bab0, 'exfat'],
  [0x5346544e, 'ntfs'],
  [0x65735546, 'fuse'],
  [0x6969, 'nfs'],
  [0x517b, 'smb'],
  [0xff534d42, 'cifs'],
  [0xfe534d42, 'smb2'],
  [0x01021997, '9p'],
  [0x794c7630, 'overlay'],
  [0x73717368, 'squashfs'],
  [0xf15f, 'ecryptfs'],
  [0x00c36400, 'ceph'],
  [0x01161970, 'gfs2'],
  [0x7461636f, 'ocfs2'],
  [0x0bd00bd0, 'lustre'],
  [0x5346414f, 'afs'],
  [0x6165676c, 'pstorefs'],
  [0x9fa0, 'proc'],
  [0x62656572, 'sysfs'],
]);

const WARNINGS = {
  nfs: 'NFS: Linux emulates flock with a whole-file fcntl lock that the server arbitrates. It excludes across clients only while the lock service (NLM/lockd for v3, the lease for v4) works; a client that loses its lease loses the lock silently; the local_lock mount option makes locks local to this machine; and fcntl/lockf locks on the same file now conflict with it.',
  smb: 'SMB/CIFS: flock is emulated with byte-range locks sent to the server (mandatory ones on a Windows server); with the nobrl mount option locks are local to this machine only; a reconnect can drop them.',
  fuse: 'FUSE: locking is whatever the FUSE file system implements; many keep flock locks in this kernel only (no exclusion with other machines), and some refuse them.',
  '9p': '9p (virtual machine and WSL shares): locks are usually local to this guest and unseen by the host or other guests, or not supported at all.',
  overlay: 'overlay (containers): a lock is on the inode of the upper or lower layer; containers that do not share the upper layer do not exclude each other, and a copy-up changes the inode under a lock.',
};

function warningKey(type) {
  if (/^nfs/.test(type)) return 'nfs';
  if (/^(smb|cifs)/.test(type)) return 'smb';
  if (/^fuse/.test(type)) return 'fuse';
  if (type === '9p' || type === 'v9fs') return '9p';
  if (type === 'overlay' || type === 'overlayfs') return 'overlay';
  return undefined;
}

/** The mount holding dir, from /proc/self/mountinfo: its type string (nfs4, fuse.sshfs...) and mount point. */
function linuxMount(dir) {
  let text;
  try {
    text = readFileSync('/proc/self/mountinfo', 'utf8');
  } catch {
    return undefined;
  }
  const unescape = (s) => s.replace(/\\([0-7]{3})/g, (_, o) => String.fromCharCode(parseInt(o, 8)));
  let best;
  for (const line of text.split('\n')) {
    const [left, right] = line.split(' - ');
    if (!right) continue;
    const point = unescape(left.split(' ')[4]);
    const inside = dir === point || dir.startsWith(point.endsWith('/') ? point : point + '/');
    if (inside && (!best || point.length >= best.mountPoint.length)) best = { mountPoint: point, type: right.split(' ')[0], source: unescape(right.split(' ')[1] ?? '') };
  }
  return best;
}

function fileSystemOf(dir) {
  const info = { type: 'unknown', magic: undefined, mountPoint: undefined, source: undefined };
  try {
    const st = statfsSync(dir);
    info.magic = '0x' + (st.type >>> 0).toString(16);
    if (process.platform === 'linux') info.type = FS_MAGIC.get(st.type >>> 0) ?? `unknown (statfs type ${info.magic})`;
    // libuv's statfs on Windows (GetDiskFreeSpaceW) always gives type 0: it says nothing.
    else if (process.platform === 'win32') info.type = 'unknown (Windows gives Node no file system type)';
    else info.type = `statfs type ${info.magic}`;
  } catch (error) {
    info.type = `unknown (${error.code ?? error.message})`;
  }
  if (process.platform === 'linux') {
    const mount = linuxMount(dir);
    if (mount) {
      info.mountPoint = mount.mountPoint;
      info.source = mount.source;
      // mountinfo names FUSE subtypes and NFS versions (fuse.sshfs, nfs4).
      if (!info.type.startsWith('unknown') || mount.type) info.type = mount.type || info.type;
    }
  } else if (process.platform === 'win32') {
    // A UNC path (\\server\share\...) is a network (SMB) share; a mapped drive letter cannot be told apart here.
    const unc = /^\\\\(?![?.]\\)([^\\]+)\\([^\\]+)/.exec(dir) ?? /^\\\\[?.]\\UNC\\([^\\]+)\\([^\\]+)/i.exec(dir);
    if (unc) {
      info.type = 'smb (a UNC path)';
      info.source = `\\\\${unc[1]}\\${unc[2]}`;
    }
  } else if (process.platform === 'darwin') {
    const out = spawnSync('/sbin/mount', [], { encoding: 'utf8' });
    const df = spawnSync('/bin/df', ['-P', dir], { encoding: 'utf8' });
    const point = df.stdout?.trim().split('\n')[1]?.split(/\s+/).slice(5).join(' ');
    const line = out.stdout?.split('\n').find((l) => point && l.includes(` on ${point} (`));
    const m = line && /\(([^,)]+)/.exec(line);
    if (m) {
      info.type = m[1];
      info.mountPoint = point;
    }
  }
  return info;
}

// A child that holds the lock until its stdin ends, or probes it once.
const PEER = `
const { lock, tryLock } = require(process.argv[1]);
const [mode, file] = process.argv.slice(2);
(async () => {
  if (mode === 'hold') {
    const held = await lock(file);
    process.stdout.write('held\\n');
    process.stdin.resume();
    process.stdin.on('end', async () => { await held.release(); process.exit(0); });
  } else {
    const held = await tryLock(file);
    process.stdout.write(held ? 'free\\n' : 'busy\\n');
    if (held) await held.release();
    process.exit(0);
  }
})().catch((e) => { process.stdout.write('error ' + (e.code || '') + ' ' + e.message + '\\n'); process.exit(2); });
`;

function probe(entry, file) {
  const out = spawnSync(process.execPath, ['-e', PEER, entry, 'probe', file], { encoding: 'utf8', timeout: 60_000 });
  return (out.stdout || out.stderr || String(out.error)).trim();
}

async function exclusionTest(dir) {
  const entry = require.resolve('native-file-lock');
  const file = join(dir, `.native-file-lock-doctor-${process.pid}-${randomBytes(4).toString('hex')}`);
  const lockFile = file + '.lock';
  const steps = [];
  try {
    const holder = spawn(process.execPath, ['-e', PEER, entry, 'hold', file], { stdio: ['pipe', 'pipe', 'pipe'] });
    let out = '';
    holder.stdout.setEncoding('utf8').on('data', (c) => (out += c));
    holder.stderr.setEncoding('utf8').on('data', (c) => (out += c));
    const exited = new Promise((done) => holder.once('close', done));
    const ready = await Promise.race([
      new Promise((done) => {
        const check = () => (out.includes('held') ? done('held') : setTimeout(check, 10));
        check();
      }),
      exited.then(() => 'exited'),
      new Promise((done) => setTimeout(() => done('timeout'), 60_000).unref()),
    ]);
    if (ready !== 'held') {
      holder.kill('SIGKILL');
      return { ok: false, steps, error: `the first process could not take the lock: ${out.trim() || ready}` };
    }
    const whileHeld = probe(entry, file);
    steps.push({ step: 'second process tries while the first holds it', expected: 'busy', got: whileHeld });
    holder.stdin.end();
    await exited;
    const afterRelease = probe(entry, file);
    steps.push({ step: 'second process tries after the first released it', expected: 'free', got: afterRelease });
    const ok = whileHeld === 'busy' && afterRelease === 'free';
    return { ok, steps, error: ok ? undefined : 'locks do not exclude between processes here' };
  } finally {
    rmSync(lockFile, { force: true });
  }
}

async function runDoctor(args) {
  const json = args.includes('--json');
  const operands = args.filter((a) => a !== '--json');
  if (operands.length > 1) throw new UsageError('doctor takes at most one directory');
  const dir = resolve(operands[0] ?? '.');
  let isDir = false;
  try {
    isDir = statSync(dir).isDirectory();
  } catch {}
  if (!isDir) {
    fail(`not a directory: ${dir}`);
    return EX_NOINPUT;
  }
  const fs = fileSystemOf(dir);
  const key = warningKey(fs.type.toLowerCase());
  const warnings = key ? [WARNINGS[key]] : [];
  const test = await exclusionTest(dir);
  const report = { directory: dir, platform: process.platform, fileSystem: fs, warnings, exclusion: test, ok: test.ok };
  if (json) process.stdout.write(JSON.stringify(report, null, 2) + '\n');
  else {
    const lines = [`directory:   ${dir}`, `file system: ${fs.type}${fs.mountPoint ? ` (mounted on ${fs.mountPoint}${fs.source ? ` from ${fs.source}` : ''})` : ''}`];
    for (const w of warnings) lines.push(`warning:     ${w}`);
    for (const s of test.steps) lines.push(`test:        ${s.step}: ${s.got}${s.got === s.expected ? '' : ` (expected ${s.expected})`}`);
    lines.push(test.ok ? 'result:      locks exclude between processes here' : `result:      FAILED: ${test.error}`);
    process.stdout.write(lines.join('\n') + '\n');
  }
  return test.ok ? 0 : 1;
}

async function main(args) {
  try {
    if (args[0] === 'status') return await runStatus(args.slice(1));
    if (args[0] === 'doctor') return await runDoctor(args.slice(1));
    return await runLocked(args);
  } catch (error) {
    if (error instanceof UsageError) {
      fail(error.message);
      process.stderr.write(`Try '${NAME} --help' for more information.\n`);
      return EX_USAGE;
    }
    throw error;
  }
}

process.exitCode = await main(process.argv.slice(2));
// Exit now: nothing else of the CLI's may keep the process (or the lock) alive.
process.exit();
