// Several processes use one cache directory while they clear it now and then: with a shared lock
// on the directory for every get and an exclusive one for clear(), no error and no key computed
// twice at once.
//
//   node examples/cache-clear/main.mjs [--no-dir-lock] [--processes 4] [--operations 1000]
//     [--keys 8] [--clear-every 50] [--compute-ms 5] [--dir folder]
//
// With --no-dir-lock (the per-key lock stays), clear() moves the directory while gets are inside it.
import { fork } from 'node:child_process';
import { mkdirSync, mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { parseArgs } from 'node:util';

const { values: options } = parseArgs({
  options: {
    'no-dir-lock': { type: 'boolean', default: false },
    processes: { type: 'string', default: '4' },
    operations: { type: 'string', default: '1000' },
    keys: { type: 'string', default: '8' },
    'clear-every': { type: 'string', default: '50' },
    'compute-ms': { type: 'string', default: '5' },
    dir: { type: 'string' },
  },
});
const folder = options.dir ?? mkdtempSync(join(tmpdir(), 'cache-clear-'));
const mode = options['no-dir-lock'] ? 'no-dir-lock' : 'dir-lock';
const processes = Number(options.processes);
// The cache, and beside it the markers of computations in progress.
mkdirSync(join(folder, 'cache'), { recursive: true });
mkdirSync(join(folder, 'computing'), { recursive: true });

const args = (index) => [folder, mode, options.operations, options.keys, options['clear-every'], options['compute-ms'], String(index), String(processes)];
const pool = Array.from({ length: processes }, (_, index) => fork(new URL('./worker.mjs', import.meta.url), args(index)));
const message = (child) =>
  new Promise((resolve, reject) => {
    child.once('message', resolve);
    child.once('exit', (code) => reject(new Error(`process ${child.pid} exited with code ${code}`)));
  });

await Promise.all(pool.map(message));
const answers = Promise.all(pool.map(message));
const started = performance.now();
for (const child of pool) child.send('go');
const results = await answers;
const seconds = (performance.now() - started) / 1000;

const sum = (name) => results.reduce((total, r) => total + r[name], 0);
const errors = new Map(); // code → { count, first message }
for (const r of results) {
  for (const [code, { count, first }] of Object.entries(r.errors)) {
    errors.set(code, { count: (errors.get(code)?.count ?? 0) + count, first: errors.get(code)?.first ?? first });
  }
}
const errorCount = [...errors.values()].reduce((total, e) => total + e.count, 0);
const byCode = [...errors].map(([code, e]) => `${code} ${e.count}`).join(', ');
const duplicates = sum('duplicates');

console.log(`cache: ${join(folder, 'cache')} (${mode})`);
console.log(`${processes} processes: ${sum('operations')} operations, ${sum('clears')} clears, ${sum('computations')} computations, ${sum('hits')} hits in ${seconds.toFixed(1)} s`);
console.log(`errors: ${errorCount}${byCode ? ` (${byCode})` : ''}, duplicate computations: ${duplicates}`);
for (const [code, e] of errors) console.log(`  first ${code}: ${e.first}`);

// Errors and duplicates are what --no-dir-lock demonstrates; with the lock they are failures.
process.exitCode = (errorCount === 0 && duplicates === 0) || mode === 'no-dir-lock' ? 0 : 1;
