// One process asking a shared cache directory for every key. Started by main.mjs with:
// <cache dir> <keys> <lock|no-lock>.
import { createHash } from 'node:crypto';
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { withFileLock } from 'native-file-lock';
import writeFileAtomic from 'write-file-atomic';

const [dir, keys, mode] = process.argv.slice(2);

// The expensive computation the cache saves; a real one might build, fetch or compress.
async function compute(key) {
  await sleep(100);
  return createHash('sha256').update(key).digest('hex');
}

// Runs fn under the lock on file, or bare with --no-lock to show what goes wrong.
const guarded = (file, fn) => (mode === 'lock' ? withFileLock(file, fn) : fn());

/** The value stored in an entry, or undefined when there is none yet. */
async function lookup(file) {
  try {
    return JSON.parse(await readFile(file, 'utf8')).value;
  } catch (error) {
    if (error.code === 'ENOENT') return undefined;
    throw error;
  }
}

/** The value for key: read from the cache, or computed and stored by exactly one process. */
async function cached(key, compute) {
  const file = join(dir, `${key}.json`);
  // write-file-atomic writes a temporary file and renames it into place, so a reader
  // without the lock sees either no entry or a complete one: hits take no lock.
  const hit = await lookup(file);
  if (hit !== undefined) return { value: hit, computed: false };

  // One lock per entry: processes filling different keys do not wait for each other.
  return guarded(file, async () => {
    // Another process may have filled the entry while this one waited for the lock.
    const entry = await lookup(file);
    if (entry !== undefined) return { value: entry, computed: false };
    const value = await compute(key);
    await writeFileAtomic(file, JSON.stringify({ value }));
    return { value, computed: true };
  });
}

// Wait for the others, so that every process asks at the same time.
process.send('ready');
await new Promise((resolve) => process.once('message', resolve));

// Every process asks for the same keys in the same order: all of them miss each key at once.
const results = [];
for (let i = 0; i < Number(keys); i++) {
  const key = `key-${i}`;
  results.push({ key, ...(await cached(key, compute)) });
}
process.send(results);
