// dist/cjs holds CommonJS files inside a "type": "module" package: mark the
// folder so Node reads them as CommonJS, and copy the hand-written loader.
import { copyFileSync, writeFileSync } from 'node:fs';

writeFileSync(new URL('../dist/cjs/package.json', import.meta.url), '{ "type": "commonjs" }\n');
for (const dir of ['esm', 'cjs']) {
  copyFileSync(new URL('../src/binding.cjs', import.meta.url), new URL(`../dist/${dir}/binding.cjs`, import.meta.url));
}
