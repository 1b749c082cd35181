'use strict';
// Loads build/Release/ (a local compile wins) or prebuilds/<platform>-<arch>/
// from the package root, which is two folders above dist/esm and dist/cjs.
// Plain CommonJS, so that both builds share it without import.meta or
// __dirname in compiled TypeScript.
const fs = require('node:fs');
const path = require('node:path');

const root = path.join(__dirname, '..', '..');
try {
  module.exports = require('node-gyp-build')(root);
} catch (error) {
  error.message = `${loadFailure(error)}\n${error.message}`;
  throw error;
}

/** What went wrong, told from what is on disk, and the command that fixes it. */
function loadFailure(error) {
  const tuple = `${process.platform}-${process.arch}`;
  const list = (dir) => {
    try {
      return fs.readdirSync(path.join(root, dir));
    } catch {
      return [];
    }
  };
  const shipped = list('prebuilds').filter((name) => /^[a-z0-9]+-[a-z0-9]+$/.test(name));
  const compiled = list('build/Release').some((name) => name.endsWith('.node'));
  const lines = [`native-file-lock could not load its native addon on ${tuple} (Node ${process.versions.node}).`];
  if (!/^No native build was found/.test(error.message)) {
    // A file was found but the system refused it (wrong C library, a corrupt file, ...).
    lines.push('An addon was found but could not be loaded; compiling it on this machine usually fixes that.');
  } else if (shipped.includes(tuple)) {
    lines.push(`This package ships prebuilds/${tuple}, but none of its files matches this system (for example a glibc build on musl).`);
  } else {
    lines.push(`This package has no prebuilt addon for ${tuple} (it ships ${shipped.join(', ') || 'none'}), so it must be compiled here.`);
  }
  if (!compiled) {
    lines.push(
      fs.existsSync(path.join(root, 'build'))
        ? 'Compiling at install time failed (see the install log for the compiler error).'
        : 'Nothing was compiled at install time: install scripts did not run (--ignore-scripts, npm allowScripts, pnpm or Bun without trusting this package).',
    );
  }
  const tools =
    process.platform === 'win32'
      ? 'Python 3 and Visual Studio Build Tools with "Desktop development with C++"'
      : process.platform === 'darwin'
        ? 'Python 3 and the Xcode Command Line Tools (xcode-select --install)'
        : 'Python 3, make and a C++17 compiler (Debian/Ubuntu: apt-get install python3 make g++; Alpine: apk add python3 make g++; RHEL: dnf install python3 make gcc-c++)';
  lines.push(
    `To compile it, install ${tools}, then run in your project: npm rebuild native-file-lock --foreground-scripts ` +
      '(where npm refuses install scripts, first: npm install-scripts approve native-file-lock).',
  );
  return lines.join('\n');
}
