// Noise floor: not a sync tool but the least any safe design pays on this stack: the corpus
// pushed unasked over TCP + Noise (@hyperswarm/secret-stream), every file checked against its
// sha256 and placed atomically (temp file, mtime and mode, rename), on one thread with
// synchronous calls. No index, merge, journal, requests, watcher. See noise-floor-peer.mjs.
// Initial sync only.
import fs from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { createFloorTool } from '../lib/floor-tool.mjs';

const REPO = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..', '..');
const PEER = path.join(path.dirname(fileURLToPath(import.meta.url)), 'noise-floor-peer.mjs');
const SECRET_STREAM = path.join(REPO, 'node_modules', '.pnpm', 'node_modules', '@hyperswarm', 'secret-stream', 'package.json');
const DIST = path.join(REPO, 'packages', 'sync-agent', 'dist', 'priority', 'priority-classes.js');

export function create() {
  return createFloorTool({
    name: 'noise-floor',
    peer: PEER,
    seedArgs: (dirA) => ['seed', dirA],
    fetchArgs: (dirB, tmp, seed, corpus) => ['fetch', dirB, String(seed.port), String(corpus.files)],
    async check() {
      if (!fs.existsSync(SECRET_STREAM)) return 'missing: @hyperswarm/secret-stream (run pnpm install)';
      if (!fs.existsSync(DIST)) return `missing: ${path.relative(REPO, DIST)} (run pnpm build)`;
      return null;
    },
    version() {
      try { return JSON.parse(fs.readFileSync(SECRET_STREAM, 'utf8')).version; } catch { return null; }
    },
  });
}
