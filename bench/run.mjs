#!/usr/bin/env node
// The benchmark driver: `npm run bench` (full, a few minutes) or
// `npm run bench -- --quick` (about a minute and a half). Every scenario runs its
// contenders in the same run, alternating, and reports medians and ratios
// against each other; targets are judged on those ratios only. It uses the
// library as built in dist/ (run `npm run compile` first); the only thing it
// compiles is the C reference program.
//
//   --quick            fewer rounds and cycles
//   --only=a,b         scenarios to run: uncontended, contended, handoff,
//                      scaling, sqlite, memory, writer-wait, sync-wait
//                      (default: all)
//   --skip=a,b         contenders to leave out: c, c-loop, ours, sync, fsne, plf
//   --chart            also write bench/chart.svg in quick mode (a full run
//                      that includes scaling always does)
//   --baseline=DIR     also run another build of this library (a checkout
//                      with its dist/ and addon built) as contender `base` in
//                      the uncontended scenario: the cost of a change, before/after
import { execFileSync } from 'node:child_process';
import { createRequire } from 'node:module';
import { mkdirSync, mkdtempSync, readFileSync, rmSync, statSync, readdirSync, writeFileSync } from 'node:fs';
import { cpus, loadavg, release, tmpdir } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';

import { Child, killAll } from './lib/child.mjs';
import { scalingChart } from './lib/chart.mjs';
import { fmt, heading, ratioText, table } from './lib/format.mjs';
import { READER_LABELS, SHARED_AT } from './scenarios/scaling.mjs';

const BENCH = dirname(fileURLToPath(import.meta.url));
const ROOT = dirname(BENCH);
const RESULTS = join(BENCH, 'results');

const SCENARIOS = ['uncontended', 'contended', 'handoff', 'scaling', 'sqlite', 'memory', 'writer-wait', 'sync-wait'];
const LABELS = { c: 'C flock (the limit)', 'c-loop': 'C flock, waited on a thread, woken through poll', ours: 'native-file-lock', sync: 'native-file-lock withFileLockSync', fsne: 'fs-native-extensions', plf: 'proper-lockfile' };

function parseArgs(argv) {
  const opts = { quick: false, only: SCENARIOS, skip: [], chart: false, baseline: undefined };
  for (const a of argv) {
    if (a === '--quick') opts.quick = true;
    else if (a === '--chart') opts.chart = true;
    else if (a.startsWith('--only=')) opts.only = a.slice(7).split(',').filter(Boolean);
    else if (a.startsWith('--skip=')) opts.skip = a.slice(7).split(',').filter(Boolean);
    else if (a.startsWith('--baseline=')) opts.baseline = baselineOf(a.slice(11));
    else if (a === '--help' || a === '-h') {
      console.log(readHeader());
      process.exit(0);
    } else throw new Error(`unknown argument '${a}' (try --help)`);
  }
  for (const s of opts.only) if (!SCENARIOS.includes(s)) throw new Error(`unknown scenario '${s}'; known: ${SCENARIOS.join(', ')}`);
  for (const c of opts.skip) if (!(c in LABELS)) throw new Error(`unknown contender '${c}'; known: ${Object.keys(LABELS).join(', ')}`);
  return opts;
}

/** A checkout of this library to measure against: its folder and a label naming its commit. */
function baselineOf(dir) {
  const folder = resolve(dir);
  let name;
  try {
    name = JSON.parse(readFileSync(join(folder, 'package.json'), 'utf8')).name;
  } catch (error) {
    throw new Error(`--baseline: cannot read ${join(folder, 'package.json')}: ${error.message}`);
  }
  if (name !== 'native-file-lock') throw new Error(`--baseline: ${folder} holds '${name}', not native-file-lock`);
  // Not a git checkout: the folder names it.
  const { commit, dirtySource } = gitState(folder);
  return { folder, label: `native-file-lock at ${commit ? `${commit}${dirtySource ? '+' : ''}` : folder}` };
}

function readHeader() {
  return 'usage: node bench/run.mjs [--quick] [--only=scenario,...] [--skip=contender,...] [--chart] [--baseline=DIR]\n' + `scenarios: ${SCENARIOS.join(', ')}\ncontenders: ${Object.keys(LABELS).join(', ')}`;
}

