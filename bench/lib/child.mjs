// The driver side of the worker protocol (see worker-io.mjs): spawn, read
// answer lines, send commands, collect the final "result {json}" line. Every
// child has a deadline; on expiry, on a crash or on a protocol error it is
// killed and the error names the child and quotes its stderr.
import { spawn } from 'node:child_process';

const live = new Set();

export class Child {
  constructor(command, argv, { label, timeoutMs, env, cwd }) {
    this.label = label;
    this.lines = [];
    this.waiters = [];
    this.stderr = '';
    this.exitError = undefined;
    this.result = undefined;
    this.proc = spawn(command, argv, { stdio: ['pipe', 'pipe', 'pipe'], env: env ?? process.env, cwd });
    live.add(this);
    this.timer = setTimeout(() => this.abort(new Error(`${label} timed out after ${Math.round(timeoutMs / 1000)} s`)), timeoutMs);
    let partial = '';
    this.proc.stdout.setEncoding('utf8');
    this.proc.stdout.on('data', (chunk) => {
      partial += chunk;
      let nl;
      while ((nl = partial.indexOf('\n')) >= 0) {
        this.onLine(partial.slice(0, nl));
        partial = partial.slice(nl + 1);
      }
    });
    this.proc.stderr.setEncoding('utf8');
    this.proc.stderr.on('data', (chunk) => {
      this.stderr = (this.stderr + chunk).slice(-4000);
    });
    // A child that exits early closes its stdin; writes must not crash the driver.
    this.proc.stdin.on('error', () => {});
    this.exited = new Promise((resolve) => {
      this.proc.on('error', (error) => {
        this.fail(new Error(`${label} could not start: ${error.message}`));
        resolve();
      });
      this.proc.on('close', (code, signal) => {
        clearTimeout(this.timer);
        live.delete(this);
        if (code !== 0 || this.result === undefined) {
          const how = signal ? `was killed by ${signal}` : `exited with code ${code}`;
          const why = this.result === undefined && code === 0 ? ' without a result' : '';
          this.fail(new Error(`${label} ${how}${why}${this.stderr ? `\n--- stderr of ${label} ---\n${this.stderr.trimEnd()}` : ''}`));
        }
        resolve();
      });
    });
  }

  onLine(line) {
    if (line.startsWith('result ')) {
      try {
        this.result = JSON.parse(line.slice(7));
      } catch (error) {
        this.abort(new Error(`${this.label} sent an unreadable result: ${error.message}`));
      }
      return;
    }
    const w = this.waiters.shift();
    if (w) w.resolve(line);
    else this.lines.push(line);
  }

  fail(error) {
    if (this.exitError === undefined) this.exitError = error;
    for (const w of this.waiters.splice(0)) w.reject(this.exitError);
  }

  /** Kills the child and fails everything waiting on it. */
  abort(error) {
    this.fail(error);
    this.proc.kill('SIGKILL');
  }

  /** The next answer line. */
  next() {
    if (this.lines.length > 0) return Promise.resolve(this.lines.shift());
    if (this.exitError) return Promise.reject(this.exitError);
    return new Promise((resolve, reject) => this.waiters.push({ resolve, reject }));
  }

  /** The next answer, which must start with word; resolves to the rest of the line. */
  async expect(word) {
    const line = await this.next();
    if (line !== word && !line.startsWith(word + ' ')) {
      const error = new Error(`${this.label} answered '${line}' where '${word}' was expected`);
      this.abort(error);
      throw error;
    }
    return line.slice(word.length + 1);
  }

  send(line) {
    this.proc.stdin.write(line + '\n');
  }

  /** Waits for the child to exit and returns its result. */
  async done() {
    await this.exited;
    if (this.exitError) throw this.exitError;
    return this.result;
  }
}

/** Kills every child still running (after a failed scenario, or on exit). */
export function killAll() {
  for (const c of live) c.proc.kill('SIGKILL');
}

/**
 * Starts the children, waits until all are ready, says "go" to all at once,
 * and returns their results. One failure kills the rest.
 */
export async function runTogether(children) {
  try {
    await Promise.all(children.map((c) => c.expect('ready')));
    for (const c of children) c.send('go');
    return await Promise.all(children.map((c) => c.done()));
  } catch (error) {
    for (const c of children) c.proc.kill('SIGKILL');
    await Promise.all(children.map((c) => c.exited));
    throw error;
  }
}
