'use strict';
// Loads prebuilds/<platform>-<arch>/ or build/Release/ from the package root,
// which is two folders above dist/esm and dist/cjs. Plain CommonJS, so that both
// builds share it without import.meta or __dirname in compiled TypeScript.
const path = require('node:path');

const root = path.join(__dirname, '..', '..');
try {
  module.exports = require('node-gyp-build')(root);
} catch (error) {
  // No prebuild matched and nothing was compiled (install scripts blocked, or
  // no compiler): say what to install and how to build.
  const tools =
    process.platform === 'win32'
      ? 'Python 3 and Visual Studio Build Tools with "Desktop development with C++"'
      : process.platform === 'darwin'
        ? 'Python 3 and the Xcode Command Line Tools (xcode-select --install)'
        : 'Python 3, make and a C++17 compiler (Debian/Ubuntu: apt-get install python3 make g++; Alpine: apk add python3 make g++; RHEL: dnf install python3 make gcc-c++)';
  error.message =
    `native-file-lock could not load its native addon for ${process.platform}-${process.arch}. ` +
    'Prebuilt addons ship for linux-x64 and linux-arm64 (glibc 2.31 or later) and win32-x64; elsewhere the addon ' +
    `is compiled when the package is installed, which needs install scripts to run and ${tools}. ` +
    `After installing those, run: npm rebuild native-file-lock --build-from-source\n${error.message}`;
  throw error;
}
