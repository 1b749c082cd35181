// Peers that are other programs taking the same lock file as the library:
// util-linux flock(1) and Python's fcntl module (test/fixtures/fcntl-peer.py).
// They run with plainEnv unless given an environment (the NFS model's shim).
import { spawnSync } from 'node:child_process';

import { fixture, plainEnv, Proc } from './helpers.js';

/** How a Python peer locks: flock(2), or a POSIX record lock on the whole file. */
export type PythonLock = 'flock' | 'lockf';

/** Which lock a Python peer takes: exclusive or shared. */
export type PythonMode = 'LOCK_EX' | 'LOCK_SH';

/** util-linux flock(1) running args, e.g. [lockPath, 'sh', '-c', 'echo locked; read line']. */
export function runFlock(args: readonly string[]): Proc {
  return new Proc('flock', args, { env: plainEnv });
}

/** One `flock -n` on the lock file: 'held' if it could not take the lock at once. */
export function flockProbe(lockPath: string, env: NodeJS.ProcessEnv = plainEnv): 'held' | 'free' {
  const out = spawnSync('flock', ['-n', lockPath, 'true'], { encoding: 'utf8', env });
  if (out.error) throw out.error;
  // flock(1) exits 1 on a conflict; failing to open the file is another status.
  if (out.status === 0) return 'free';
  if (out.status === 1) return 'held';
  throw new Error(`flock -n ${lockPath} failed (${out.status}): ${out.stderr}`);
}

/** One non-blocking attempt by Python on the lock file: 'held' if it could not take the lock. */
export function pythonProbe(lockPath: string, kind: PythonLock = 'flock', env: NodeJS.ProcessEnv = plainEnv, mode: PythonMode = 'LOCK_EX'): 'held' | 'free' {
  const out = spawnSync('python3', [fixture('fcntl-peer.py'), lockPath, kind, 'probe', mode], { input: 'probe\n', encoding: 'utf8', env });
  const answer = out.stdout.trim();
  if (answer !== 'held' && answer !== 'free') throw new Error(`python probe failed (${out.status}): ${out.stdout} ${out.stderr}`);
  return answer;
}

/**
 * Python waiting for the lock file and then holding it: prints 'locked' once
 * it holds it, and lets go when its stdin ends (letGo).
 */
export function pythonHolder(lockPath: string, kind: PythonLock = 'flock', mode: PythonMode = 'LOCK_EX'): Proc {
  return new Proc('python3', [fixture('fcntl-peer.py'), lockPath, kind, 'hold', mode], { env: plainEnv });
}

/** Ends a holder's stdin and waits for its clean exit. */
export async function letGo(holder: Proc): Promise<void> {
  holder.child.stdin!.end('\n');
  await holder.succeeded();
}