function newestMtime(dir) {
  let newest = 0;
  for (const entry of readdirSync(dir, { withFileTypes: true, recursive: true })) {
    if (entry.isFile()) newest = Math.max(newest, statSync(join(entry.parentPath ?? entry.path, entry.name)).mtimeMs);
  }
  return newest;
}

async function checkLibrary() {
  try {
    await import('native-file-lock');
  } catch (error) {
    throw new Error(`native-file-lock does not load from dist/ and build/ (run \`npm run compile\`): ${error.message}`);
  }
  try {
    if (newestMtime(join(ROOT, 'src')) > newestMtime(join(ROOT, 'dist'))) {
      console.warn('warning: src/ is newer than dist/; run `npm run build:ts` to measure the current source');
    }
    const addon = addonState();
    if (addon.path && newestMtime(join(ROOT, 'native')) > statSync(join(ROOT, addon.path)).mtimeMs) {
      console.warn(`warning: native/ is newer than ${addon.path}; run \`npm run build:native\` to measure the current source`);
    }
  } catch {
    // No src/ next to dist/ (an installed copy): nothing to compare.
  }
}

/**
 * Which addon binary the workers will load (node-gyp-build's choice) and its
 * mtime: a rebuild during the run (node-gyp deletes build/ first, so a stale
 * prebuilds/ copy can load meanwhile) makes the figures mix builds.
 */
function addonState() {
  try {
    const path = createRequire(import.meta.url)('node-gyp-build').resolve(ROOT);
    const st = statSync(path);
    return { path: path.slice(ROOT.length + 1), mtime: new Date(st.mtimeMs).toISOString(), size: st.size };
  } catch (error) {
    return { error: error.message };
  }
}

/** Compiles flock_cycle.c into bench/results/; undefined (C skipped) when no compiler works. */
function compileC() {
  const source = join(BENCH, 'flock_cycle.c');
  const binary = join(RESULTS, 'flock_cycle');
  try {
    if (statSync(binary).mtimeMs >= statSync(source).mtimeMs) return binary;
  } catch {
    // Not built yet.
  }
  const cc = process.env.CC || 'cc';
  try {
    execFileSync(cc, ['-O2', '-Wall', '-pthread', '-o', binary, source], { stdio: ['ignore', 'inherit', 'pipe'] });
    return binary;
  } catch (error) {
    console.warn(`warning: cannot compile ${source} with '${cc}' (${error.stderr?.toString().trim() || error.message}); the C reference is left out`);
    return undefined;
  }
}

/** The commit of a checkout (this one by default), and whether its src/ or native/ has uncommitted changes. */
function gitState(dir = ROOT) {
  try {
    const commit = execFileSync('git', ['rev-parse', '--short', 'HEAD'], { cwd: dir, stdio: ['ignore', 'pipe', 'ignore'] }).toString().trim();
    const dirty = execFileSync('git', ['status', '--porcelain', '--', 'src', 'native'], { cwd: dir, stdio: ['ignore', 'pipe', 'ignore'] }).toString().trim() !== '';
    return { commit, dirtySource: dirty };
  } catch {
    return {};
  }
}

function makeContext(opts, cBin, tmpRoot) {
  const timeoutMs = opts.quick ? 60_000 : 300_000;
  // Workers load the baseline (contender `base`) from this folder.
  const childEnv = opts.baseline ? { ...process.env, NFL_BENCH_BASELINE: opts.baseline.folder } : process.env;
  let n = 0;
  return {
    quick: opts.quick,
    label: (name) => (name === 'base' ? opts.baseline.label : (LABELS[name] ?? name)),
    contenders: (names) => names.filter((x) => !opts.skip.includes(x) && ((x !== 'c' && x !== 'c-loop') || cBin !== undefined) && (x !== 'base' || opts.baseline !== undefined)),
    rotate: (names, r) => names.map((_, i) => names[(i + r) % names.length]),
    dir: (name) => {
      const d = join(tmpRoot, `${String(++n).padStart(4, '0')}-${name}`);
      mkdirSync(d, { recursive: true });
      return d;
    },
    node: (script, argv, label, { nodeArgs = [] } = {}) => new Child(process.execPath, [...nodeArgs, join(BENCH, 'workers', script), ...argv], { label, timeoutMs, cwd: ROOT, env: childEnv }),
    c: (argv, label) => new Child(cBin, argv, { label, timeoutMs, cwd: ROOT }),
  };
}

