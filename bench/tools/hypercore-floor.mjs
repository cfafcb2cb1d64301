// hypercore floor: not a sync tool but the bound of the stack sync-agent is built on. Peer A
// imports the corpus into an encrypted Hyperdrive with sync-agent's block layout and storage
// settings and serves it
// over TCP + Noise; fresh peer B replicates it and writes every file with 64 writers, with
// nothing else (no merge, version vectors, temp files, crash safety, watcher or priorities).
// See hypercore-floor-peer.mjs. Initial sync only: it has no way to follow later changes.
import fs from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { BenchError, measurePeers, procStats, rmrf, spawnLogged, stopChild, tail, tmpDir, waitFor } from '../lib/util.mjs';

const REPO = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..', '..');
const PEER = path.join(path.dirname(fileURLToPath(import.meta.url)), 'hypercore-floor-peer.mjs');
const DIST = path.join(REPO, 'packages', 'sync-agent', 'dist', 'own-drive-writer.js');

/** The first JSON line a peer printed to its log, or null. */
function jsonLine(file) {
  let text;
  try { text = fs.readFileSync(file, 'utf8'); } catch { return null; }
  for (const line of text.split('\n')) {
    if (line.startsWith('{')) { try { return JSON.parse(line); } catch {} }
  }
  return null;
}

export function create() {
  let tmp, A, B, corpus, cpuAAtStart, seedInfo;
  const exited = (node) => {
    if (node.proc.exitCode !== null || node.proc.signalCode !== null) {
      throw new BenchError(`hypercore-floor ${node.name} exited (${node.proc.exitCode ?? node.proc.signalCode}):\n${tail(node.log)}`);
    }
  };
  return {
    name: 'hypercore-floor',
    ignore: [],
    initialSyncOnly: true,

    async check() {
      if (!fs.existsSync(DIST)) return `missing: ${path.relative(REPO, DIST)} (run pnpm build)`;
      return null;
    },

    version() {
      try { return JSON.parse(fs.readFileSync(path.join(REPO, 'node_modules', '.pnpm', 'node_modules', 'hypercore', 'package.json'), 'utf8')).version; } catch { return null; }
    },

    async setupA(dirA, c, { deadline }) {
      corpus = c;
      tmp = tmpDir('hypercore-floor');
      A = { name: 'A', log: `${tmp}/a.log`, store: `${tmp}/a-store` };
      B = { name: 'B', log: `${tmp}/b.log`, store: `${tmp}/b-store` };
      A.proc = spawnLogged(process.execPath, [PEER, 'seed', dirA, A.store], { logFile: A.log });
      await waitFor('the hypercore-floor seeder to import the corpus', () => {
        exited(A);
        seedInfo = jsonLine(A.log);
        return seedInfo !== null;
      }, { deadline, interval: 50, onTimeout: () => tail(A.log) });
    },

    async startB(dirB) {
      cpuAAtStart = procStats(A.proc.pid)?.cpu ?? null;
      B.proc = spawnLogged(process.execPath, [PEER, 'fetch', dirB, B.store, String(seedInfo.port), seedInfo.key, seedInfo.encryptionKey], { logFile: B.log });
    },

    async waitComplete({ deadline }) {
      await waitFor(`hypercore-floor B to write ${corpus.files} files`, () => {
        exited(B); exited(A);
        const done = jsonLine(B.log);
        if (!done) return false;
        if (done.files !== corpus.files || done.bytes !== corpus.bytes) throw new BenchError(`hypercore-floor B wrote ${done.files} files / ${done.bytes} B, expected ${corpus.files} / ${corpus.bytes}`);
        return true;
      }, { deadline, interval: 50, onTimeout: () => `--- A log:\n${tail(A.log, 15)}\n--- B log:\n${tail(B.log, 15)}` });
    },

    async measure() {
      return measurePeers({ procA: A.proc, procB: B.proc, cpuAAtStart, dataA: A.store, dataB: B.store });
    },

    async stop() {
      await Promise.all([A?.proc, B?.proc].filter(Boolean).map((p) => stopChild(p, 5000)));
      if (tmp) await rmrf(tmp);
    },
  };
}
