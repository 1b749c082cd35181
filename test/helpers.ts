// Shared utilities for the test suite: temp dirs, real child processes,
// descriptor accounting and waiting on conditions with generous deadlines.
import { spawn, type ChildProcess, type SpawnOptions } from 'node:child_process';
import { mkdtempSync, readdirSync, readlinkSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { onTestFinished } from 'vitest';

export const FIXTURES = fileURLToPath(new URL('./fixtures/', import.meta.url));

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

/** Polls until cond() is truthy; fails with message after timeout ms. */
/** A small file at dir/name to protect with a lock. */
export function resourceIn(dir: string, name = 'data'): string {
  const path = join(dir, name);
  writeFileSync(path, 'x');
  return path;
}

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

// --- child processes ---------------------------------------------------------

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

export function runNode(script: string, args: readonly string[] = [], options: SpawnOptions = {}): Proc {
  return new Proc(process.execPath, [script, ...args], options);
}

/** util-linux flock(1). */
export function runFlock(args: readonly string[]): Proc {
  return new Proc('flock', args);
}

export function runPython(code: string, args: readonly string[] = []): Proc {
  return new Proc('python3', ['-c', code, ...args]);
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

  static async start(): Promise<Agent> {
    const proc = new Proc(process.execPath, [fixture('agent.mjs')], { stdio: ['ignore', 'pipe', 'pipe', 'ipc'] });
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
