// dist/cjs holds CommonJS files inside a "type": "module" package: mark the
// folder so Node reads them as CommonJS, and copy the hand-written loader.
// dist/esm holds only declarations and one module that re-exports the
// CommonJS build: one copy of the classes and state per process, whichever
// entry point loads first (no dual-package hazard).
import { copyFileSync, readdirSync, rmSync, writeFileSync } from 'node:fs';

const dist = new URL('../dist/', import.meta.url);
writeFileSync(new URL('cjs/package.json', dist), '{ "type": "commonjs" }\n');
copyFileSync(new URL('../src/binding.cjs', import.meta.url), new URL('cjs/binding.cjs', dist));

// What src/index.ts exports at run time (its type-only exports need no value);
// test/api.test.ts checks that both entry points list the same names.
const names = ['lock', 'tryLock', 'withFileLock', 'lockAll', 'tryLockAll', 'withFileLocks', 'FileLockError', 'LockTimeoutError', 'inspect', 'isLocked', 'createLockManager', 'lockSync', 'tryLockSync', 'withFileLockSync'];

// JavaScript left in dist/esm by an earlier build that compiled it.
for (const name of readdirSync(new URL('esm/', dist))) {
  if (/\.(js|cjs|mjs)$/.test(name)) rmSync(new URL(`esm/${name}`, dist));
}
writeFileSync(
  new URL('esm/index.js', dist),
  '// Re-exports the CommonJS build: one copy of the library per process.\n' +
    "import { createRequire } from 'node:module';\n\n" +
    "const cjs = createRequire(import.meta.url)('../cjs/index.js');\n" +
    `export const { ${names.join(', ')} } = cjs;\n`,
);
