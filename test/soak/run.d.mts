// Types for the soak driver, so that test/soak.test.ts can import it.
export type LockKind = 'flock' | 'fcntl' | 'nfs' | 'nfs-tickets';

export interface SoakOptions {
  /** Seconds of faults, at least; they go on until the min* counts are reached. */
  duration: number;
  minKills?: number;
  /** Kills of the process inside the critical section. */
  minHolderKills?: number;
  minSections?: number;
  /** Seconds after which faults stop even short of a count (then the run reports a problem). */
  maxDuration?: number;
  /** Worker processes alive at a time. */
  processes: number;
  /**
   * 'fcntl' runs the workers with NATIVE_FILE_LOCK_TEST_LOCK_KIND=fcntl; 'nfs'
   * in the NFS model (test/nfs-model/), 'nfs-tickets' there with queue tickets forced on.
   */
  lockKind?: LockKind;
  keep?: boolean;
  log?: (line: string) => void;
}

export interface SoakResult {
  lockKind: LockKind;
  duration: number;
  elapsed: number;
  concurrent: number;
  spawned: number;
  kills: number;
  holderKills: number;
  criticalSections: number;
  logged: number;
  reconciled: number;
  entered: number;
  counter: number;
  overlaps: number;
  lost: number;
  timeouts: number;
  aborts: number;
  busy: number;
  errors: number;
  leakedDescriptors: number;
  lockFreeAfter: boolean;
  problems: string[];
}

export interface Audit {
  counter: number;
  entered: number;
  committed: number;
  logged: number;
  reconciled: number;
  overlaps: number;
  lost: number;
  timeouts: number;
  aborts: number;
  busy: number;
  errors: number;
  problems: string[];
}

export function runSoak(options: SoakOptions): Promise<SoakResult>;
export function auditJournals(dir: string, instances: Map<number, { killedAt?: number }>, counterText: string): Audit;
