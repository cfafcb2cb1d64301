// sync-agent: two `sync-agent start` processes on loopback, configured by env,
// observed through the control server (HTTP over a Unix socket, GET /status,
// the same JSON as `sync-agent status --json`).
import fs from 'node:fs';
import http from 'node:http';
import path from 'node:path';
import { execFileSync } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { BenchError, compareTree, debug, freePort, measurePeers, now, procStats, rmrf, spawnLogged, stopChild, tail, tmpDir, waitFor } from '../lib/util.mjs';
import { place } from '../lib/link.mjs';

const REPO = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..', '..');
const BIN = path.join(REPO, 'packages', 'sync-agent', 'bin', 'sync-agent.js');

const agent = new http.Agent({ keepAlive: true, maxSockets: 1 });

/**
 * glibc's malloc settings (MALLOC_*) as the shipped systemd unit sets them: the agent is
 * measured as it is deployed (the image sets the same; test/docker-files.test.ts). Each can be
 * overridden from the environment.
 */
function shippedMallocEnv() {
  const unit = fs.readFileSync(path.join(REPO, 'docker', 'systemd', 'sync-agent.service'), 'utf8');
  const env = {};
  for (const [, name, value] of unit.matchAll(/^Environment=(MALLOC_[A-Z_]+)=(\S+)$/gm)) env[name] = process.env[name] ?? value;
  if (Object.keys(env).length === 0) throw new BenchError('docker/systemd/sync-agent.service sets no MALLOC_* variables');
  return env;
}

function status(socketPath) {
  return new Promise((resolve, reject) => {
    const req = http.request({ socketPath, agent, path: '/status', method: 'GET', timeout: 5000 }, (res) => {
      let body = '';
      res.setEncoding('utf8');
      res.on('data', (c) => { body += c; });
      res.on('end', () => {
        if (res.statusCode !== 200) return reject(new Error(`GET /status: HTTP ${res.statusCode} ${body.slice(0, 200)}`));
        try { resolve(JSON.parse(body)); } catch (e) { reject(new Error(`GET /status: bad JSON: ${body.slice(0, 200)}`)); }
      });
    });
    req.on('timeout', () => req.destroy(new Error('GET /status: timeout')));
    req.on('error', reject);
    req.end();
  });
}

