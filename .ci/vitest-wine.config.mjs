// The vitest suite under Windows Node in Wine (see .ci/matrix.sh for the
// Wine set-up). Wine lacks bcryptprimitives.dll, so rolldown runs as its WASI
// build, which cannot resolve Windows paths: this config needs no bundling,
// and resolves the tests' relative imports (`./x.js` of TypeScript files too)
// itself.
//
//   npm install --no-save --os=win32 --cpu=x64 --force @rolldown/binding-wasm32-wasi@<rolldown's version>
//   PREBUILDS_ONLY=1 wine node.exe node_modules/vitest/vitest.mjs run \
//     --config .ci/vitest-wine.config.mjs --configLoader native test/x.test.ts >out 2>err
import { existsSync } from 'node:fs';
import { dirname, resolve } from 'node:path';

const relativeImports = {
  name: 'relative-imports',
  enforce: 'pre',
  resolveId(source, importer) {
    if (!importer || !source.startsWith('.')) return null;
    const file = resolve(dirname(importer), source);
    if (existsSync(file)) return file;
    const ts = file.replace(/\.js$/, '.ts');
    return ts !== file && existsSync(ts) ? ts : null;
  },
};

export default {
  plugins: [relativeImports],
  test: { include: ['test/**/*.test.ts'], testTimeout: 120_000, hookTimeout: 120_000, pool: 'forks' },
};
