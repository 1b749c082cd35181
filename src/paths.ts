import { lstatSync, readlinkSync, realpathSync } from 'node:fs';
import { basename, dirname, isAbsolute, join, resolve, sep, toNamespacedPath } from 'node:path';

import { wrapFsError } from './errors.js';
import { fileRef, native, type FileRef } from './native.js';

/**
 * Where the lock for a resource lives: `<canonical path>.lock`, canonical
 * meaning symlinks resolved, so that processes reaching one file through
 * different links share one lock. A resource that does not exist yet resolves
 * through its parent directory: `<realpath(parent)>/<name>.lock`.
 *
 * The canonical path is the file the kernel opens. On POSIX the kernel walks
 * a path component by component, so in `a/../f` with `a` a symlink, `..` is
 * the parent of a's target (path_resolution(7)): the spelling is never
 * normalised as text (path.resolve would cancel `a/..`) before realpath(3)
 * has seen it. Windows normalises `..` as text before opening
 * (GetFullPathNameW), and so does this module there.
 *
 * realpath(3) costs as much as the whole lock cycle, so each resolution is
 * cached with the identity (dev, ino) of the file or directory it went
 * through, and a later call revalidates it with one stat(2): a re-pointed
 * symlink, a replaced file or a vanished one changes the identity and the
 * path resolves afresh. (One file moved to a new place while still reachable
 * at the old path keeps its old lock path in this process.)
 */
export interface Resolved extends LockPath {
  /** The path whose identity was recorded: the resource, or its parent while it is missing. */
  readonly probe: FileRef;
  /** The resource did not exist: it must still be missing for the cache to hold. */
  readonly missing: FileRef | undefined;
  /** Resolved through a symlink to a missing file: never cached. */
  readonly throughDanglingLink?: boolean;
}

export interface LockPath {
  readonly lockPath: string;
  /**
   * What identifies the lock file within this process (the per-thread line
   * and reentrancy): the lock path, case-folded where its directory matches
   * names case-insensitively, so that `Data.db` and `data.db` share a line.
   */
  readonly key: string;
}

// One cache per kind of path: the same string means <path>.lock as a
// resource and the file itself as a lockfilePath.
const resources = new Map<string, Resolved>();
const lockfiles = new Map<string, Resolved>();
const CACHE_LIMIT = 1024;

export function lockPathFor(resource: string, lockfilePath: string | undefined): LockPath {
  const spelled = lockfilePath === undefined ? resource : lockfilePath;
  const absolute = absolutePath(spelled);
  const cache = lockfilePath === undefined ? resources : lockfiles;
  const cached = cache.get(absolute);
  if (cached !== undefined && stillValid(cached)) return cached;
  const resolved = lockfilePath === undefined ? resolveResource(absolute, resource) : resolveLockfile(absolute, resource);
  // A dangling symlink may be re-pointed at another missing file without a
  // change one stat would see: resolved afresh every time.
  if (resolved.throughDanglingLink) return resolved;
  if (cache.size >= CACHE_LIMIT) cache.delete(cache.keys().next().value!);
  cache.set(absolute, resolved);
  return resolved;
}

/**
 * The cached resolution for these spellings, not revalidated: the caller
 * passes its probe and missing to native.acquire, which checks them in the
 * same call (STALE: call lockPathFor, which resolves afresh).
 */
export function cachedLockPath(resource: string, lockfilePath: string | undefined): Resolved | undefined {
  if (lockfilePath === undefined) return resources.get(absolutePath(resource));
  return lockfiles.get(absolutePath(lockfilePath));
}

const WINDOWS = process.platform === 'win32';

/** The caller's spelling made absolute as the kernel would read it from the current directory. */
function absolutePath(path: string): string {
  if (WINDOWS) return resolve(path);
  if (isAbsolute(path)) return path;
  const cwd = process.cwd();
  return cwd.endsWith(sep) ? cwd + path : cwd + sep + path;
}

function stillValid(entry: Resolved): boolean {
  if (entry.missing !== undefined && native.recordPath(entry.missing) === 0) return false;
  return native.samePath(entry.probe) === 1;
}

function resolveResource(absolute: string, resource: string, links = 0): Resolved {
  const probe = fileRef(absolute);
  if (native.recordPath(probe) === 0) {
    try {
      return withKey(realpath(absolute) + '.lock', probe, undefined);
    } catch (error) {
      // Vanished between the two calls: resolve it as missing below.
      if ((error as NodeJS.ErrnoException).code !== 'ENOENT') throw wrapFsError(error, 'resolve', absolute, resource);
    }
  }
  // A dangling symlink: opening it with O_CREAT creates its target, so the
  // lock is the target's, as if the caller had named it.
  const target = danglingTarget(absolute, resource, links);
  if (target !== undefined) return { ...resolveResource(target, resource, links + 1), throughDanglingLink: true };
  // The resource may be created later, under the lock: resolve its parent.
  const parent = realParent(absolute, absolute + '.lock', resource);
  return withKey(join(parent.path, leafName(absolute) + '.lock'), parent.probe, fileRef(absolute));
}

