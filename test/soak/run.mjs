#!/usr/bin/env node
// Soak with faults: N processes (worker.mjs) hammer one lock with
// withFileLock, tryLock, timeouts and aborts while this driver SIGKILLs
// random holders and waiters and starts replacements. Afterwards it proves
// from the workers' journals that no two critical sections overlapped and
// that the shared counter equals the number of committed critical sections,
// then that the lock is free and no surviving worker leaked a descriptor.
//
//   node test/soak/run.mjs [--duration 120] [--processes 16] [--lock-kind flock|fcntl|nfs|nfs-tickets]
//                          [--min-kills N] [--min-holder-kills N] [--min-sections N] [--max-duration 600] [--keep]
//
// --duration takes seconds (or 90s, 5m). Faults go on for at least that long
// and until the --min-* counts are reached (a slow machine, a sanitizer
// build, simply takes longer), but never past --max-duration; a run that
// stops there short of a count fails with a problem saying which. --lock-kind fcntl runs the workers
// with NATIVE_FILE_LOCK_TEST_LOCK_KIND=fcntl: process-owned POSIX record
// locks. --lock-kind nfs runs them in the NFS model (test/nfs-model/: flock
// as a whole-file OFD record lock, tickets off as the addon would detect on
// NFS); nfs-tickets the same with queue tickets forced on. Prints one summary line and a line
// 'SOAK_RESULT <json>'; exits 1 if any invariant failed.
import { fork, spawnSync } from 'node:child_process';
import { mkdtempSync, readdirSync, readFileSync, readlinkSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';

import { buildShim, nfsEnv, peerEnv } from '../nfs-model/build.mjs';

const here = dirname(fileURLToPath(import.meta.url));
const packageRoot = join(here, '..', '..');
const MARKER_BYTES = 64;

const LOCK_KINDS = ['flock', 'fcntl', 'nfs', 'nfs-tickets'];

function parseArgs(argv) {
  const options = { duration: 120, processes: 16, lockKind: 'flock', keep: false, minKills: 0, minHolderKills: 0, minSections: 0, maxDuration: undefined };
  for (let i = 0; i < argv.length; i++) {
    const [flag, inline] = argv[i].split('=', 2);
    const value = () => inline ?? argv[++i];
    if (flag === '--duration') options.duration = parseDuration(value());
    else if (flag === '--processes') options.processes = Number(value());
    else if (flag === '--lock-kind') options.lockKind = value();
    else if (flag === '--min-kills') options.minKills = count(value(), flag);
    else if (flag === '--min-holder-kills') options.minHolderKills = count(value(), flag);
    else if (flag === '--min-sections') options.minSections = count(value(), flag);
    else if (flag === '--max-duration') options.maxDuration = parseDuration(value());
    else if (flag === '--keep') options.keep = true;
    else
      throw new Error(
        `unknown argument ${argv[i]}; usage: run.mjs [--duration 120|90s|5m] [--processes 16] [--lock-kind ${LOCK_KINDS.join('|')}] ` +
          '[--min-kills N] [--min-holder-kills N] [--min-sections N] [--max-duration 600] [--keep]',
      );
  }
  if (!LOCK_KINDS.includes(options.lockKind)) throw new Error(`--lock-kind must be one of ${LOCK_KINDS.join(', ')}; got ${options.lockKind}`);
  if (!(options.processes >= 2)) throw new Error('--processes must be at least 2');
  return options;
}

function count(text, flag) {
  const n = Number(text);
  if (!Number.isInteger(n) || n < 0) throw new Error(`${flag} must be a whole number, got ${text}`);
  return n;
}

function parseDuration(text) {
  const match = /^(\d+(?:\.\d+)?)(s|m)?$/.exec(String(text));
  if (!match) throw new Error(`--duration must be seconds, like 120, 90s or 5m; got ${text}`);
  return Number(match[1]) * (match[2] === 'm' ? 60 : 1);
}

const sleep = (ms) => new Promise((resolve) => setTimeout(resolve, ms));
const rand = (n) => Math.floor(Math.random() * n);

function descriptors(pid) {
  const out = new Map();
  for (const fd of readdirSync(`/proc/${pid}/fd`)) {
    try {
      out.set(fd, readlinkSync(`/proc/${pid}/fd/${fd}`));
    } catch {
      // Closed between readdir and readlink.
    }
  }
  return out;
}

// Whether another process could take the lock file right now, with the kind
// of lock the library uses: flock(1) (under the shim in the NFS model), or a
// Python record lock for fcntl.
function peerSeesFree(lockPath, lockKind, shim) {
  const { LD_PRELOAD: _preload, ...env } = process.env;
  if (lockKind !== 'fcntl') return spawnSync('flock', ['-n', lockPath, 'true'], { env: shim ? peerEnv(shim) : env }).status === 0;
  const peer = join(here, '..', 'fixtures', 'fcntl-peer.py');
  return spawnSync('python3', [peer, lockPath, 'lockf', 'probe'], { input: 'probe\n', encoding: 'utf8', env }).stdout.trim() === 'free';
}

const PEER_NAME = { flock: 'flock(1)', fcntl: 'Python fcntl.lockf', nfs: 'flock(1) (NFS model)', 'nfs-tickets': 'flock(1) (NFS model)' };

export async function runSoak({
  duration,
  processes,
  lockKind = 'flock',
  keep = false,
  minKills = 0,
  minHolderKills = 0,
  minSections = 0,
  maxDuration = Math.max(duration * 10, 600),
  log = console.log,
}) {
  const shim = lockKind.startsWith('nfs') ? buildShim() : undefined;
  const env =
    lockKind === 'fcntl'
      ? { ...process.env, NATIVE_FILE_LOCK_TEST_LOCK_KIND: 'fcntl' }
      : shim
        ? nfsEnv(shim, { tickets: lockKind === 'nfs-tickets' ? 'on' : 'detect' })
        : process.env;
  const dir = mkdtempSync(join(tmpdir(), 'nfl-soak-'));
  writeFileSync(join(dir, 'marker'), 'free'.padEnd(MARKER_BYTES, ' '));
  writeFileSync(join(dir, 'counter'), '0'.padEnd(32, ' '));
  const lockPath = join(dir, 'data.lock');

  /** instance id -> { id, child, pid, ready, exited, killedAt, baseline, exit } */
  const instances = new Map();
  let nextId = 0;
  let stopping = false;
  let selfExits = 0;
  let gaveUp = false;
  const problems = [];

  function spawnWorker() {
    const id = nextId++;
    const child = fork(join(here, 'worker.mjs'), [dir, String(id)], { stdio: ['ignore', 'inherit', 'pipe', 'ipc'], env });
    const inst = { id, child, pid: child.pid, ready: false, killedAt: undefined, baseline: undefined, exit: undefined, stderr: '' };
    child.stderr.setEncoding('utf8').on('data', (chunk) => (inst.stderr += chunk));
    inst.exited = new Promise((resolve) => child.once('exit', (code, signal) => resolve((inst.exit = { code, signal }))));
    // Settles when the worker is ready or has exited, whichever comes first.
    inst.readyPromise = new Promise((resolve) => {
      inst.exited.then(resolve);
      child.on('message', (message) => {
        if (message?.type === 'ready') {
          // The baseline is taken before the first lock: every descriptor
          // the library opens later must be closed again by the end.
          inst.baseline = descriptors(inst.pid);
          inst.ready = true;
          child.send('go');
          resolve();
        } else if (message?.type === 'paused') {
          inst.paused = message;
          inst.onPaused?.();
        }
      });
    });
    inst.exited.then(() => {
      if (inst.killedAt === undefined && !stopping) {
        problems.push(`worker ${id} (pid ${inst.pid}) exited on its own: ${JSON.stringify(inst.exit)} ${inst.stderr}`);
        // Workers that keep dying (a broken build) would be replaced forever.
        if (++selfExits === processes && !gaveUp) {
          gaveUp = true;
          problems.push(`stopped starting workers: ${selfExits} exited on their own`);
        }
      }
      if (!stopping && !gaveUp) spawnWorker();
    });
    instances.set(id, inst);
    return inst;
  }

  const started = Date.now();
  for (let i = 0; i < processes; i++) spawnWorker();
  await Promise.all([...instances.values()].map((inst) => inst.readyPromise));

  // --- faults -------------------------------------------------------------
  let kills = 0;
  let holderKills = 0;
  const deadline = started + duration * 1000;
  const hardDeadline = started + Math.max(duration, maxDuration) * 1000;
  const sections = () => Number(readFileSync(join(dir, 'counter'), 'latin1').trim()) || 0;
  // What the run must have exercised, by count: a rate would depend on the machine.
  const shortOf = () => [
    ...(kills < minKills ? [`${kills} of ${minKills} kills`] : []),
    ...(holderKills < minHolderKills ? [`${holderKills} of ${minHolderKills} kills inside the critical section`] : []),
    ...(sections() < minSections ? [`${sections()} of ${minSections} critical sections`] : []),
  ];
  while (!gaveUp && Date.now() < hardDeadline && (Date.now() < deadline || shortOf().length > 0)) {
    await sleep(40 + rand(160));
    const live = [...instances.values()].filter((inst) => inst.ready && inst.exit === undefined && inst.killedAt === undefined);
    if (live.length === 0) continue;
    // Half the kills aim at whoever is inside the critical section now.
    const marker = readFileSync(join(dir, 'marker'), 'latin1').trim();
    const holderId = marker === 'free' ? undefined : Number(marker.split(':')[0]);
    let victim = live[rand(live.length)];
    if (rand(2) === 0 && holderId !== undefined) victim = live.find((inst) => inst.id === holderId) ?? victim;
    if (victim.id === holderId) holderKills++;
    victim.killedAt = Date.now();
    victim.child.kill('SIGKILL');
    kills++;
  }

  const short = shortOf();
  if (short.length > 0) problems.push(`stopped at --max-duration ${maxDuration} s short of ${short.join(', ')}`);

  // --- quiesce --------------------------------------------------------------
  // Every victim's replacement is started before the books close, so that
  // spawned = processes + kills.
  await Promise.all([...instances.values()].filter((inst) => inst.killedAt !== undefined).map((inst) => inst.exited));
  stopping = true;
  await Promise.all([...instances.values()].map((inst) => inst.readyPromise));
  // Workers still running and ready; one that exited on its own is a problem already.
  const running = [...instances.values()].filter((inst) => inst.killedAt === undefined && inst.ready && inst.exit === undefined);
  await Promise.all(
    running.map((inst) =>
      Promise.race([
        inst.exited,
        new Promise((resolve) => {
          inst.onPaused = resolve;
          inst.child.send('pause');
        }),
      ]),
    ),
  );
  const survivors = running.filter((inst) => inst.exit === undefined);
  for (const inst of running) if (inst.exit !== undefined) problems.push(`worker ${inst.id} (pid ${inst.pid}) exited while pausing: ${JSON.stringify(inst.exit)} ${inst.stderr}`);

  // Descriptors of every surviving worker against its own start.
  let leaked = 0;
  for (const inst of survivors) {
    const now = descriptors(inst.pid);
    const extra = [...now].filter(([fd, target]) => inst.baseline.get(fd) !== target);
    // The worker's own files (marker, counter, journal) must stay open; the
    // runtime may close its own start-up reads (Node 24: /sys/devices/system/cpu/online).
    const missing = [...inst.baseline].filter(([fd, target]) => !now.has(fd) && target.startsWith(dir));
    // The readdir of /proc/<pid>/fd is ours, not the worker's, so it never shows here.
    if (extra.length > 0 || missing.length > 0 || inst.paused.lockFds !== 0) {
      leaked += extra.length;
      problems.push(`worker ${inst.id} descriptors changed: extra ${JSON.stringify(extra)}, missing ${JSON.stringify(missing)}, lock fds ${inst.paused.lockFds}`);
    }
  }

  // The lock must be free for a brand-new process and for flock(1).
  const fresh = spawnSync(
    process.execPath,
    [
      '--input-type=module',
      '-e',
      `const { tryLock } = await import(${JSON.stringify(pathToFileURL(join(packageRoot, 'dist/esm/index.js')).href)});
       const held = await tryLock(${JSON.stringify(join(dir, 'data'))});
       if (held === undefined) { console.log('busy'); process.exit(3); }
       await held.release(); console.log('free');`,
    ],
    { encoding: 'utf8', env },
  );
  const freshFree = fresh.status === 0 && fresh.stdout.trim() === 'free';
  if (!freshFree) problems.push(`a fresh process could not take the lock: ${fresh.status} ${fresh.stdout} ${fresh.stderr}`);
  const peerFree = peerSeesFree(lockPath, lockKind, shim);
  if (!peerFree) problems.push(`a ${PEER_NAME[lockKind]} peer could not take ${lockPath}: the lock is still held`);

  await Promise.all(
    survivors.map(async (inst) => {
      inst.child.send('stop');
      const exit = await inst.exited;
      if (exit.code !== 0) problems.push(`worker ${inst.id} did not exit cleanly: ${JSON.stringify(exit)} ${inst.stderr}`);
    }),
  );
  const elapsed = (Date.now() - started) / 1000;

  // --- the books ------------------------------------------------------------
  const audit = auditJournals(dir, instances, readFileSync(join(dir, 'counter'), 'latin1').trim());
  problems.push(...audit.problems);

  const result = {
    lockKind,
    duration,
    elapsed,
    concurrent: processes,
    spawned: instances.size,
    kills,
    holderKills,
    criticalSections: audit.committed,
    logged: audit.logged,
    reconciled: audit.reconciled,
    entered: audit.entered,
    sharedSections: audit.shared,
    counter: audit.counter,
    overlaps: audit.overlaps,
    lost: audit.lost,
    timeouts: audit.timeouts,
    aborts: audit.aborts,
    busy: audit.busy,
    errors: audit.errors,
    leakedDescriptors: leaked,
    lockFreeAfter: freshFree && peerFree,
    problems,
  };
  log(
    `soak (${lockKind}): ${processes} processes at a time, ${result.spawned} spawned, ${kills} kills (${holderKills} inside the critical section), ` +
      `${result.criticalSections} critical sections (${result.logged} logged + ${result.reconciled} reconciled after a kill), ${result.sharedSections} shared sections, ` +
      `${result.timeouts} timeouts, ${result.aborts} aborts, ${result.busy} busy tryLocks, ` +
      `overlaps ${result.overlaps}, lost ${result.lost}, errors ${result.errors}, leaked descriptors ${leaked}, ` +
      `lock free after: ${result.lockFreeAfter ? 'yes' : 'NO'} (${elapsed.toFixed(1)} s)`,
  );
  for (const problem of problems.slice(0, 20)) log(`  problem: ${problem}`);
  if (keep) log(`  journals kept in ${dir}`);
  else rmSync(dir, { recursive: true, force: true });
  return result;
}

/**
 * Reconciles the journals with the counter. Every committed critical section
 * wrote the next counter value, so the values 1..counter must each be
 * accounted for exactly once: by a C line, or by an I line without a C line
 * from a process killed between its counter write and its journal write
 * (then nobody else committed that value, because the next holder read it).
 */
export function auditJournals(dir, instances, counterText) {
  const problems = [];
  const counter = Number(counterText);
  const byInstance = new Map();
  for (const name of readdirSync(dir)) {
    const match = /^journal-(\d+)\.log$/.exec(name);
    if (!match) continue;
    const text = readFileSync(join(dir, name), 'latin1');
    // A kill can cut the last line short; it carries no complete fact.
    const lines = text.split('\n');
    lines.pop();
    byInstance.set(Number(match[1]), lines);
  }

  let entered = 0;
  let overlaps = 0;
  let timeouts = 0;
  let aborts = 0;
  let busy = 0;
  let errors = 0;
  const commits = new Map(); // value -> count
  const dangling = []; // { instance, seq, value }
  const lastEntered = new Map(); // instance -> seq
  const entries = []; // { instance, seq, at, seen }
  const sharedEntries = []; // the same, for shared sections

  for (const [id, lines] of byInstance) {
    const intents = new Map();
    for (const line of lines) {
      const [tag, ...rest] = line.split(' ');
      if (tag === 'E') {
        const [seq, at, , seen] = rest;
        entries.push({ instance: id, seq: Number(seq), at: Number(at), seen });
        lastEntered.set(id, Number(seq));
        entered++;
      } else if (tag === 'S') {
        const [seq, at, , seen] = rest;
        sharedEntries.push({ instance: id, seq: Number(seq), at: Number(at), seen });
      } else if (tag === 'I') {
        intents.set(Number(rest[0]), Number(rest[1]));
      } else if (tag === 'C') {
        const [seq, value] = rest.map(Number);
        if (intents.get(seq) !== value) problems.push(`instance ${id} committed ${value} in section ${seq} without the matching intent`);
        intents.delete(seq);
        commits.set(value, (commits.get(value) ?? 0) + 1);
      } else if (tag === 'X') {
        overlaps++;
        problems.push(`instance ${id}: another holder wrote the marker during section ${rest[0]} (${rest.slice(1).join(' ')})`);
      } else if (tag === 'T') timeouts++;
      else if (tag === 'A') aborts++;
      else if (tag === 'B') busy++;
      else if (tag === 'ERR') {
        errors++;
        problems.push(`instance ${id} error: ${rest.join(' ')}`);
      } else problems.push(`instance ${id}: unreadable journal line ${JSON.stringify(line)}`);
    }
    for (const [seq, value] of intents) {
      const inst = instances.get(id);
      if (inst?.killedAt === undefined || seq !== lastEntered.get(id)) {
        problems.push(`instance ${id} left section ${seq} between intent and commit without being killed there`);
        overlaps++;
      } else dangling.push({ instance: id, seq, value });
    }
  }

  // Whoever entered after a killed holder finds its marker still there. That
  // is only legitimate if the holder was killed before the entry and never
  // entered again; a live holder's marker means two holders at once.
  // A stale marker is seen again only if the one who saw it first was itself
  // killed before it could write its own.
  const lastSighting = new Map();
  const killedOnLastEntry = (instance, seq, at) => {
    const inst = instances.get(instance);
    return inst?.killedAt !== undefined && inst.killedAt <= at && lastEntered.get(instance) === seq;
  };
  entries.sort((a, b) => a.at - b.at);
  for (const entry of entries) {
    if (entry.seen === 'free') continue;
    const [holder, holderSeq] = entry.seen.split(':').map(Number);
    const previous = lastSighting.get(entry.seen);
    const ok = killedOnLastEntry(holder, holderSeq, entry.at) && (previous === undefined || killedOnLastEntry(previous.instance, previous.seq, entry.at));
    lastSighting.set(entry.seen, entry);
    if (!ok) {
      overlaps++;
      problems.push(
        `instance ${entry.instance} entered section ${entry.seq} at ${entry.at} while '${entry.seen}' was inside ` +
          `(killed at ${instances.get(holder)?.killedAt ?? 'never'}${previous ? `; seen before by ${previous.instance}:${previous.seq}` : ''})`,
      );
    }
  }

  // A shared holder may see the marker of a writer killed inside before it
  // entered (shared holders never clear it); any other marker is a writer
  // inside while it held the lock shared.
  for (const entry of sharedEntries) {
    if (entry.seen === 'free') continue;
    const [holder, holderSeq] = entry.seen.split(':').map(Number);
    if (killedOnLastEntry(holder, holderSeq, entry.at)) continue;
    overlaps++;
    problems.push(`instance ${entry.instance} entered shared section ${entry.seq} at ${entry.at} while '${entry.seen}' was inside`);
  }

  let logged = 0;
  let lost = 0;
  for (const [value, count] of commits) {
    logged += count;
    if (count > 1) {
      overlaps += count - 1;
      problems.push(`counter value ${value} was committed ${count} times`);
    }
    if (value > counter) {
      lost++;
      problems.push(`committed value ${value} is above the final counter ${counter}: an increment was overwritten`);
    }
  }
  let reconciled = 0;
  const danglingByValue = new Map(dangling.map((d) => [d.value, d]));
  for (let value = 1; value <= counter; value++) {
    if (commits.has(value)) continue;
    if (danglingByValue.has(value)) reconciled++;
    else {
      lost++;
      problems.push(`counter value ${value} was written by no journaled critical section`);
    }
  }
  const committed = [...commits.keys()].filter((v) => v <= counter).length + reconciled;
  if (committed !== counter) problems.push(`counter ${counter} != committed critical sections ${committed}`);
  if (!Number.isInteger(counter)) problems.push(`counter file is unreadable: ${JSON.stringify(counterText)}`);
  return { counter, entered, shared: sharedEntries.length, committed, logged, reconciled, overlaps, lost, timeouts, aborts, busy, errors, problems };
}

if (process.argv[1] && fileURLToPath(import.meta.url) === process.argv[1]) {
  const options = parseArgs(process.argv.slice(2));
  const result = await runSoak(options);
  console.log(`SOAK_RESULT ${JSON.stringify(result)}`);
  const ok = result.problems.length === 0 && result.overlaps === 0 && result.lost === 0 && result.errors === 0 && result.lockFreeAfter;
  process.exitCode = ok ? 0 : 1;
}
