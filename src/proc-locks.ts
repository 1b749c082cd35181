import { existsSync, lstatSync, readFileSync, readlinkSync } from 'node:fs';
// For the {@link} references in the docs below.
import type { inspect } from './holder.js';

/** A process holding a lock. */
export interface LockHolder {
  /**
   * Its process id as this process sees it, or `undefined` when it cannot be
   * known: the holder is in another pid namespace (a container), the process
   * that took the lock has exited and a child inherited the descriptor, or
   * the platform does not say (macOS, Windows).
   */
  readonly pid: number | undefined;
}

/** What {@link inspect} found: whether the lock is held, by whom, and how many wait. */
export interface LockState {
  /** Someone holds the lock: a process, a worker thread, or this thread. */
  readonly locked: boolean;
  /** When locked: whether it is held shared (every holder a reader). */
  readonly shared?: boolean;
  /** When locked: one holder (the first of `holders`). */
  readonly holder?: LockHolder;
  /** When locked: every holder known (several when shared). */
  readonly holders?: readonly LockHolder[];
  /** Linux: processes blocked waiting for the lock (0 when none). Not reported elsewhere. */
  readonly waiting?: number;
}

/**
 * The holder of lockPath as /proc/locks shows it, for a timeout error;
 * undefined when not known. Only called when a wait has timed out.
 */
export function holderFor(lockPath: string): { holders: number[]; shared: boolean } | undefined {
  if (!procLocksReadable()) return undefined;
  try {
    const state = readProcLocks(lockPath);
    if (!state?.locked) return undefined;
    const pids = state.holders!.map((h) => h.pid).filter((pid): pid is number => pid !== undefined);
    return pids.length > 0 ? { holders: pids, shared: state.shared === true } : undefined;
  } catch {
    return undefined; // Never let the lookup hide the timeout itself.
  }
}

// --- Linux: /proc/locks --------------------------------------------------------

const PROC_LOCKS = '/proc/locks';

export function procLocksReadable(): boolean {
  if (process.platform !== 'linux' || process.env.NATIVE_FILE_LOCK_TEST_NO_PROC_LOCKS === '1') return false;
  return existsSync(PROC_LOCKS);
}

// The initial pid namespace's fixed inode number (PROC_PID_INIT_INO).
const INIT_PID_NAMESPACE = 'pid:[4026531836]';
let everyPid: boolean | undefined;

/**
 * Whether this process is in the initial pid namespace, where /proc/locks
 * lists every lock: in a child namespace the kernel leaves out locks of
 * processes that namespace cannot see.
 */
export function seesEveryPid(): boolean {
  if (everyPid === undefined) {
    try {
      everyPid = readlinkSync('/proc/self/ns/pid') === INIT_PID_NAMESPACE;
    } catch {
      everyPid = false;
    }
  }
  return everyPid;
}

/**
 * The device as /proc/locks prints it (the kernel's MAJOR:MINOR in hex) from
 * a user-space dev_t (glibc's encoding, gnu_dev_major/minor).
 */
function deviceText(dev: bigint): string {
  const major = ((dev >> 8n) & 0xfffn) | ((dev >> 32n) & ~0xfffn);
  const minor = (dev & 0xffn) | ((dev >> 12n) & ~0xffn);
  return `${major.toString(16).padStart(2, '0')}:${minor.toString(16).padStart(2, '0')}`;
}

// "12: FLOCK  ADVISORY  WRITE 4242 08:01:123 0 EOF", or with " -> " after the
// number for a request blocked behind the lock above it.
const LINE = /^\d+:\s+(->\s+)?(FLOCK|POSIX|OFDLCK)\s+\S+\s+(READ|WRITE)\s+(-?\d+)\s+([0-9a-f]+:[0-9a-f]+):(\d+)\s+(\d+)\s+(\S+)\s*$/;

/** The lock file's state from /proc/locks; undefined when the file cannot be looked at there. */
export function readProcLocks(lockPath: string): LockState | undefined {
  let st;
  try {
    // The lock file is never followed (it is opened with O_NOFOLLOW).
    st = lstatSync(lockPath, { bigint: true });
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === 'ENOENT') return { locked: false };
    return undefined;
  }
  // Not a lock file (a directory, a FIFO...): only trying it can say how lock() fails there.
  if (!st.isFile()) return undefined;
  const device = deviceText(st.dev);
  const inode = String(st.ino);
  // The kernel hands /proc/locks out a page per read(2) and finds where the
  // next page starts by counting entries again: a lock taken or dropped
  // meanwhile, anywhere in the list, shifts that count, and a line shows up
  // twice or not at all (never one that is not there). So holders are listed
  // once per process, a lock read as free is read again, and the holders of
  // a shared lock are gathered over several reads.
  let state: LockState | undefined;
  for (let read = 1; read <= READS_WHEN_FREE; read++) {
    let text: string;
    try {
      text = readFileSync(PROC_LOCKS, 'latin1');
    } catch {
      return undefined;
    }
    const next = parseProcLocks(text, device, inode);
    state = state === undefined ? next : gathered(state, next);
    if (state.locked && (!state.shared || read >= READS_WHEN_SHARED)) break;
  }
  return state;
}

// Under heavy lock churn on a 2-CPU machine one read in ten missed a held
// lock's line; five reads in a row miss it only when the lock is free. Of
// three shared holders, one read in twenty missed one or two.
const READS_WHEN_FREE = 5;
const READS_WHEN_SHARED = 3;

/** What two reads of the same lock found together: every holder either saw, each process once. */
function gathered(a: LockState, b: LockState): LockState {
  if (!a.locked) return b;
  if (!b.locked) return a;
  const holders = [...a.holders!];
  for (const h of b.holders!) {
    if (h.pid !== undefined && !holders.some((x) => x.pid === h.pid)) holders.push(h);
  }
  return { locked: true, shared: a.shared === true && b.shared === true, holder: holders[0], holders, waiting: Math.max(a.waiting ?? 0, b.waiting ?? 0) };
}

function parseProcLocks(text: string, device: string, inode: string): LockState {
  const holders: LockHolder[] = [];
  let shared = true;
  let waiting = 0;
  for (const line of text.split('\n')) {
    const m = LINE.exec(line);
    if (m === null || m[6] !== inode || m[5] !== device) continue;
    const [, blocked, kind, type, pidText, , , start, end] = m;
    // Record locks count only over the whole file (NFS, record-lock mode,
    // lockf peers); an OFD lock on byte 0 alone is a queue ticket, taken by
    // a waiter, and one on byte 2 alone the turn marker (native/lock_posix.cc).
    const wholeFile = kind === 'FLOCK' || (start === '0' && end === 'EOF');
    const queued = kind === 'OFDLCK' && start === end && (start === '0' || start === '2');
    if (blocked !== undefined) {
      // A waiter blocked in flock, behind a ticket, or (the head of the
      // queue) waiting for the holder's turn to end.
      if (wholeFile || queued) waiting++;
      continue;
    }
    if (!wholeFile) continue;
    if (type !== 'READ') shared = false;
    const pid = visiblePid(Number(pidText));
    if (pid !== undefined && holders.some((h) => h.pid === pid)) continue;
    holders.push({ pid });
  }
  if (holders.length === 0) return { locked: false, waiting };
  return { locked: true, shared, holder: holders[0], holders, waiting };
}

/** A pid this process can see; 0 and -1 (another pid namespace, an OFD lock) and vanished pids are unknown. */
function visiblePid(pid: number): number | undefined {
  if (!(pid > 0)) return undefined;
  return pid === process.pid || existsSync(`/proc/${pid}`) ? pid : undefined;
}

