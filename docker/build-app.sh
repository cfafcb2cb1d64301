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
pnpm build
pnpm --filter sync-agent deploy --prod --legacy "$out"
# what the deploy copies but a running agent never reads
rm -rf "$out/src" "$out/test" "$out/tsconfig.json" "$out/tsconfig.tsbuildinfo"
# Holepunch modules ship prebuilds for every OS and CPU (rocksdb-native alone ~160 MB): keep ours
platform=$(node -p 'process.platform + "-" + process.arch')
find "$out/node_modules" -type d -path '*/prebuilds/*' -prune ! -name "$platform" -exec rm -rf {} +
# smoke test: the copy runs on its own, and every chunk of the bundle loads (the native addons
# it leaves as imports resolve in this copy; `secret new` alone does not load the daemon's)
node "$out/bin/sync-agent.js" secret new >/dev/null
node "$out/bin/sync-agent.js" --version >/dev/null
(cd "$out" && node --input-type=module -e "import { readdirSync } from 'node:fs'; for (const f of readdirSync('dist/bundle')) if (f.endsWith('.js')) await import('./dist/bundle/' + f)")
