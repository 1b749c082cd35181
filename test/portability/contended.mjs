// The contended scenario where the benchmark's workers cannot run (they talk
// over pipes, which Wine cannot give Windows Node from Linux): N processes
// each take the lock `cycles` times and read-increment-write a counter file
// inside it. Results travel as files. Prints throughput, the worst single
// wait, the finish spread and CPU per acquisition; exits 1 on a lost update.
//
//   node portability/contended.mjs [processes=4] [cycles=500]
// (from a project where native-file-lock is installed, as the matrix does)
import { existsSync, openSync, readFileSync, readSync, writeFileSync, writeSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';

import { withFileLock } from 'native-file-lock';

import { inTempDir, spawnRuntime, until, waitForFile } from './harness.mjs';

const WIDTH = 20;
const [mode, ...rest] = process.argv.slice(2);

if (mode === 'worker') {
  const [dir, id, cycles] = rest;
  const counter = openSync(join(dir, 'counter'), 'r+');
  const buf = Buffer.alloc(WIDTH);
  writeFileSync(join(dir, `ready-${id}`), '');
  await waitForFile(join(dir, 'go'), 60_000);
  const waits = [];
  const cpu0 = process.cpuUsage();
  const t0 = performance.now();
  for (let i = 0; i < Number(cycles); i++) {
    const asked = performance.now();
    await withFileLock(join(dir, 'resource'), () => {
      waits.push(performance.now() - asked);
      if (readSync(counter, buf, 0, WIDTH, 0) !== WIDTH) throw new Error('short read of the counter file');
      writeSync(counter, String(Number(buf.toString('latin1')) + 1).padStart(WIDTH, '0'), 0, 'latin1');
    });
  }
  const elapsed = performance.now() - t0;
  const cpu = process.cpuUsage(cpu0);
  writeFileSync(join(dir, `result-${id}.json`), JSON.stringify({ elapsed, cpuUs: cpu.user + cpu.system, waits }));
} else {
  const processes = Number(mode ?? 4);
  const cycles = Number(rest[0] ?? 500);
  await inTempDir(async (dir) => {
    writeFileSync(join(dir, 'counter'), '0'.padStart(WIDTH, '0'));
    const script = fileURLToPath(import.meta.url);
    const peers = Array.from({ length: processes }, (_, id) => spawnRuntime(script, ['worker', dir, String(id), String(cycles)]));
    await until(() => peers.every((_, id) => existsSync(join(dir, `ready-${id}`))), 'every worker to be ready', 120_000);
    const start = performance.now();
    writeFileSync(join(dir, 'go'), '');
    const codes = await Promise.all(peers.map((p) => p.exited));
    const wall = performance.now() - start;
    const results = peers.map((_, id) => JSON.parse(readFileSync(join(dir, `result-${id}.json`), 'utf8')));
    const total = Number(readFileSync(join(dir, 'counter'), 'latin1'));
    const waits = results.flatMap((r) => r.waits).sort((a, b) => a - b);
    const finishes = results.map((r) => r.elapsed);
    const cpuUs = results.reduce((s, r) => s + r.cpuUs, 0);
    const q = (p) => waits[Math.min(waits.length - 1, Math.floor(p * waits.length))];
    console.log(`# ${process.platform}-${process.arch} node ${process.version}: ${processes} processes x ${cycles} cycles`);
    console.log(`throughput ${(total / (wall / 1000)).toFixed(0)} acquisitions/s (${total} in ${wall.toFixed(0)} ms)`);
    console.log(`wait p50 ${q(0.5).toFixed(2)} ms, p99 ${q(0.99).toFixed(2)} ms, max ${waits[waits.length - 1].toFixed(1)} ms`);
    console.log(`finish spread (slowest/fastest) ${(Math.max(...finishes) / Math.min(...finishes)).toFixed(2)}x`);
    console.log(`CPU ${(cpuUs / total).toFixed(0)} us per acquisition (all processes)`);
    if (codes.some((c) => c !== 0) || total !== processes * cycles) {
      console.log(`FAILED: exit codes ${codes.join(',')}, counter ${total} (expected ${processes * cycles})`);
      process.exitCode = 1;
    }
  });
}
