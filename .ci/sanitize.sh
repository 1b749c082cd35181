#!/usr/bin/env bash
# Native memory safety, in two legs:
#
#   1. AddressSanitizer + UndefinedBehaviorSanitizer: the addon is built once
#      with -fsanitize=address,undefined in a copy of the package (its own
#      build/, so the normal build is never touched), and the whole vitest
#      suite runs there with libasan preloaded into node (V8 is not
#      instrumented, so the runtime must come first) and leak detection off
#      (LeakSanitizer reports V8's own allocations at exit). Reports from any
#      process, children included, go to files; one report fails the leg.
#   2. valgrind: a short smoke script through the public API (locks,
#      contention in-process and across processes, timeouts, aborts during a
#      native wait, errors, worker_threads), in flock and fcntl mode, under
#      `valgrind --error-exitcode=99`, against the normal build.
#
# Prints one line per leg and exits non-zero if either fails. Keeps its work
# directory when NFL_SANITIZE_KEEP=1. Needs g++, make, python3, valgrind.
set -uo pipefail
cd "$(dirname "$0")/.."
ROOT=$PWD
export npm_config_nodedir=${npm_config_nodedir:-/usr}

work=$(mktemp -d "${TMPDIR:-/tmp}/nfl-sanitize.XXXXXX")
# Some tests run children as user nobody: they must reach the copy.
chmod 755 "$work"
if [ "${NFL_SANITIZE_KEEP:-0}" = 1 ]; then echo "sanitize: work directory $work"; else trap 'rm -rf "$work"' EXIT; fi
failed=0

fingerprint() { find "$ROOT/build/Release" "$ROOT/prebuilds" -maxdepth 2 -name '*.node' -exec sha256sum {} + 2>/dev/null | sort; }
normal_before=$(fingerprint)

