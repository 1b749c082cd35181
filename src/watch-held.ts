// A held lock while it is held: the debug lines of its taking and release, and
// the warnAfterMs warning. Nothing here ever releases or takes a lock.
import { debug, debugging, since } from './debug.js';
import type { HeldLock } from './held-lock.js';
import { WARNING_TYPE } from './visible-wait.js';

interface Watch {
  readonly since: number;
  timer: ReturnType<typeof setTimeout> | undefined;
}

// Held locks with a warnAfterMs timer or a debug start time. `watched` counts
// them so that a release with none of either does not look into the map.
const watches = new WeakMap<HeldLock, Watch>();
let watched = 0;

/**
 * Notes a lock just taken: the debug line, and with warnAfterMs a one-shot
 * unref'd timer that warns (NFL_HELD_LONG) if the lock is still held then.
 * It never releases or takes anything. waitedMs: -1 when the call did not wait.
 */
export function noteHeld(held: HeldLock, warnAfterMs: number, waitedMs: number): HeldLock {
  if (debugging) {
    if (waitedMs < 0) debug("acquire '%s' (no wait)", held.path);
    else debug("acquire '%s' after waiting %d ms", held.path, Math.round(waitedMs));
  }
  if (warnAfterMs === Infinity && !debugging) return held;
  const watch: Watch = { since: performance.now(), timer: undefined };
  if (warnAfterMs !== Infinity) {
    watch.timer = setTimeout(() => {
      watch.timer = undefined;
      if (held.released) return;
      process.emitWarning(
        `The lock on '${held.path}' (for '${held.resource}') has been held by this process for ${since(watch.since)} ms, ` +
          `longer than options.warnAfterMs (${warnAfterMs} ms); it stays held until released`,
        { type: WARNING_TYPE, code: 'NFL_HELD_LONG' },
      );
    }, warnAfterMs);
    watch.timer.unref?.();
  }
  watches.set(held, watch);
  watched++;
  return held;
}

/** Clears what noteHeld set up for held; called by every release, once. */
export function noteReleased(held: HeldLock): void {
  if (watched === 0) return;
  const watch = watches.get(held);
  if (watch === undefined) return;
  watches.delete(held);
  watched--;
  if (watch.timer !== undefined) clearTimeout(watch.timer);
  if (debugging) debug("release '%s' after holding it %d ms", held.path, since(watch.since));
}
