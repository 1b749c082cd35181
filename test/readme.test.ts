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

/** The lines between `// #region <name>` and `// #endregion` in a file of the repository. */
function region(file: string, name: string): string {
  const text = readFileSync(join(root, file), 'utf8');
  const start = text.indexOf(`// #region ${name}\n`);
  const end = text.indexOf('// #endregion', start);
  if (start < 0 || end < 0) throw new Error(`no region '${name}' in ${file}`);
  return text.slice(start + `// #region ${name}\n`.length, end);
}

/** The modules a module's import lines import from. */
const importedFrom = (code: string) => [...code.matchAll(/^import .* from '([^']+)';$/gm)].map((m) => m[1]!);
/** A module without its import lines. */
const withoutImports = (code: string) => code.split('\n').filter((line) => !line.startsWith('import ')).join('\n').trim();

describe('the README', () => {
  it('first example is examples/sqlite-workers’ worker code, word for word, importing from the same modules', () => {
    const worker = 'examples/sqlite-workers/worker.mjs';
    const first = example('## A first example');
    expect(withoutImports(first)).toBe(region(worker, "README.md's first example").trim());
    // The worker imports the library under another name, to wrap withFileLock for its --no-lock run.
    expect(importedFrom(first)).toEqual(importedFrom(readFileSync(join(root, worker), 'utf8')));
  });

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
