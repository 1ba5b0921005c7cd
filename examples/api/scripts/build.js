'use strict';
// Build step: syntax-check the sources and copy them to dist/, the only
// application directory the runtime image receives (tests and scripts stay
// in the build stage).
const { execFileSync } = require('node:child_process');
const fs = require('node:fs');
const path = require('node:path');

const root = path.resolve(__dirname, '..');
const src = path.join(root, 'src');
const dist = path.join(root, 'dist');

fs.rmSync(dist, { recursive: true, force: true });
fs.mkdirSync(dist);
for (const name of fs.readdirSync(src).sort()) {
  if (!name.endsWith('.js')) continue;
  const file = path.join(src, name);
  execFileSync(process.execPath, ['--check', file], { stdio: 'inherit' });
  fs.copyFileSync(file, path.join(dist, name));
  console.log(`built dist/${name}`);
}
