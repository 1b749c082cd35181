// The worker side of the driver protocol: one command per line on stdin,
// one answer per line on stdout. A worker whose driver is gone exits rather
// than linger holding locks.

/** Nanoseconds on CLOCK_MONOTONIC: the clock flock_cycle.c stamps with, shared by all processes. */
export function monoNs() {
  return Number(process.hrtime.bigint());
}

const pending = [];
const waiting = [];
let partial = '';
let ended = false;

process.stdin.setEncoding('utf8');
process.stdin.on('data', (chunk) => {
  partial += chunk;
  let nl;
  while ((nl = partial.indexOf('\n')) >= 0) {
    const line = partial.slice(0, nl);
    partial = partial.slice(nl + 1);
    const w = waiting.shift();
    if (w) w(line);
    else pending.push(line);
  }
});
process.stdin.on('end', () => {
  ended = true;
  process.exit(3);
});

/** The next command line from the driver. */
export function nextLine() {
  if (pending.length > 0) return Promise.resolve(pending.shift());
  if (ended) process.exit(3);
  return new Promise((resolve) => waiting.push(resolve));
}

/** Sends one answer line; stdout is synchronous for pipes on POSIX, so the order is kept. */
export function say(line) {
  process.stdout.write(line + '\n');
}

/** CPU time and context switches of this process (all threads) so far. */
export function usage() {
  const u = process.resourceUsage();
  return { cpuUs: u.userCPUTime + u.systemCPUTime, vcsw: u.voluntaryContextSwitches, ivcsw: u.involuntaryContextSwitches };
}

/** The usage between two usage() samples. */
export function usageSince(before) {
  const now = usage();
  return { cpuUs: now.cpuUs - before.cpuUs, vcsw: now.vcsw - before.vcsw, ivcsw: now.ivcsw - before.ivcsw };
}

/** Reports the result and exits: nothing may keep the process alive afterwards. */
export function finish(result) {
  process.stdout.write('result ' + JSON.stringify(result) + '\n', () => process.exit(0));
}

/** Parses --name value / --name=value arguments. */
export function args() {
  const out = {};
  const argv = process.argv.slice(2);
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i];
    if (!a.startsWith('--')) throw new Error(`unexpected argument ${a}`);
    const eq = a.indexOf('=');
    if (eq >= 0) out[a.slice(2, eq)] = a.slice(eq + 1);
    else out[a.slice(2)] = argv[++i];
  }
  return out;
}

/** Lets a worker die with a message the driver shows. */
export function fail(error) {
  process.stderr.write(`${error?.stack ?? error}\n`);
  process.exit(1);
}
process.on('unhandledRejection', fail);
process.on('uncaughtException', fail);