export function create() {
  let tmp, secret, A, B, corpus, cpuAAtStart;
  const mallocEnv = shippedMallocEnv();
  const procs = [];

  const exitedCheck = (node) => {
    if (node.proc.exitCode !== null || node.proc.signalCode !== null) {
      throw new BenchError(`sync-agent ${node.name} exited (${node.proc.exitCode ?? node.proc.signalCode}):\n${tail(node.log)}`);
    }
  };

  function startNode(node, folder, peer) {
    // e.g. BENCH_AGENT_NODE_ARGS="--cpu-prof --cpu-prof-dir=/tmp/prof" to profile the agents
    const nodeArgs = (process.env.BENCH_AGENT_NODE_ARGS || '').split(/\s+/).filter(Boolean);
    // B runs on its side of the link (`--link`; on loopback both run here)
    const [cmd, args] = node === B ? place.asB(process.execPath, [...nodeArgs, BIN, 'start']) : [process.execPath, [...nodeArgs, BIN, 'start']];
    node.proc = spawnLogged(cmd, args, {
      logFile: node.log,
      cwd: tmp,
      env: {
        ...process.env,
        HOME: `${tmp}/home`,
        SYNC_AGENT_FOLDER: folder,
        SYNC_AGENT_DATA: node.data,
        SYNC_AGENT_SECRET: secret,
        SYNC_AGENT_LISTEN: `${node === B ? place.hostB : place.hostA}:${node.port}`,
        ...(peer ? { SYNC_AGENT_PEERS: `${place.hostA}:${peer.port}` } : {}),
        SYNC_AGENT_LOG_LEVEL: process.env.SYNC_AGENT_LOG_LEVEL || 'warn',
        SYNC_AGENT_CONTROL: node.control,
        // as the shipped systemd unit and image run it (docker/): glibc's malloc settings
        ...mallocEnv,
      },
    });
    procs.push(node.proc);
  }

  return {
    name: 'sync-agent',
    ignore: [],

    async check() {
      if (!fs.existsSync(BIN)) return `missing: ${path.relative(REPO, BIN)} (run pnpm build)`;
      try {
        const out = execFileSync(process.execPath, [BIN, 'secret', 'new'], { encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'], timeout: 20000 }).trim();
        if (!out || out.includes('\n')) return `\`sync-agent secret new\` printed ${JSON.stringify(out.slice(0, 200))}, expected one line`;
      } catch (e) {
        return `\`sync-agent secret new\` failed (run pnpm build?): ${(e.stderr || e.message || '').toString().trim().split('\n').slice(-5).join('\n')}`;
      }
      return null;
    },

    version() {
      try { return JSON.parse(fs.readFileSync(path.join(REPO, 'packages', 'sync-agent', 'package.json'), 'utf8')).version; } catch { return null; }
    },

    async setupA(dirA, c, { deadline }) {
      corpus = c;
      tmp = tmpDir('sync-agent');
      fs.mkdirSync(`${tmp}/home`);
      secret = execFileSync(process.execPath, [BIN, 'secret', 'new'], { encoding: 'utf8' }).trim();
      A = { name: 'A', data: `${tmp}/a-data`, log: `${tmp}/a.log`, control: `${tmp}/a.sock`, port: await freePort() };
      B = { name: 'B', data: `${tmp}/b-data`, log: `${tmp}/b.log`, control: `${tmp}/b.sock`, port: await freePort() };
      // A has no peers to dial (B dials A): with a configured peer, `ready` waits for
      // the first exchange with it, and A must be ready before B exists.
      startNode(A, dirA, null);
      await waitFor(`sync-agent A to index ${corpus.files} files`, async () => {
        exitedCheck(A);
        const s = await status(A.control);
        A.lastStatus = s;
        return s.ready === true && s.files === corpus.files;
      }, { deadline, interval: 50, onTimeout: () => `A status: ${JSON.stringify(A.lastStatus)}\n${tail(A.log)}` });
    },

    async startB(dirB) {
      B.dir = dirB;
      cpuAAtStart = procStats(A.proc.pid)?.cpu ?? null;
      startNode(B, dirB, A);
    },

    async waitComplete({ deadline }) {
      const complete = await waitFor(`sync-agent B to receive ${corpus.files} files`, async () => {
        exitedCheck(B); exitedCheck(A);
        const askedAt = Date.now();
        const s = await status(B.control);
        const seenAt = now();
        B.lastStatus = s;
        // BENCH_TRACE_POLLS=1: every poll of B on stderr (wall clock, to line up with B's log)
        if (process.env.BENCH_TRACE_POLLS) console.error(`[poll] ${new Date(askedAt).toISOString()} +${Date.now() - askedAt} ms pending=${s.pending} files=${s.files} inSync=${s.inSync} ready=${s.ready}`);
        if (s.ready === true && B.readyAt == null) B.readyAt = seenAt;
        if (s.inSync === true && s.files === corpus.files && B.inSyncAt == null) B.inSyncAt = seenAt;
        debug(() => `B: ${JSON.stringify(s)}`);
        // complete: every file of A's applied here and nothing waiting (Syncthing's needFiles 0
        // and localFiles = globalFiles); `inSync` comes after the rescan that ends a bulk sync
        // (it looks for what was edited here meanwhile), recorded below, outside the clock
        if (!(s.pending === 0 && s.files === corpus.files)) return false;
        // B says it is done: check its tree (names, sizes, total bytes); the sync took until
        // B said so, not until this check (the harness's own walk) ends
        return compareTree(B.dir, corpus) === null && seenAt;
      }, { deadline, interval: 50, onTimeout: () => `B status: ${JSON.stringify(B.lastStatus)}\nB tree: ${compareTree(B.dir, corpus)}\n--- A log:\n${tail(A.log, 15)}\n--- B log:\n${tail(B.log, 15)}` });
      await waitFor('sync-agent B to say inSync', async () => {
        exitedCheck(B);
        if (B.inSyncAt != null) return true;
        const s = await status(B.control);
        if (s.inSync === true && s.files === corpus.files) B.inSyncAt = now();
        return B.inSyncAt != null;
      }, { deadline, interval: 10, onTimeout: () => `B status: ${JSON.stringify(B.lastStatus)}` });
      return complete;
    },

    /** when B first said inSync (the agent's own word that nothing is left, local edits included), or null */
    settledAt() {
      return B?.inSyncAt ?? null;
    },

    /** when B first said ready (the bench's clock), or null */
    readyAt() {
      return B?.readyAt ?? null;
    },

    /** bytes B received on its peer connections (Noise framing included), from its status */
    async receivedBytesB() {
      return (await status(B.control)).transfer.receivedBytes;
    },

    async measure() {
      return measurePeers({ procA: A.proc, procB: B.proc, cpuAAtStart, dataA: A.data, dataB: B.data });
    },

    async stop() {
      await Promise.all(procs.map((p) => stopChild(p, 5000)));
      // e.g. BENCH_KEEP_LOGS=/tmp/logs with BENCH_AGENT_NODE_ARGS=--trace-gc: the agents' output is kept there
      const keep = process.env.BENCH_KEEP_LOGS;
      if (keep && A && B) {
        fs.mkdirSync(keep, { recursive: true });
        for (const node of [A, B]) if (fs.existsSync(node.log)) fs.copyFileSync(node.log, path.join(keep, `${node.name.toLowerCase()}.log`));
      }
      await rmrf(tmp);
    },
  };
}
