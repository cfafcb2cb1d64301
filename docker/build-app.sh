#!/bin/sh
# Builds the agent and writes a self-contained production copy (compiled JS, production
# dependencies, native prebuilds for this platform only) to OUT. Used by the Dockerfile's
# build stage, and by the tests, which run it the same way.
#   usage: docker/build-app.sh OUT
set -eu
out=${1:?usage: build-app.sh OUT}
cd "$(dirname "$0")/.."
if [ -e "$out" ]; then
  echo "build-app.sh: $out already exists; give a new directory" >&2
  exit 2
fi
# the build without its type check (`pnpm build:emit`, tsc --noCheck): the image needs the
# JavaScript, and CI type-checks these sources. isolatedModules + verbatimModuleSyntax make each
# file's output independent of types, so it is the same JavaScript (checked 2026-12-03: every
# file of dist/ byte for byte), in half the CPU (tsc 10.7 s against 19.2 s on 2 cores)
pnpm build:emit
pnpm --filter sync-agent deploy --prod --legacy "$out"
# what the deploy copies but a running agent never reads
rm -rf "$out/src" "$out/test" "$out/tsconfig.json" "$out/tsconfig.tsbuildinfo"
# Holepunch modules ship prebuilds for every OS and CPU (rocksdb-native alone ~160 MB): keep ours
platform=$(node -p 'process.platform + "-" + process.arch')
find "$out/node_modules" -type d -path '*/prebuilds/*' -prune ! -name "$platform" -exec rm -rf {} +
# smoke test: the copy runs on its own (the native addons the bundles leave as requires resolve
# in this copy), and loads both bundles (main.cjs for start, cli.cjs for the rest) with the
# code cache the build wrote for each
node "$out/bin/sync-agent.js" secret new >/dev/null
node "$out/bin/sync-agent.js" --version >/dev/null
(cd "$out" && NODE_OPTIONS='' node -e "const l = require('./bin/bundle-loader.cjs'); for (const b of ['main', 'cli']) { l.load(b); if (l.lastLoad.codeCache !== 'used') { console.error('build-app.sh: ' + b + '.cjs loaded without its code cache (' + l.lastLoad.codeCache + ')'); process.exit(1) } }")