# --- leg 1: ASan + UBSan ------------------------------------------------------
asan_leg() {
  local pkg=$work/pkg logs=$work/asan-logs log=$work/asan-vitest.log
  mkdir -p "$pkg" "$logs"
  chmod 1777 "$logs" # children running as nobody write reports too
  tar -C "$ROOT" --exclude=./node_modules --exclude=./build --exclude=./.git \
    --exclude=./dist --exclude=./bench/results -cf - . | tar -C "$pkg" -xf - || return 1
  ln -s "$ROOT/node_modules" "$pkg/node_modules"
  (
    cd "$pkg" &&
      npm run --silent build:ts >"$work/asan-build.log" 2>&1 &&
      CXXFLAGS="-fsanitize=address,undefined -fno-omit-frame-pointer -g -O1" LDFLAGS="-fsanitize=address,undefined" \
        node node_modules/node-gyp/bin/node-gyp.js rebuild --nodedir="$npm_config_nodedir" >>"$work/asan-build.log" 2>&1
  ) || {
    echo "sanitize: asan+ubsan: FAILED to build (log follows)"
    tail -40 "$work/asan-build.log"
    return 1
  }
  local addon
  addon=$(cd "$pkg" && node -e 'process.stdout.write(require("node-gyp-build").path(process.cwd()))') || return 1
  if [ "$addon" != "$pkg/build/Release/native_file_lock.node" ] || ! ldd "$addon" | grep -q libasan; then
    echo "sanitize: asan+ubsan: FAILED: the copy would load $addon, which is not the sanitized build"
    ldd "$addon" 2>&1 | sed 's/^/    /'
    tail -20 "$work/asan-build.log" | sed 's/^/    /'
    return 1
  fi
  local libasan
  libasan=$(gcc -print-file-name=libasan.so)
  local start=$SECONDS status
  (
    cd "$pkg" &&
      LD_PRELOAD=$libasan \
        ASAN_OPTIONS="detect_leaks=0:log_path=$logs/asan:abort_on_error=1" \
        UBSAN_OPTIONS="halt_on_error=1:print_stacktrace=1:log_path=$logs/ubsan" \
        node node_modules/vitest/vitest.mjs run --reporter=dot --reporter=json --outputFile.json="$work/asan-report.json"
  ) >"$log" 2>&1
  status=$?
  local summary reports
  summary=$(node -e '
    try {
      const r = JSON.parse(require("fs").readFileSync(process.argv[1], "utf8"));
      console.log(`${r.numPassedTests} passed, ${r.numFailedTests} failed in ${r.testResults.length} files`);
    } catch { console.log("no vitest report"); }' "$work/asan-report.json")
  reports=$(find "$logs" -type f | wc -l)
  if [ "$status" -eq 0 ] && [ "$reports" -eq 0 ]; then
    echo "sanitize: asan+ubsan vitest: PASS ($summary, 0 sanitizer reports, $((SECONDS - start)) s)"
    return 0
  fi
  echo "sanitize: asan+ubsan vitest: FAILED ($summary, exit $status, $reports sanitizer reports, $((SECONDS - start)) s)"
  for f in $(find "$logs" -type f | head -5); do
    echo "--- $f"
    head -60 "$f"
  done
  tail -60 "$log"
  return 1
}

# --- leg 2: valgrind -------------------------------------------------------------
write_smoke() {
  cat >"$work/smoke.mjs" <<'EOF'
// Every native path once or a few times: lock and unlock, in-process handover,
// a native wait for another process, timeout and abort during that wait,
// error paths, worker_threads (including one ending while it holds the lock).
import { spawn } from 'node:child_process';
import { mkdirSync, mkdtempSync, rmSync, symlinkSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Worker } from 'node:worker_threads';

const index = process.argv[2];
const { lock, tryLock, withFileLock, LockTimeoutError, FileLockError } = await import(index);
const dir = mkdtempSync(join(tmpdir(), 'nfl-smoke-'));
const res = join(dir, 'data');
const sleep = (ms) => new Promise((r) => setTimeout(r, ms));
const check = (ok, what) => {
  if (!ok) throw new Error('smoke check failed: ' + what);
};
let operations = 0;

// flock(1) or a Python record lock holding the lock file for ms, from another process.
function outsideHolder(ms) {
  const py =
    process.env.NATIVE_FILE_LOCK_TEST_LOCK_KIND === 'fcntl'
      ? 'import fcntl, os, sys, time\nfd = os.open(sys.argv[1], os.O_RDWR | os.O_CREAT)\nfcntl.lockf(fd, fcntl.LOCK_EX)\nprint("held", flush=True)\ntime.sleep(float(sys.argv[2]))'
      : 'import fcntl, os, sys, time\nfd = os.open(sys.argv[1], os.O_RDWR | os.O_CREAT)\nfcntl.flock(fd, fcntl.LOCK_EX)\nprint("held", flush=True)\ntime.sleep(float(sys.argv[2]))';
  const { LD_PRELOAD, ...env } = process.env;
  const child = spawn('python3', ['-c', py, res + '.lock', String(ms / 1000)], { stdio: ['ignore', 'pipe', 'inherit'], env });
  const exited = new Promise((r) => child.once('close', r));
  // Wrapped: resolving with the exit promise itself would wait for the exit.
  return new Promise((resolve) => child.stdout.once('data', () => resolve({ exited })));
}

try {
  for (let i = 0; i < 20; i++) {
    await withFileLock(res, () => operations++);
    const held = await tryLock(res);
    check(held !== undefined, 'tryLock on a free lock');
    await held.release();
    await held.release();
    operations++;
  }
  let inside = 0;
  await Promise.all(
    Array.from({ length: 6 }, () =>
      withFileLock(res, async () => {
        check(++inside === 1, 'one holder at a time');
        await sleep(1);
        inside--;
        operations++;
      }),
    ),
  );
  const holder = await lock(res);
  check((await tryLock(res)) === undefined, 'tryLock while held');
  check((await lock(res, { timeout: 5 }).catch((e) => e)) instanceof LockTimeoutError, 'in-process timeout');
  await holder.release();

  // Native waits on a lock held by another process.
  const { exited } = await outsideHolder(1500);
  check((await lock(res, { timeout: 100 }).catch((e) => e)) instanceof LockTimeoutError, 'timeout in a native wait');
  const controller = new AbortController();
  setTimeout(() => controller.abort(new Error('stop')), 100);
  check((await lock(res, { signal: controller.signal }).catch((e) => e))?.message === 'stop', 'abort of a native wait');
  const waited = await lock(res);
  operations++;
  await waited.release();
  await exited;

  // Error paths.
  symlinkSync(join(dir, 'elsewhere'), join(dir, 'link.lock'));
  check((await lock(join(dir, 'link')).catch((e) => e))?.code === 'ELOOP', 'ELOOP');
  mkdirSync(join(dir, 'dir.lock'));
  check((await lock(join(dir, 'dir')).catch((e) => e))?.code === 'EISDIR', 'EISDIR');
  check((await lock(join(dir, 'n'.repeat(300))).catch((e) => e)) instanceof FileLockError, 'ENAMETOOLONG');
  check((await lock(join(dir, 'missing', 'x')).catch((e) => e))?.code === 'ENOENT', 'ENOENT');

  // worker_threads: two take turns, one ends while holding.
  const workerCode = `
    const { workerData, parentPort } = require('node:worker_threads');
    import(workerData.index).then(async ({ withFileLock, lock }) => {
      for (let i = 0; i < 5; i++) await withFileLock(workerData.res, () => new Promise((r) => setTimeout(r, 1)));
      if (workerData.endHolding) await lock(workerData.res);
      parentPort.postMessage('done');
    });`;
  await Promise.all(
    [false, false, true].map(
      (endHolding) =>
        new Promise((resolve, reject) => {
          const w = new Worker(workerCode, { eval: true, workerData: { index, res, endHolding } });
          w.once('error', reject);
          w.once('exit', resolve);
        }),
    ),
  );
  const after = await lock(res, { timeout: 10000 });
  await after.release();
  operations++;
  console.log(`smoke ok: ${operations} operations`);
} finally {
  rmSync(dir, { recursive: true, force: true });
}
EOF
}

valgrind_leg() {
  local kind=$1 log=$work/valgrind-$1.log start=$SECONDS status
  local index="file://$ROOT/dist/esm/index.js"
  local env_kind=()
  [ "$kind" = fcntl ] && env_kind=(NATIVE_FILE_LOCK_TEST_LOCK_KIND=fcntl)
  env "${env_kind[@]}" valgrind --error-exitcode=99 --leak-check=no --trace-children=no \
    node "$work/smoke.mjs" "$index" >"$log" 2>&1
  status=$?
  local errors
  errors=$(grep -Eo 'ERROR SUMMARY: [0-9]+' "$log" | tail -1 | grep -Eo '[0-9]+$')
  if [ "$status" -eq 0 ] && grep -q '^smoke ok' "$log"; then
    echo "sanitize: valgrind smoke ($kind): PASS (${errors:-0} errors, $(grep -o '[0-9]* operations' "$log"), $((SECONDS - start)) s)"
    return 0
  fi
  echo "sanitize: valgrind smoke ($kind): FAILED (exit $status, ${errors:-?} errors, $((SECONDS - start)) s)"
  tail -80 "$log"
  return 1
}

asan_leg || failed=1
if ! command -v valgrind >/dev/null; then
  echo "sanitize: valgrind smoke: FAILED (valgrind is not installed: apt-get install -y valgrind)"
  failed=1
else
  write_smoke
  valgrind_leg flock || failed=1
  valgrind_leg fcntl || failed=1
fi

if [ "$(fingerprint)" = "$normal_before" ] && [ -n "$normal_before" ]; then
  echo "sanitize: normal build left in place: yes"
else
  echo "sanitize: normal build left in place: NO (before: ${normal_before:-none}; after: $(fingerprint))"
  failed=1
fi
exit $failed