// --- targets -----------------------------------------------------------------

function targets(results) {
  const u = results.uncontended;
  const k = results.contended;
  const h = results.handoff;
  const sc = results.scaling;
  const q = results.sqlite;
  const m = results.memory;
  const ww = results['writer-wait'];
  const sw = results['sync-wait'];
  const ok = (r) => r && !r.error;
  const rows = [];
  const add = (scenario, target, value, shown, pass) => rows.push({ scenario, target, value, shown, pass: value === undefined || Number.isNaN(value) ? null : pass });

  if (ok(u)) {
    add('uncontended', 'ours ≤ 1.3× the C cycle', u.ratios.oursOverC, ratioText(u.ratios.oursOverC), u.ratios.oursOverC <= 1.3);
    add('uncontended', 'withFileLockSync ≤ 1.0× the withFileLock cycle', u.ratios.syncOverOurs, ratioText(u.ratios.syncOverOurs), u.ratios.syncOverOurs <= 1);
    add('uncontended', 'fs-native-extensions/ours ≥ 10×', u.ratios.fsneOverOurs, ratioText(u.ratios.fsneOverOurs), u.ratios.fsneOverOurs >= 10);
    add('uncontended', 'proper-lockfile/ours ≥ 50×', u.ratios.plfOverOurs, ratioText(u.ratios.plfOverOurs), u.ratios.plfOverOurs >= 50);
  }
  if (ok(k)) {
    const s = k.summary.ours;
    add('contended', 'throughput ours/fs-native-extensions ≥ 1.0×', k.ratios.throughputOursOverFsne, ratioText(k.ratios.throughputOursOverFsne), k.ratios.throughputOursOverFsne >= 1);
    add('contended', 'max wait ours/fs-native-extensions ≤ 2×', k.ratios.maxWaitOursOverFsne, ratioText(k.ratios.maxWaitOursOverFsne), k.ratios.maxWaitOursOverFsne <= 2);
    add('contended', 'ours slowest/fastest finish ≤ 1.5×', s?.slowestOverFastest, ratioText(s?.slowestOverFastest), s?.slowestOverFastest <= 1.5);
  }
  if (ok(k) || ok(sc)) {
    let lost = 0;
    const where = [];
    if (ok(k)) for (const [n, s] of Object.entries(k.summary)) if (s.lost !== 0) (lost += s.lost), where.push(`${n} contended`);
    if (ok(sc)) for (const [n, s] of Object.entries(sc.series)) for (const pt of s) if (pt.lost !== 0) (lost += pt.lost), where.push(`${n}×${pt.procs}`);
    add('contended', '0 lost updates (every contender and run)', lost, `${lost}${where.length ? ` (${where.join(', ')})` : ''}`, lost === 0);
  }
  if (ok(h)) {
    add('handoff', 'p50 ours ≤ 2× C', h.ratios.p50OursOverC, ratioText(h.ratios.p50OursOverC), h.ratios.p50OursOverC <= 2);
    // What the library adds over the hop every event-loop waiter pays.
    add('handoff', 'p50 ours ≤ 1.2× C woken through poll', h.ratios.p50OursOverCLoop, ratioText(h.ratios.p50OursOverCLoop), h.ratios.p50OursOverCLoop <= 1.2);
    // A synchronous waiter pays no hop: the lock wakes the blocked thread itself.
    if (Number.isFinite(h.ratios.p50SyncOverC)) add('handoff', 'p50 withFileLockSync ≤ 2× C', h.ratios.p50SyncOverC, ratioText(h.ratios.p50SyncOverC), h.ratios.p50SyncOverC <= 2);
  }
  const shared = ok(sc) ? sc.series.shared?.find((pt) => pt.procs === SHARED_AT) : undefined;
  if (shared) {
    // The same work with no lock shows what the machine allowed in that run.
    const ceiling = sc.series.unlocked?.find((pt) => pt.procs === SHARED_AT)?.overOne;
    add('scaling', `shared: ${SHARED_AT} reader processes ≥ 1.6× one reader's throughput`, shared.overOne, `${ratioText(shared.overOne)} (no lock: ${ratioText(ceiling)})`, shared.overOne >= 1.6);
  }
  if (ok(q)) {
    const s = q.summary;
    add('sqlite', 'withFileLock mode: 0 failed transactions', s.ours?.failed, String(s.ours?.failed ?? '—'), s.ours?.failed === 0);
    add('sqlite', 'ours ≥ 0.9× busy_timeout + IMMEDIATE', q.ratios.oursOverImmediate, ratioText(q.ratios.oursOverImmediate), q.ratios.oursOverImmediate >= 0.9);
    if (Number.isFinite(q.ratios.syncOverImmediate)) add('sqlite', 'withFileLockSync ≥ 0.9× busy_timeout + IMMEDIATE', q.ratios.syncOverImmediate, ratioText(q.ratios.syncOverImmediate), q.ratios.syncOverImmediate >= 0.9);
    if (s.ours) {
      add('sqlite', 'ours slowest/fastest finish ≤ 1.5×', s.ours.slowestOverFastest, ratioText(s.ours.slowestOverFastest), s.ours.slowestOverFastest <= 1.5);
      add('sqlite', 'ours context switches per transaction ≤ 0.5', s.ours.switchesPerTx, fmt(s.ours.switchesPerTx), s.ours.switchesPerTx <= 0.5);
    }
    add('sqlite', 'ours ≥ 1.5× fs-native-extensions', q.ratios.oursOverFsne, ratioText(q.ratios.oursOverFsne), q.ratios.oursOverFsne >= 1.5);
    const bad = Object.entries(s).filter(([, x]) => x.integrity !== 'ok' || !x.rowsMatch).map(([mode]) => mode);
    add('sqlite', 'integrity_check ok and rows consistent (all modes)', bad.length, bad.length ? `bad: ${bad.join(', ')}` : 'ok', bad.length === 0);
  }
  if (ok(m) && m.results.ours) {
    const r = m.results.ours;
    add('memory', `RSS growth < 5% over ${r.cycles} cycles`, r.rssGrowthPct, `${fmt(r.rssGrowthPct, 2)}%`, r.rssGrowthPct < 5);
    add('memory', 'descriptor count constant over the cycles', r.fdDelta, `${r.before.fds} → ${r.after.fds}`, r.fdDelta === 0);
    add('memory', 'lock file descriptors all closed when idle (≤ 5 s)', r.lockFdsIdle, `${r.idle.lockFds} open after ${(r.idleWaitedMs / 1000).toFixed(1)} s`, r.lockFdsIdle === 0);
  }
  if (ok(ww)) {
    for (const s of ww.summary.filter((x) => x.readers === 'ours')) {
      add('writer-wait', `writer max wait ≤ 20 reader holds (${s.procs} reader process${s.procs > 1 ? 'es' : ''} of ours)`, s.maxHolds, `${fmt(s.maxHolds, 1)} holds (${fmt(s.maxMs, 1)} ms)`, s.maxHolds <= 20 && s.starved === 0);
    }
  }
  if (ok(sw)) {
    const sync = Object.entries(sw.summary).filter(([api]) => api !== 'withFileLock');
    const worst = Math.max(...sync.map(([, s]) => s.maxCpuPct));
    add('sync-wait', `blocked sync waiters (${sync.map(([api]) => api).join(', ')}) ≤ 5% of a CPU`, worst, `${fmt(worst, 2)}% (worst wait)`, worst <= 5);
  }
  return rows;
}

