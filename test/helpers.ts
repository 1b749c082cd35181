// Shared utilities for the test suite: temp dirs, waiting on conditions with
// generous deadlines, what a test requires of the machine, descriptor
// accounting, real child processes, and the agent (a second process that locks
// on command). Peers that are other programs (flock(1), Python) are in peers.ts.
import { spawn, spawnSync, type ChildProcess, type SpawnOptions, type SpawnSyncOptions } from 'node:child_process';
import { existsSync, mkdtempSync, readdirSync, readFileSync, readlinkSync, realpathSync, rmdirSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { delimiter, dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { Worker } from 'node:worker_threads';
import { afterAll, beforeAll, beforeEach, expect, onTestFinished, type TestContext } from 'vitest';

import { FileLockError, tryLock } from 'native-file-lock';

/** test/fixtures/: the programs tests start, as real files (see README "Development"). */
export const FIXTURES = fileURLToPath(new URL('./fixtures/', import.meta.url));

/** The path of test/fixtures/name. */
export function fixture(name: string): string {
  return join(FIXTURES, name);
}

export const sleep = (ms: number) => new Promise<void>((resolve) => setTimeout(resolve, ms));

/** Runs cleanup when the current test ends; outside a test (beforeAll) the caller cleans up. */
function afterThisTest(cleanup: () => unknown): void {
  try {
    onTestFinished(async () => {
      await cleanup();
    });
  } catch {
    // Not inside a test.
  }
}

/** A fresh directory under os.tmpdir(), removed when the test ends. */
export function tempDir(prefix = 'nfl-test-'): string {
  const dir = mkdtempSync(join(tmpdir(), prefix));
  afterThisTest(() => rmSync(dir, { recursive: true, force: true }));
  return dir;
}

/** A small file at dir/name to protect with a lock. */
export function resourceIn(dir: string, name = 'data'): string {
  const path = join(dir, name);
  writeFileSync(path, 'x');
  return path;
}

/** The default lock file of an existing path: its canonical path plus `.lock`. */
export function lockFileOf(path: string): string {
  return realpathSync(path) + '.lock';
}

/** Polls until cond() is truthy; fails with message after timeout ms. */
export async function waitFor<T>(cond: () => T | Promise<T>, message: string, timeout = 10_000, interval = 10): Promise<T> {
  const deadline = Date.now() + timeout;
  for (;;) {
    const value = await cond();
    if (value) return value;
    if (Date.now() > deadline) throw new Error(`Timed out after ${timeout} ms waiting for: ${message}`);
    await sleep(interval);
  }
}

/** Resolves to 'settled' if p settles within ms, else to 'pending'. */
export async function settlesWithin(p: Promise<unknown>, ms: number): Promise<'settled' | 'pending'> {
  let timer: ReturnType<typeof setTimeout> | undefined;
  const pending = new Promise<'pending'>((resolve) => {
    timer = setTimeout(() => resolve('pending'), ms);
  });
  try {
    return await Promise.race([
      p.then(
        () => 'settled' as const,
        () => 'settled' as const,
      ),
      pending,
    ]);
  } finally {
    clearTimeout(timer);
  }
}

// --- requirements --------------------------------------------------------------

/**
 * What a test may need that a developer's machine can lack. Outside CI a test
 * whose requirement is missing is skipped with the reason (vitest.config.ts
 * lists the skips at the end of the run); under CI=true on Linux as root,
 * where everything is installed, it fails instead, so that CI runs them all.
 */
export type Requirement = 'linux' | 'posix' | 'root' | 'mount' | 'setpriv' | 'bindfs' | 'flock(1)' | 'python3' | '/proc' | 'valgrind' | 'node-gyp' | 'c compiler' | 'node headers';

/** An executable of that name on PATH (PATHEXT on Windows), without a shell. */
function onPath(name: string): boolean {
  const exts = process.platform === 'win32' ? (process.env.PATHEXT ?? '.EXE;.CMD;.BAT').split(';') : [''];
  return (process.env.PATH ?? '').split(delimiter).some((dir) =>
    exts.some((ext) => {
      try {
        return dir !== '' && statSync(join(dir, name + ext)).isFile();
      } catch {
        return false;
      }
    }),
  );
}

const isRoot = () => process.getuid?.() === 0;

/** Node's C headers, for building a small addon in a test. */
export const NODE_HEADERS = join(dirname(process.execPath), '..', 'include', 'node');

/** Per requirement: why the machine lacks it, or undefined if it has it. */
const CHECKS: Record<Requirement, () => string | undefined> = {
  posix: () => (process.platform === 'win32' ? 'asserts POSIX file modes and signals (this is win32)' : undefined),
  linux: () => (process.platform === 'linux' ? undefined : `asserts Linux behaviour (this is ${process.platform})`),
  root: () => (isRoot() ? undefined : `needs root (running as ${process.platform === 'win32' ? 'a Windows user' : `uid ${process.getuid?.()}`})`),
  mount: () => {
    if (process.platform !== 'linux') return `needs Linux mounts (this is ${process.platform})`;
    if (!isRoot()) return 'needs root to mount file systems';
    // Root in a container may still lack CAP_SYS_ADMIN: try it.
    const dir = mkdtempSync(join(tmpdir(), 'nfl-mount-probe-'));
    try {
      const mounted = spawnSync('mount', ['-t', 'tmpfs', '-o', 'size=64k', 'tmpfs', dir], { stdio: 'ignore' }).status === 0;
      if (mounted) spawnSync('umount', [dir], { stdio: 'ignore' });
      return mounted ? undefined : 'mount -t tmpfs failed (no mount privilege)';
    } finally {
      rmdirSync(dir);
    }
  },
  setpriv: () => {
    if (!onPath('setpriv')) return 'setpriv (util-linux) is not installed';
    // The way the tests use it: drop to nobody, which needs root.
    const ok = spawnSync('setpriv', ['--reuid=nobody', '--regid=nogroup', '--clear-groups', 'true'], { stdio: 'ignore' }).status === 0;
    return ok ? undefined : 'setpriv cannot switch to nobody:nogroup (needs root)';
  },
  bindfs: () => {
    if (!onPath('bindfs')) return 'bindfs is not installed (Debian: apt-get install bindfs fuse3)';
    return existsSync('/dev/fuse') ? undefined : 'bindfs needs /dev/fuse';
  },
  'flock(1)': () => (onPath('flock') ? undefined : 'flock(1) from util-linux is not installed'),
  python3: () => (onPath('python3') ? undefined : 'python3 is not installed'),
  '/proc': () => (existsSync('/proc/self/fd') ? undefined : `needs /proc (this is ${process.platform})`),
  valgrind: () => (onPath('valgrind') ? undefined : 'valgrind is not installed'),
  // Builds test/nfs-model's flock shim.
  'c compiler': () => (onPath('cc') ? undefined : 'a C compiler (cc) is not installed'),
  // What node-gyp needs to compile the addon (on Windows it finds Visual Studio itself).
  'node-gyp': () => {
    if (process.platform === 'win32') return undefined;
    const lacking = ['python3', 'make', 'c++'].filter((tool) => !onPath(tool));
    return lacking.length === 0 ? undefined : `node-gyp cannot compile here: ${lacking.join(', ')} not installed`;
  },
  'node headers': () => (existsSync(join(NODE_HEADERS, 'node_api.h')) ? undefined : `Node's C headers are not in ${NODE_HEADERS}`),
};

const checked = new Map<Requirement, string | undefined>();

/** Why the machine cannot run something that needs all of these, or undefined if it can. */
export function missing(...needs: Requirement[]): string | undefined {
  const reasons = needs.map((need) => {
    if (!checked.has(need)) checked.set(need, CHECKS[need]());
    return checked.get(need);
  });
  const found = reasons.filter((r): r is string => r !== undefined);
  return found.length > 0 ? found.join('; ') : undefined;
}

/** CI=true on Linux as root: every requirement is installed there, so a missing one is a failure. */
export const requirementsEnforced = !!process.env.CI && process.env.CI !== 'false' && process.platform === 'linux' && isRoot();

/**
 * Skips the test (ctx) with the reason when a requirement is missing, or fails
 * under CI (see Requirement). Call it first, before creating temp dirs or
 * mounts, so that a skipped test leaves nothing to clean up.
 */
export function skipWithout(ctx: Pick<TestContext, 'skip'>, ...needs: Requirement[]): void {
  const reason = missing(...needs);
  if (reason === undefined) return;
  if (requirementsEnforced) throw new Error(`missing requirement under CI: ${reason}`);
  ctx.skip(reason);
}

/**
 * For a describe block (or a whole file, at top level): every test in it is
 * skipped or fails as skipWithout says. Returns whether the requirements are
 * met, so that beforeAll/afterAll can leave out what they cannot do:
 * `const canMount = requires('mount'); beforeAll(() => { if (!canMount) return; ... })`.
 */
export function requires(...needs: Requirement[]): boolean {
  beforeEach((ctx) => skipWithout(ctx, ...needs));
  return missing(...needs) === undefined;
}

// --- descriptors -------------------------------------------------------------

/** Targets of this process's open descriptors (or another process's, by pid). */
export function openFiles(pid: number | 'self' = 'self'): string[] {
  const dir = `/proc/${pid}/fd`;
  const targets: string[] = [];
  for (const fd of readdirSync(dir)) {
    try {
      targets.push(readlinkSync(`${dir}/${fd}`));
    } catch {
      // Closed between readdir and readlink (the readdir descriptor itself, for one).
    }
  }
  return targets;
}

/** How many descriptors this process has open. */
export function fdCount(): number {
  return openFiles().length;
}

/**
 * Descriptors open now that were not open in an earlier openFiles() snapshot,
 * counted by target (several descriptors may share one). Descriptors that
 * closed in between are not reported: the test runner may close its own.
 */
export function fdsOpenedSince(snapshot: readonly string[]): string[] {
  const remaining = new Map<string, number>();
  for (const target of snapshot) remaining.set(target, (remaining.get(target) ?? 0) + 1);
  const added: string[] = [];
  for (const target of openFiles()) {
    const left = remaining.get(target) ?? 0;
    if (left > 0) remaining.set(target, left - 1);
    else added.push(target);
  }
  return added;
}

/** Open descriptors of this process on lock files (anything ending in .lock). */
export function lockFds(): string[] {
  return openFiles().filter((target) => target.endsWith('.lock'));
}

/** Waits until the idle sweep has closed every cached lock-file descriptor of this process. */
export async function waitForLockFdsClosed(timeout = 6_000): Promise<void> {
  await waitFor(() => lockFds().length === 0, `lock-file descriptors to be closed (open: ${lockFds().join(', ')})`, timeout, 50);
}

/**
 * How many lock requests on the file at lockPath are blocked right now, in
 * any process: /proc/locks lists each as '->' with the file's inode (flock
 * waits and queue-ticket waits alike). Linux only.
 */
export function blockedOn(lockPath: string): number {
  const inode = statSync(lockPath).ino;
  return readFileSync('/proc/locks', 'utf8')
    .split('\n')
    .filter((line) => line.includes('->') && line.includes(`:${inode} `)).length;
}

/**
 * Whether some process holds the turn marker of the lock file at lockPath:
 * an OFD lock on byte 2 alone, which a process that got the lock after
 * waiting keeps through its turn (native/lock_posix.cc). Linux only.
 */
export function turnMarkerHeld(lockPath: string): boolean {
  const inode = statSync(lockPath).ino;
  return readFileSync('/proc/locks', 'utf8')
    .split('\n')
    .some((line) => !line.includes('->') && / OFDLCK .* 2 2$/.test(line.trim()) && line.includes(`:${inode} `));
}

// --- worker threads ----------------------------------------------------------

export interface ThreadMessage {
  type: string;
  error?: { name?: string; code?: string; message: string };
  [key: string]: unknown;
}

/** A worker_thread whose { type } messages are collected; terminated when the test ends. */
export class Thread {
  readonly worker: Worker;
  readonly messages: ThreadMessage[] = [];
  readonly exited: Promise<number>;

  constructor(script: string, workerData: unknown) {
    this.worker = new Worker(script, { workerData });
    this.worker.on('message', (message: ThreadMessage) => this.messages.push(message));
    this.exited = new Promise<number>((resolve, reject) => {
      this.worker.once('error', reject);
      this.worker.once('exit', resolve);
    });
    this.exited.catch(() => {});
    afterThisTest(() => this.worker.terminate());
  }

  /** Waits for a message of that type; fails early on an 'error' message or an exit. */
  async next(type: string, timeout = 15_000): Promise<ThreadMessage> {
    let exited = false;
    void this.exited.then(
      () => (exited = true),
      () => (exited = true),
    );
    return waitFor<ThreadMessage | undefined>(
      () => {
        const found = this.messages.find((m) => m.type === type);
        if (found) return found;
        const error = this.messages.find((m) => m.type === 'error');
        if (error) throw new Error(`thread failed while waiting for '${type}': ${JSON.stringify(error.error)}`);
        if (exited) throw new Error(`thread exited before '${type}'; messages: ${JSON.stringify(this.messages)}`);
        return undefined;
      },
      `'${type}' from a worker thread`,
      timeout,
      5,
    ) as Promise<ThreadMessage>;
  }
}

// --- child processes ---------------------------------------------------------

/**
 * Resolves once every worker has posted its first message or exited with 0,
 * then terminates them all; rejects on a worker's error or other exit code.
 */
export async function workersDone(workers: readonly Worker[]): Promise<void> {
  await Promise.all(
    workers.map(
      (worker) =>
        new Promise<void>((resolve, reject) => {
          worker.once('message', () => resolve());
          worker.once('error', reject);
          worker.once('exit', (code) => (code === 0 ? resolve() : reject(new Error(`worker exited ${code}`))));
        }),
    ),
  );
  await Promise.all(workers.map((worker) => worker.terminate()));
}

/** True while a process with this pid exists (signal 0 tests without sending). */
export function isRunning(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
}

export interface Exit {
  code: number | null;
  signal: NodeJS.Signals | null;
}

/** A spawned process whose output is collected; killed when the test ends if still running. */
export class Proc {
  readonly child: ChildProcess;
  readonly exited: Promise<Exit>;
  stdout = '';
  stderr = '';

  constructor(command: string, args: readonly string[], options: SpawnOptions = {}) {
    this.child = spawn(command, args, { stdio: ['pipe', 'pipe', 'pipe'], ...options });
    this.child.stdout?.setEncoding('utf8').on('data', (chunk: string) => (this.stdout += chunk));
    this.child.stderr?.setEncoding('utf8').on('data', (chunk: string) => (this.stderr += chunk));
    this.exited = new Promise<Exit>((resolve, reject) => {
      this.child.once('error', reject);
      this.child.once('close', (code, signal) => resolve({ code, signal }));
    });
    // Keep an unhandled 'error' (spawn failure) from crashing the worker; awaiting exited reports it.
    this.exited.catch(() => {});
    afterThisTest(() => this.kill('SIGKILL'));
  }

  get pid(): number {
    return this.child.pid!;
  }

  get running(): boolean {
    return this.child.exitCode === null && this.child.signalCode === null;
  }

  kill(signal: NodeJS.Signals = 'SIGTERM'): void {
    if (this.running) this.child.kill(signal);
  }

  /** Waits until stdout contains text; fails early if the process exits first. */
  async waitForOutput(text: string, timeout = 15_000): Promise<void> {
    await waitFor(
      () => {
        if (this.stdout.includes(text)) return true;
        if (!this.running) throw new Error(`process exited before printing '${text}'; stdout: ${this.stdout} stderr: ${this.stderr}`);
        return false;
      },
      `'${text}' on stdout of pid ${this.pid}`,
      timeout,
      5,
    );
  }

  /** Waits for exit and fails, showing stderr, if it was not a clean exit 0. */
  async succeeded(): Promise<void> {
    const exit = await this.exited;
    if (exit.code !== 0) throw new Error(`pid ${this.pid} exited ${JSON.stringify(exit)}; stderr: ${this.stderr}`);
  }
}

/** node running script (this node binary, with this process's environment). */
export function runNode(script: string, args: readonly string[] = [], options: SpawnOptions = {}): Proc {
  return new Proc(process.execPath, [script, ...args], options);
}

/** This process's environment without LD_PRELOAD: a sanitizer runtime preloaded into node is not meant for other programs. */
export const plainEnv: NodeJS.ProcessEnv = (({ LD_PRELOAD: _preload, ...rest }) => rest)(process.env);

/** Runs a program other than node to its end (with plainEnv unless options say otherwise). */
export function runSync(command: string, args: readonly string[], options: SpawnSyncOptions = {}): { status: number | null; stdout: string; stderr: string } {
  const out = spawnSync(command, args, { encoding: 'utf8', env: plainEnv, ...options });
  if (out.error) throw out.error;
  return { status: out.status, stdout: String(out.stdout), stderr: String(out.stderr) };
}

// --- expected outcomes -------------------------------------------------------

/** What call() rejected with; fails if it threw synchronously or resolved. */
export async function rejection(call: () => Promise<unknown>): Promise<unknown> {
  let promise: Promise<unknown>;
  try {
    promise = call();
  } catch (error) {
    throw new Error(`threw synchronously instead of rejecting: ${String(error)}`);
  }
  return promise.then(
    (value) => {
      throw new Error(`resolved with ${String(value)} instead of rejecting`);
    },
    (error: unknown) => error,
  );
}

/** The FileLockError call() rejected with; fails on anything else. */
export async function fileLockError(call: () => Promise<unknown>): Promise<FileLockError> {
  const error = await rejection(call);
  expect(error).toBeInstanceOf(FileLockError);
  return error as FileLockError;
}

/**
 * Checks an O_APPEND log of critical sections: "E <path> <pid>" on entry
 * with an exclusive lock, "S <path> <pid>" with a shared one, "X <path>
 * <pid>" on exit, and "K <pid>" written once a process was stopped and before
 * it is killed, so nothing of it follows. An entry while a live process holds
 * the path in a conflicting mode, or an exit by a process that does not hold
 * it, is an overlap.
 */
export function overlapsIn(log: string): { overlaps: number; sections: number; killedHolding: number } {
  const holders = new Map<string, { exclusive: string | undefined; shared: string[] }>();
  const killed = new Set<string>();
  let overlaps = 0;
  let sections = 0;
  let killedHolding = 0;
  const live = (pid: string | undefined) => pid !== undefined && !killed.has(pid);
  for (const line of log.split('\n')) {
    const [kind, a, b] = line.split(' ');
    if (kind === 'K') {
      killed.add(a!);
      for (const h of holders.values()) if (h.exclusive === a || h.shared.includes(a!)) killedHolding++;
      continue;
    }
    if (kind !== 'E' && kind !== 'S' && kind !== 'X') continue;
    const h = holders.get(a!) ?? { exclusive: undefined, shared: [] };
    holders.set(a!, h);
    if (kind === 'X') {
      const i = h.shared.indexOf(b!);
      if (h.exclusive === b) h.exclusive = undefined;
      else if (i >= 0) h.shared.splice(i, 1);
      else overlaps++;
      continue;
    }
    sections++;
    if (live(h.exclusive) || (kind === 'E' && h.shared.some(live))) overlaps++;
    if (kind === 'E') h.exclusive = b;
    else h.shared.push(b!);
  }
  return { overlaps, sections, killedHolding };
}

// --- the agent: a child process that locks on command ------------------------

export interface AgentError {
  name: string;
  code?: string;
  message: string;
}

type Reply = { id: number; ok: true; value: unknown } | { id: number; ok: false; error: AgentError };

/**
 * test/fixtures/agent.mjs over IPC: a second process that takes, tries and
 * releases locks with the library when told to, so tests can observe one
 * process's locks from another.
 */
export class Agent {
  private nextId = 0;
  private readonly pending = new Map<number, { resolve: (reply: Reply) => void; reject: (error: Error) => void }>();

  private constructor(readonly proc: Proc) {
    proc.child.on('message', (reply: Reply) => {
      const waiter = this.pending.get(reply.id);
      this.pending.delete(reply.id);
      waiter?.resolve(reply);
    });
    void proc.exited.then(() => {
      for (const waiter of this.pending.values()) waiter.reject(new Error(`agent exited; stderr: ${proc.stderr}`));
      this.pending.clear();
    });
  }

  /** env: the agent's environment (default: this process's), e.g. a test lock kind. */
  static async start(env?: NodeJS.ProcessEnv): Promise<Agent> {
    const proc = new Proc(process.execPath, [fixture('agent.mjs')], { stdio: ['ignore', 'pipe', 'pipe', 'ipc'], env });
    const agent = new Agent(proc);
    await agent.call('ping');
    return agent;
  }

  get pid(): number {
    return this.proc.pid;
  }

  /** Sends a command; resolves to its reply, error or not. */
  request(op: string, args: Record<string, unknown> = {}): Promise<Reply> {
    const id = this.nextId++;
    return new Promise<Reply>((resolve, reject) => {
      if (!this.proc.running) return reject(new Error(`agent is not running; stderr: ${this.proc.stderr}`));
      this.pending.set(id, { resolve, reject });
      this.proc.child.send({ id, op, ...args });
    });
  }

  /** Sends a command; resolves to its value, rejects with its error. */
  async call<T = unknown>(op: string, args: Record<string, unknown> = {}): Promise<T> {
    const reply = await this.request(op, args);
    if (!reply.ok) throw Object.assign(new Error(`agent ${op} failed: ${reply.error.message}`), { agentError: reply.error });
    return reply.value as T;
  }

  /** Resolves to the error of a command expected to fail. */
  async failure(op: string, args: Record<string, unknown> = {}): Promise<AgentError> {
    const reply = await this.request(op, args);
    if (reply.ok) throw new Error(`agent ${op} succeeded with ${JSON.stringify(reply.value)}; expected an error`);
    return reply.error;
  }

  /** True if the agent could take the lock at once (it then releases it again). */
  async canLock(path: string, options: Record<string, unknown> = {}): Promise<boolean> {
    return this.call<boolean>('probe', { path, options });
  }

  kill(signal: NodeJS.Signals = 'SIGKILL'): void {
    this.proc.kill(signal);
  }

  async stop(): Promise<void> {
    if (this.proc.running) {
      this.proc.child.send({ id: -1, op: 'exit' });
      await this.proc.exited;
    }
  }
}

/**
 * Nothing holds the lock: neither another process (the agent) nor this one is
 * kept out. Only another process can tell whether this one still holds it; a
 * tryLock here could be served by this process's own descriptor. Checked for
 * up to 5 s: a wait given up (timeout, abort) gives back what its thread still
 * gets, and on a loaded machine that thread may be granted the lock before it
 * sees that it was cancelled. A lock left held fails the check.
 */
export async function expectFree(agent: Agent, path: string): Promise<void> {
  await waitFor(
    async () => {
      if (!(await agent.canLock(path))) return false;
      const held = await tryLock(path);
      if (held === undefined) return false;
      await held.release();
      return true;
    },
    `the lock on ${path} to be free for another process and for this one`,
    5_000,
    20,
  );
}

/**
 * An agent for the tests of the calling file: started before its first test,
 * stopped after its last. Call it at the top level; call what it returns in a test.
 */
export function agentForFile(env?: NodeJS.ProcessEnv): () => Agent {
  let agent: Agent | undefined;
  beforeAll(async () => {
    agent = await Agent.start(env);
  });
  afterAll(async () => {
    await agent?.stop();
  });
  return () => {
    if (agent === undefined) throw new Error('agentForFile: the agent is started in beforeAll, so use it inside a test');
    return agent;
  };
}

/**
 * An agent for the calling test: started now, and when the test ends, however
 * it ends, continued (the test may have stopped it with SIGSTOP) and stopped.
 */
export async function agentForTest(env?: NodeJS.ProcessEnv): Promise<Agent> {
  const agent = await Agent.start(env);
  afterThisTest(async () => {
    agent.kill('SIGCONT');
    await agent.stop();
  });
  return agent;
}

/**
 * test/fixtures/agent.mjs as a worker_thread of this process: the same
 * commands as Agent, so tests can observe one thread's locks from another.
 */
export class ThreadAgent {
  private nextId = 0;
  private readonly pending = new Map<number, { resolve: (reply: Reply) => void; reject: (error: Error) => void }>();
  private ended = false;

  private constructor(readonly worker: Worker) {
    worker.on('message', (reply: Reply) => {
      const waiter = this.pending.get(reply.id);
      this.pending.delete(reply.id);
      waiter?.resolve(reply);
    });
    const end = (error?: Error) => {
      this.ended = true;
      for (const waiter of this.pending.values()) waiter.reject(error ?? new Error('worker agent exited'));
      this.pending.clear();
    };
    worker.on('error', end);
    worker.on('exit', () => end());
  }

  static async start(): Promise<ThreadAgent> {
    const agent = new ThreadAgent(new Worker(fixture('agent.mjs')));
    afterThisTest(() => agent.worker.terminate());
    await agent.call('ping');
    return agent;
  }

  /** Sends a command; resolves to its reply, error or not. */
  request(op: string, args: Record<string, unknown> = {}): Promise<Reply> {
    const id = this.nextId++;
    return new Promise<Reply>((resolve, reject) => {
      if (this.ended) return reject(new Error('worker agent is not running'));
      this.pending.set(id, { resolve, reject });
      this.worker.postMessage({ id, op, ...args });
    });
  }

  /** Sends a command; resolves to its value, rejects with its error. */
  async call<T = unknown>(op: string, args: Record<string, unknown> = {}): Promise<T> {
    const reply = await this.request(op, args);
    if (!reply.ok) throw Object.assign(new Error(`worker agent ${op} failed: ${reply.error.message}`), { agentError: reply.error });
    return reply.value as T;
  }

  /** True if the worker could take the lock at once (it then releases it again). */
  async canLock(path: string, options: Record<string, unknown> = {}): Promise<boolean> {
    return this.call<boolean>('probe', { path, options });
  }

  async stop(): Promise<void> {
    await this.worker.terminate();
  }
}
