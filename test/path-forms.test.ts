// Paths in every form Node's fs accepts: string, file: URL, UTF-8 Buffer.
import { realpathSync } from 'node:fs';
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';

import { lock, tryLock, withFileLock } from 'native-file-lock';

import { Agent, resourceIn, tempDir } from './helpers.js';

let agent: Agent;
beforeAll(async () => {
  agent = await Agent.start();
});
afterAll(async () => {
  await agent.stop();
});

describe('a path given as a file: URL or a Buffer', () => {
  it('a file: URL locks the same lock file as the string path and reports the path string as the resource', async () => {
    const path = resourceIn(tempDir(), 'data é');
    const held = await lock(pathToFileURL(path));
    try {
      expect(held.path).toBe(realpathSync(path) + '.lock');
      expect(held.resource).toBe(path);
      expect(await agent.canLock(path)).toBe(false);
      expect(await tryLock(path)).toBeUndefined();
    } finally {
      await held.release();
    }
    expect(await agent.canLock(path)).toBe(true);
  });

  it('a UTF-8 Buffer locks the same lock file as the string path', async () => {
    const path = resourceIn(tempDir(), 'données');
    const value = await withFileLock(Buffer.from(path), async () => {
      expect(await agent.canLock(path)).toBe(false);
      return 'ran';
    });
    expect(value).toBe('ran');
    expect(await agent.canLock(path)).toBe(true);
  });

  it('a file: URL as lockfilePath names the lock file', async () => {
    const dir = tempDir();
    const path = resourceIn(dir);
    const lockfile = join(dir, 'chosen.lock');
    const held = await lock(path, { lockfilePath: pathToFileURL(lockfile) });
    try {
      expect(held.path).toBe(join(realpathSync(dir), 'chosen.lock'));
      expect(await agent.canLock(lockfile, { lockfilePath: lockfile })).toBe(false);
    } finally {
      await held.release();
    }
  });
});