// --- main --------------------------------------------------------------------

async function main() {
  const opts = parseArgs(process.argv.slice(2));
  const started = Date.now();
  mkdirSync(RESULTS, { recursive: true });
  await checkLibrary();
  const cBin = opts.skip.includes('c') ? undefined : compileC();
  const tmpRoot = mkdtempSync(join(tmpdir(), 'nfl-bench-'));
  const cleanup = () => {
    killAll();
    rmSync(tmpRoot, { recursive: true, force: true });
  };
  process.on('SIGINT', () => {
    cleanup();
    process.exit(130);
  });
  process.on('SIGTERM', () => {
    cleanup();
    process.exit(143);
  });

  const env = { node: process.version, platform: `${process.platform}-${process.arch}`, kernel: release(), cpus: cpus().length, cpu: cpus()[0]?.model, tmpdir: tmpdir(), loadBefore: loadavg()[0], addon: addonState(), ...gitState() };
  console.log(`native-file-lock benchmark (${opts.quick ? 'quick' : 'full'}) — node ${env.node}, ${env.platform}, ${env.cpus} CPUs (${env.cpu}), kernel ${env.kernel}, commit ${env.commit ?? '?'}${env.dirtySource ? ' + uncommitted src/native changes' : ''}`);
  console.log(`addon: ${env.addon.path ?? env.addon.error} (${env.addon.mtime ?? '?'})`);
  if (env.loadBefore > 0.5) console.log(`note: load average ${env.loadBefore.toFixed(2)} before the run; other work on this machine adds noise to every figure.`);
  if (env.cpus < 4) console.log(`note: ${env.cpus} CPUs; with 4+ processes the contenders also compete for CPU, which dominates waits.`);

  const ctx = makeContext(opts, cBin, tmpRoot);
  const results = {};
  let failures = 0;
  try {
    for (const name of SCENARIOS) {
      if (!opts.only.includes(name)) continue;
      const scenario = await import(`./scenarios/${name}.mjs`);
      const t0 = Date.now();
      try {
        results[name] = await scenario.run(ctx);
        results[name].seconds = (Date.now() - t0) / 1000;
      } catch (error) {
        failures++;
        killAll();
        results[name] = { error: String(error?.stack ?? error) };
        heading(`${scenario.title}: FAILED`);
        console.log(String(error?.message ?? error).replace(/^/gm, '  '));
      }
    }
  } finally {
    cleanup();
  }

  const rows = targets(results);
  heading('Targets (ratios from this run)');
  table(
    ['scenario', 'target', 'measured', 'result'],
    rows.map((r) => [r.scenario, r.target, r.shown, r.pass === null ? 'n/a' : r.pass ? 'PASS' : 'FAIL']),
    { left: [0, 1, 2, 3] },
  );
  const passed = rows.filter((r) => r.pass === true).length;
  console.log(`  ${passed}/${rows.length} targets met`);

  env.loadAfter = loadavg()[0];
  env.addonAfter = addonState();
  if (JSON.stringify(env.addonAfter) !== JSON.stringify(env.addon)) {
    console.log(`\nWARNING: the addon changed during the run (now ${env.addonAfter.path ?? env.addonAfter.error}, ${env.addonAfter.mtime ?? '?'}): the figures mix builds; run again.`);
  }
  const output = { date: new Date().toISOString(), mode: opts.quick ? 'quick' : 'full', seconds: (Date.now() - started) / 1000, env, results, targets: rows };
  const json = JSON.stringify(output, null, 1) + '\n';
  // latest.json for tools; a dated copy so that runs can be compared later.
  const dated = join(RESULTS, `${output.mode}-${output.date.replace(/[:.]/g, '-')}.json`);
  writeFileSync(join(RESULTS, 'latest.json'), json);
  writeFileSync(dated, json);
  const written = [join(RESULTS, 'latest.json'), dated];
  if (results.scaling && !results.scaling.error) {
    const note = `${opts.quick ? 'quick run' : 'full run'}, ${output.date.slice(0, 10)}, node ${env.node}, ${env.cpus} CPUs, ${env.platform}; medians of ${results.scaling.rounds} round(s) per point`;
    const svg = scalingChart(results.scaling, { ...LABELS, ...READER_LABELS }, note);
    writeFileSync(join(RESULTS, 'chart.svg'), svg);
    written.push(join(RESULTS, 'chart.svg'));
    if (!opts.quick || opts.chart) {
      writeFileSync(join(BENCH, 'chart.svg'), svg);
      written.push(join(BENCH, 'chart.svg'));
    }
  }
  console.log(`\nwrote ${written.map((p) => p.slice(ROOT.length + 1)).join(', ')} in ${output.seconds.toFixed(1)} s`);
  if (failures > 0) {
    console.log(`${failures} scenario(s) failed; see above`);
    process.exitCode = 1;
  }
}

main().catch((error) => {
  killAll();
  console.error(`bench: ${error?.message ?? error}`);
  process.exit(1);
});
