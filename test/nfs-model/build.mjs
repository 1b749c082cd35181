// Builds the flock shim (flock-shim.c) once per content into the checkout's
// node_modules/.cache (ignored by git, owned by whoever runs the tests, never
// left behind in the system's temp folder) and describes the environments of
// the NFS model.
import { spawnSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import { existsSync, mkdirSync, readFileSync, renameSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

const source = join(dirname(fileURLToPath(import.meta.url)), 'flock-shim.c');

/** Why the shim cannot be built here, or undefined if it can. */
export function shimMissing() {
  if (process.platform !== 'linux') return `the NFS model is Linux's flock emulation (this is ${process.platform})`;
  if (spawnSync('cc', ['--version'], { stdio: 'ignore' }).status !== 0) return 'a C compiler (cc) is needed to build the NFS model shim';
  return undefined;
}

/** The path of the built shim (a shared object for LD_PRELOAD). */
export function buildShim() {
  const text = readFileSync(source);
  const hash = createHash('sha256').update(text).digest('hex').slice(0, 16);
  const dir = join(source, '..', '..', '..', 'node_modules', '.cache', 'native-file-lock-nfs-model');
  const out = join(dir, `flock-shim-${hash}.so`);
  if (existsSync(out)) return out;
  mkdirSync(dir, { recursive: true });
  const partial = `${out}.${process.pid}`;
  const cc = spawnSync('cc', ['-shared', '-fPIC', '-O2', '-Wall', '-o', partial, source], { encoding: 'utf8' });
  if (cc.status !== 0) throw new Error(`cannot build the NFS model shim: ${cc.stderr}`);
  renameSync(partial, out);
  return out;
}

/** LD_PRELOAD with the shim after whatever is preloaded already (a sanitizer runtime must stay first). */
export function preloadWith(shim, existing = process.env.LD_PRELOAD) {
  return existing ? `${existing} ${shim}` : shim;
}

/**
 * Environment of a library process in the NFS model. tickets 'detect' lets
 * the library decide as it would on NFS (it cannot see through the shim, so
 * NATIVE_FILE_LOCK_TEST_FLOCK=emulated tells it); 'on' forces queue tickets
 * on, to show what they would do there.
 */
export function nfsEnv(shim, { tickets = 'detect', base = process.env } = {}) {
  return { ...base, LD_PRELOAD: preloadWith(shim, base.LD_PRELOAD), NATIVE_FILE_LOCK_TEST_FLOCK: tickets === 'on' ? 'native' : 'emulated' };
}

/** Environment of a peer (flock(1), Python) in the NFS model: the shim alone. */
export function peerEnv(shim, base = process.env) {
  const { LD_PRELOAD: _preload, ...env } = base;
  return { ...env, LD_PRELOAD: shim };
}
