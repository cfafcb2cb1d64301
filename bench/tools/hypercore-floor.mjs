// hypercore floor: not a sync tool but the bound of the stack sync-agent is built on. Peer A
// imports the corpus into an encrypted Hyperdrive with sync-agent's block layout and storage
// settings and serves it
// over TCP + Noise; fresh peer B replicates it and writes every file with 64 writers, with
// nothing else (no merge, version vectors, temp files, crash safety, watcher or priorities).
// See hypercore-floor-peer.mjs. Initial sync only: it has no way to follow later changes.
import fs from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { createFloorTool } from '../lib/floor-tool.mjs';

const REPO = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..', '..');
const PEER = path.join(path.dirname(fileURLToPath(import.meta.url)), 'hypercore-floor-peer.mjs');
const DIST = path.join(REPO, 'packages', 'sync-agent', 'dist', 'own-drive-writer.js');

export function create() {
  return createFloorTool({
    name: 'hypercore-floor',
    peer: PEER,
    seedArgs: (dirA, tmp) => ['seed', dirA, `${tmp}/a-store`],
    fetchArgs: (dirB, tmp, seed) => ['fetch', dirB, `${tmp}/b-store`, String(seed.port), seed.key, seed.encryptionKey],
    stores: (tmp) => ({ dataA: `${tmp}/a-store`, dataB: `${tmp}/b-store` }),
    async check() {
      if (!fs.existsSync(DIST)) return `missing: ${path.relative(REPO, DIST)} (run pnpm build)`;
      return null;
    },
    version() {
      try { return JSON.parse(fs.readFileSync(path.join(REPO, 'node_modules', '.pnpm', 'node_modules', 'hypercore', 'package.json'), 'utf8')).version; } catch { return null; }
    },
  });
}
