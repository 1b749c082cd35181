// A build step that must not run twice at once: it empties dist/ and fills it
// again. It notices an overlapping run by a marker file created exclusively
// and fails then, the way a real build fails in a half-deleted output folder.
import { appendFileSync, existsSync, mkdirSync, rmSync, writeFileSync } from 'node:fs';

const marker = 'dist/.building';
mkdirSync('dist', { recursive: true });
try {
  writeFileSync(marker, String(process.pid), { flag: 'wx' });
} catch {
  appendFileSync('build.log', `overlap ${process.pid}\n`);
  console.error('build.mjs: another build is running in dist/');
  process.exit(1);
}
appendFileSync('build.log', `start ${process.pid}\n`);
for (const name of ['app.js', 'app.css']) rmSync(`dist/${name}`, { force: true });
// The work. BUILD_WAIT_FOR (for the test) makes it last until that file exists.
const until = process.env.BUILD_WAIT_FOR;
do await new Promise((resolve) => setTimeout(resolve, until ? 20 : 500));
while (until && !existsSync(until));
writeFileSync('dist/app.js', `// built by ${process.pid}\n`);
writeFileSync('dist/app.css', `/* built by ${process.pid} */\n`);
appendFileSync('build.log', `end ${process.pid}\n`);
rmSync(marker);
