#!/usr/bin/env bash
# Copies the built CLI (bin + dist of both packages) to a temp dir and prints the bin path, so a
# long `pnpm test:faults` run (SYNC_AGENT_IT_BIN=<path>) is not disturbed by later rebuilds.
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
snap=$(mktemp -d "${TMPDIR:-/tmp}/sa-faults-build-XXXXXX")
mkdir -p "$snap/packages"
cp -a "$root/packages/sync-agent" "$root/packages/shared" "$snap/packages/"
ln -s "$root/node_modules" "$snap/node_modules"
echo "$snap/packages/sync-agent/bin/sync-agent.js"
