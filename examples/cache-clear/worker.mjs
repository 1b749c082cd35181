// One process using a cache directory that any process may clear. Started by main.mjs with:
// <folder> <dir-lock|no-dir-lock> <operations> <keys> <clear every> <compute ms> <index> <processes>.
import { createHash } from 'node:crypto';
import { mkdir, readFile, rename, rm, unlink, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { withFileLock } from 'native-file-lock';
import writeFileAtomic from 'write-file-atomic';

const [folder, mode, operations, keys, clearEvery, computeMs, index, processes] = process.argv.slice(2);
const dir = join(folder, 'cache');
const computing = join(folder, 'computing');
let duplicates = 0;

// The expensive computation the cache saves. A marker file per key, created with 'wx' outside the
// cache, finds computations of one key that overlap: the per-key lock is meant to make them impossible.
async function compute(key) {
  const marker = join(computing, key);
  let alone = true;
  await writeFile(marker, String(process.pid), { flag: 'wx' }).catch((error) => {
    if (error.code !== 'EEXIST') throw error;
    duplicates++;
    alone = false;
  });
  try {
    await sleep(Number(computeMs));
    return createHash('sha256').update(key).digest('hex');
  } finally {
    if (alone) await unlink(marker);
  }
}

// The lock on the directory (dir.lock, beside it): shared for every get, exclusive for clear().
// With --no-dir-lock it is left out, to show what goes wrong; the per-key lock stays.
const underDirLock = (fn, options) => (mode === 'dir-lock' ? withFileLock(dir, fn, options) : fn());

/** The value stored in an entry, or undefined when there is none yet. */
async function lookup(file) {
  try {
    return JSON.parse(await readFile(file, 'utf8')).value;
  } catch (error) {
    if (error.code === 'ENOENT') return undefined;
    throw error;
  }
}

/** The value for key: read from the cache, or computed and stored once. */
async function get(key, compute) {
  const file = join(dir, `${key}.json`);
  // Shared: gets run side by side, but clear() cannot move the directory while one is inside it.
  return underDirLock(async () => {
    const hit = await lookup(file);
    if (hit !== undefined) return { value: hit, computed: false };
    // Exclusive per entry: one process computes a key, the others wait and read it.
    return withFileLock(file, async () => {
      const entry = await lookup(file);
      if (entry !== undefined) return { value: entry, computed: false };
      const value = await compute(key);
      await writeFileAtomic(file, JSON.stringify({ value }));
      return { value, computed: true };
    });
  }, { shared: true });
}

/** Empties the cache: moves the directory away, puts an empty one in its place, then deletes the old one. */
async function clear(n) {
  const old = `${dir}.old-${process.pid}-${n}`;
  // Exclusive: no get is inside the directory while it moves.
  await underDirLock(async () => {
    await rename(dir, old);
    await mkdir(dir);
  });
  // Nobody can reach the old directory any more: delete it without holding anyone up.
  await rm(old, { recursive: true, force: true });
}

// The same sequence of keys on every run: a small generator seeded by the process's index.
let seed = Number(index) + 1;
const random = () => ((seed = (seed * 1103515245 + 12345) % 2 ** 31) / 2 ** 31);

// Wait for the others, so that every process works at the same time.
process.send('ready');
await new Promise((resolve) => process.once('message', resolve));

const counts = { operations: 0, clears: 0, computations: 0, hits: 0, duplicates: 0, errors: {} };
// The processes clear in turn, spread over the run.
const offset = Math.floor((Number(index) * Number(clearEvery)) / Number(processes));
for (let i = 0; i < Number(operations); i++) {
  counts.operations++;
  try {
    if ((i + offset) % Number(clearEvery) === Number(clearEvery) - 1) {
      await clear(i);
      counts.clears++;
    } else {
      const key = `key-${Math.floor(random() * Number(keys))}`;
      const { value, computed } = await get(key, compute);
      if (value !== createHash('sha256').update(key).digest('hex')) throw Object.assign(new Error(`wrong value for ${key}`), { code: 'EWRONG' });
      counts[computed ? 'computations' : 'hits']++;
    }
  } catch (error) {
    const code = error.code ?? error.name;
    counts.errors[code] ??= { count: 0, first: error.message };
    counts.errors[code].count++;
  }
}
counts.duplicates = duplicates;
process.send(counts);
