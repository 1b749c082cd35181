'use strict';
// Loads prebuilds/<platform>-<arch>/ or build/Release/ from the package root,
// which is two folders above dist/esm and dist/cjs. Plain CommonJS, so that both
// builds share it without import.meta or __dirname in compiled TypeScript.
const path = require('node:path');
module.exports = require('node-gyp-build')(path.join(__dirname, '..', '..'));
