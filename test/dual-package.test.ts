// One copy of the library per process, whichever entry point loads first:
// the ES module entry re-exports the CommonJS build, so classes, functions
// and the in-process state are shared.
import { describe, expect, it } from 'vitest';

import { fixture, resourceIn, runNode, tempDir } from './helpers.js';

describe.each(['import', 'require'])('a process that loads the package by %s first and then the other way', (first) => {
  it('sees the same classes and functions, and an error from either build is instanceof both', async () => {
    const path = resourceIn(tempDir());
    const child = runNode(fixture('dual-package.mjs'), [first, path]);
    await child.succeeded();
    expect(JSON.parse(child.stdout)).toEqual({
      sameClasses: true,
      sameFunctions: true,
      code: 'ELOCKTIMEOUT',
      instanceofCjs: true,
      instanceofEsm: true,
      tryLockBusy: true,
      reentrant: ['cjs inside esm', 'esm inside cjs'],
    });
  });
});