function resolveLockfile(absolute: string, resource: string): Resolved {
  // The lock file itself is never followed (it is opened with O_NOFOLLOW):
  // only its directory is resolved.
  const { path, probe } = realParent(absolute, absolute, resource);
  return withKey(join(path, leafName(absolute)), probe, undefined);
}

// The kernel gives up after 40 links in one lookup (ELOOP).
const MAX_LINKS = 40;

/** Where the symlink at absolute points when nothing is there, else undefined. */
function danglingTarget(absolute: string, resource: string, links: number): string | undefined {
  let link: string;
  try {
    if (!lstatSync(absolute).isSymbolicLink()) return undefined;
    link = readlinkSync(absolute);
  } catch {
    return undefined; // Nothing at the path at all (or it changed meanwhile): a plain missing file.
  }
  if (links >= MAX_LINKS) {
    const error = Object.assign(new Error(`ELOOP: too many symbolic links, open '${absolute}'`), { code: 'ELOOP', syscall: 'open' });
    throw wrapFsError(error, 'resolve', absolute, resource);
  }
  if (isAbsolute(link)) return WINDOWS ? resolve(link) : link;
  // Relative to the directory that holds the link, read as the kernel walks it (no text normalisation of `..`).
  const dir = realParent(absolute, absolute + '.lock', resource).path;
  return WINDOWS ? resolve(dir, link) : (dir.endsWith(sep) ? dir : dir + sep) + link;
}

/** Resolves the directory of absolute; an error names lockPath, the lock file as spelled, like every lock error. */
function realParent(absolute: string, lockPath: string, resource: string): { path: string; probe: FileRef } {
  const parent = dirname(absolute);
  try {
    const probe = fileRef(parent);
    const path = realpath(parent);
    if (native.recordPath(probe) !== 0) throw Object.assign(new Error('the directory vanished while it was resolved'), { code: 'ENOENT' });
    return { path, probe };
  } catch (error) {
    throw wrapFsError(error, 'resolve the directory of lock file', lockPath, resource);
  }
}

function withKey(lockPath: string, probe: FileRef, missing: FileRef | undefined): Resolved {
  return { lockPath, key: lockKey(lockPath), probe, missing };
}

// --- Windows and macOS names ---------------------------------------------------

const MACOS = process.platform === 'darwin';

/**
 * realpath(3), or GetFinalPathNameByHandleW on Windows. Node passes that one
 * the plain path, which fails past MAX_PATH characters unless the system
 * enables long paths, so it gets the \\?\ form (libuv strips it from the
 * result). It also fails on some volumes (RAM disks, some network shares,
 * and under Wine past MAX_PATH) where walking the path with lstat works.
 */
function realpath(path: string): string {
  try {
    return realpathSync.native(WINDOWS ? toNamespacedPath(path) : path);
  } catch (error) {
    const code = (error as NodeJS.ErrnoException).code;
    if (!WINDOWS || code === 'ENOENT' || code === 'ENOTDIR') throw error;
    return realpathSync(path);
  }
}

/**
 * The name a missing file will get. Win32 path normalisation removes the
 * trailing dots and spaces of a path's last component ("File path formats on
 * Windows systems", Microsoft Learn): `f.` and `f ` create `f`, so they must
 * lock `f.lock` like `f` does.
 */
function leafName(absolute: string): string {
  const name = basename(absolute);
  if (!WINDOWS) return name;
  return name.replace(/[. ]+$/, '') || name;
}

/**
 * NTFS compares names by upper-casing each character (simple case mapping);
 * APFS and HFS+ also ignore Unicode normalisation. Linux directories are
 * taken as case-sensitive without asking.
 */
function lockKey(lockPath: string): string {
  if (!WINDOWS && !MACOS) return lockPath;
  const name = MACOS ? lockPath.normalize('NFD') : lockPath;
  return native.caseSensitive(dirname(lockPath)) === 1 ? name : foldCase(name);
}

function foldCase(text: string): string {
  let folded = '';
  // Characters whose upper case is longer (ß → SS) stay as they are, as in
  // the simple mapping file systems use.
  for (const ch of text) {
    const upper = ch.toUpperCase();
    folded += upper.length === ch.length ? upper : ch;
  }
  return folded;
}
