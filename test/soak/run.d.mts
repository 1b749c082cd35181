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

/** What went wrong, counted: the same in a soak's result and in an audit of its journals. */
export interface Outcomes {
  overlaps: number;
  lost: number;
  timeouts: number;
  aborts: number;
  busy: number;
  errors: number;
  problems: string[];
}

export interface SoakResult extends Outcomes {
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
  /** Shared (reader) sections entered. */
  sharedSections: number;
  counter: number;
  leakedDescriptors: number;
  lockFreeAfter: boolean;
}

export interface Audit extends Outcomes {
  counter: number;
  entered: number;
  shared: number;
  committed: number;
  logged: number;
  reconciled: number;
}

export function runSoak(options: SoakOptions): Promise<SoakResult>;
export function auditJournals(dir: string, instances: Map<number, { killedAt?: number }>, counterText: string): Audit;
