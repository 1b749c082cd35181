// The README's examples, run as written: a user's first contact must work.
import { mkdirSync, readFileSync, symlinkSync, writeFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';

import { runNode, tempDir } from './helpers.js';

const root = fileURLToPath(new URL('..', import.meta.url));
const readme = readFileSync(join(root, 'README.md'), 'utf8');
// Processes started at once: their schema steps and first transactions overlap.
const PROCESSES = 6;

/** The n-th ```js block after the heading. */
function example(heading: string, n = 0): string {
  const section = readme.slice(readme.indexOf(`\n${heading}\n`));
  const blocks = [...section.matchAll(/```js\n([\s\S]*?)```/g)].map((m) => m[1]!);
  if (blocks[n] === undefined) throw new Error(`no js block ${n} under ${heading} in README.md`);
  return blocks[n]!;
}

/** A project folder where `native-file-lock` and `better-sqlite3` resolve as for a user. */
function project(): string {
  const dir = tempDir('nfl-readme-');
  mkdirSync(join(dir, 'node_modules'));
  symlinkSync(root, join(dir, 'node_modules', 'native-file-lock'), 'dir');
  const sqlite = dirname(fileURLToPath(import.meta.resolve('better-sqlite3/package.json')));
  symlinkSync(sqlite, join(dir, 'node_modules', 'better-sqlite3'), 'dir');
  return dir;
}

describe('the README', () => {
  it('first example runs as written in six processes at once and every task gets its own id', async () => {
    const dir = project();
    const script = join(dir, 'example.mjs');
    writeFileSync(script, example('## A first example') + '\nconsole.log(`id ${id}`);\n');
    const runs = Array.from({ length: PROCESSES }, () => runNode(script, [], { cwd: dir }));
    await Promise.all(runs.map((run) => run.succeeded()));
    const ids = runs.map((run) => Number(/^id (\d+)$/m.exec(run.stdout)?.[1])).sort((a, b) => a - b);
    // max(id) + 1 read and written under the lock: a race would repeat an id or fail with SQLITE_BUSY.
    expect(ids).toEqual(Array.from({ length: PROCESSES }, (_, i) => i + 1));
  });

  it('CommonJS form of the first example runs as written', async () => {
    const dir = project();
    const script = join(dir, 'example.cjs');
    writeFileSync(
      script,
      // The snippet's addTask, as the first example defines it.
      'const addTask = async (title) => title.length;\n' + example('## A first example', 1) + '\nmain().then(() => console.log("done"));\n',
    );
    const run = runNode(script, [], { cwd: dir });
    await run.succeeded();
    expect(run.stdout).toContain('done');
  });
});
