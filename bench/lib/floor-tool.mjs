// What the two "floor" baselines share (hypercore-floor.mjs, noise-floor.mjs): not sync tools
// but the bound of a stack, each a pair of peer processes of one script. Peer A is spawned with
// `seedArgs` and prints one JSON line when it is ready to serve; fresh peer B is spawned with
// `fetchArgs` and prints one JSON line ({ files, bytes, … }) when it has written the corpus.
// Both stay up until the bench stops them. Initial sync only.
import fs from 'node:fs';
import path from 'node:path';
import { BenchError, measurePeers, now, procStats, rmrf, spawnLogged, stopChild, tail, tmpDir, waitFor } from './util.mjs';
import { place } from './link.mjs';

/** Every regular file under `dir`, as paths relative to it with `/`. */
export function walkFiles(dir, rel = '', out = []) {
  for (const d of fs.readdirSync(dir, { withFileTypes: true })) {
    const r = rel ? `${rel}/${d.name}` : d.name;
    if (d.isDirectory()) walkFiles(path.join(dir, d.name), r, out);
    else if (d.isFile()) out.push(r);
  }
  return out;
}

/** Both peers learn A's address (loopback, or A's end of `--link`) from the environment. */
const peerEnv = () => ({ ...process.env, BENCH_HOST_A: place.hostA });

/** The first JSON line a peer printed to its log, or null. */
function jsonLine(file) {
  let text;
  try { text = fs.readFileSync(file, 'utf8'); } catch { return null; }
  for (const line of text.split('\n')) {
    if (line.startsWith('{')) { try { return JSON.parse(line); } catch {} }
  }
  return null;
}

/**
 * A bench tool (see run.mjs) for one floor: `peer` is its script; `seedArgs(dirA, tmp)` and
 * `fetchArgs(dirB, tmp, seedInfo, corpus)` the arguments after it; `stores(tmp)` the data dirs
 * of A and B to measure (null: none); `check()` and `version()` as for any tool.
 */
export function createFloorTool({ name, peer, seedArgs, fetchArgs, stores = () => ({ dataA: null, dataB: null }), check, version }) {
  let tmp, A, B, corpus, cpuAAtStart, seedInfo;
  const exited = (node) => {
    if (node.proc.exitCode !== null || node.proc.signalCode !== null) {
      throw new BenchError(`${name} ${node.name} exited (${node.proc.exitCode ?? node.proc.signalCode}):\n${tail(node.log)}`);
    }
  };
  return {
    name,
    ignore: [],
    initialSyncOnly: true,
    check,
    version,

    async setupA(dirA, c, { deadline }) {
      corpus = c;
      tmp = tmpDir(name);
      A = { name: 'A', log: `${tmp}/a.log` };
      B = { name: 'B', log: `${tmp}/b.log` };
      A.proc = spawnLogged(process.execPath, [peer, ...seedArgs(dirA, tmp)], { logFile: A.log, env: peerEnv() });
      await waitFor(`the ${name} seeder to take in the corpus`, () => {
        exited(A);
        seedInfo = jsonLine(A.log);
        return seedInfo !== null;
      }, { deadline, interval: 50, onTimeout: () => tail(A.log) });
    },

    async startB(dirB) {
      cpuAAtStart = procStats(A.proc.pid)?.cpu ?? null;
      // B on its side of the link (`--link`)
      B.proc = spawnLogged(...place.asB(process.execPath, [peer, ...fetchArgs(dirB, tmp, seedInfo, corpus)]), { logFile: B.log, env: peerEnv() });
    },

    async waitComplete({ deadline }) {
      return waitFor(`${name} B to write ${corpus.files} files`, () => {
        exited(B); exited(A);
        const done = jsonLine(B.log);
        const seenAt = now();
        if (!done) return false;
        if (done.files !== corpus.files || done.bytes !== corpus.bytes) throw new BenchError(`${name} B wrote ${done.files} files / ${done.bytes} B, expected ${corpus.files} / ${corpus.bytes}`);
        return seenAt;
      }, { deadline, interval: 50, onTimeout: () => `--- A log:\n${tail(A.log, 15)}\n--- B log:\n${tail(B.log, 15)}` });
    },

    async measure() {
      const { dataA, dataB } = stores(tmp);
      const m = await measurePeers({ procA: A.proc, procB: B.proc, cpuAAtStart, dataA, dataB });
      return { ...m, dataDirA: dataA ? m.dataDirA : null, dataDirB: dataB ? m.dataDirB : null };
    },

    async stop() {
      await Promise.all([A?.proc, B?.proc].filter(Boolean).map((p) => stopChild(p, 5000)));
      if (tmp) await rmrf(tmp);
    },
  };
}
