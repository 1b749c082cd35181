// Several processes fill one cache directory: each key is computed once, the others read it.
//
//   node examples/cache-dir/main.mjs [--no-lock] [--processes 4] [--keys 8] [--dir folder]
//
// With --no-lock, processes that miss the same key at the same time all compute it.
import { fork } from 'node:child_process';
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { parseArgs } from 'node:util';

const { values: options } = parseArgs({
  options: {
    'no-lock': { type: 'boolean', default: false },
    processes: { type: 'string', default: '4' },
    keys: { type: 'string', default: '8' },
    dir: { type: 'string' },
  },
});
const dir = options.dir ?? mkdtempSync(join(tmpdir(), 'cache-dir-'));
const mode = options['no-lock'] ? 'no-lock' : 'lock';
const keys = Number(options.keys);

const pool = Array.from({ length: Number(options.processes) }, () =>
  fork(new URL('./worker.mjs', import.meta.url), [dir, String(keys), mode]),
);
const message = (child) =>
  new Promise((resolve, reject) => {
    child.once('message', resolve);
    child.once('exit', (code) => reject(new Error(`process ${child.pid} exited with code ${code}`)));
  });

await Promise.all(pool.map(message));
const answers = Promise.all(pool.map(message));
for (const child of pool) child.send('go');
const results = (await answers).flat();

// How often each key was computed, and whether every process got the computed value.
const computed = new Map(); // key → values computed for it
for (const r of results) if (r.computed) computed.set(r.key, [...(computed.get(r.key) ?? []), r.value]);
const computations = results.filter((r) => r.computed).length;
const computedOnce = computed.size === keys && [...computed.values()].every((values) => values.length === 1);
const agreeing = results.filter((r) => computed.get(r.key)?.includes(r.value)).length;

console.log(`cache: ${dir} (${mode})`);
console.log(`${pool.length} processes asked for ${keys} keys: ${computations} computations, ${results.length - computations} reads`);
console.log(`each key computed once: ${computedOnce ? 'yes' : 'no'}, answers matching the computed value: ${agreeing}/${results.length}`);

// Duplicated work is what --no-lock demonstrates; with the lock it is a failure.
process.exitCode = (computedOnce && agreeing === results.length) || mode === 'no-lock' ? 0 : 1;
