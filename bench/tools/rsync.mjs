// rsync baseline: an rsync daemon on 127.0.0.1 (or A's end of `--link`) serves A's folder
// read-only; B is a plain `rsync -a rsync://HOST:PORT/mod/ B/` pull into an empty dir.
// CPU and peak RSS come from GNU time (`/usr/bin/time -f '%e %U %S %M'`) wrapped
// around the client and around the daemon (which reaps its per-connection
// children, so their usage is included).
import fs from 'node:fs';
import net from 'node:net';
import { execFileSync } from 'node:child_process';
import { BenchError, freePort, now, procStats, rmrf, spawnLogged, stopChild, tail, waitExit, tmpDir, waitFor, warmTree, which } from '../lib/util.mjs';
import { place } from '../lib/link.mjs';

const TIME = '/usr/bin/time';
const TIME_FMT = '%e %U %S %M';

function readTime(file) {
  // GNU time may prefix "Command exited with non-zero status N" / "Command terminated by signal N".
  const lines = fs.readFileSync(file, 'utf8').trim().split('\n');
  const [wall, user, sys, maxrss] = lines[lines.length - 1].trim().split(/\s+/).map(Number);
  if (![wall, user, sys, maxrss].every(Number.isFinite)) throw new Error(`cannot parse ${file}: ${lines.join(' | ')}`);
  return { wall, cpu: user + sys, peakRssKiB: maxrss };
}

function tcpOpen(port) {
  return new Promise((resolve) => {
    const s = net.connect({ host: place.hostA, port }, () => { s.destroy(); resolve(true); });
    s.on('error', () => resolve(false));
  });
}

export function create() {
  let tmp, daemon, client, clientExitAt, port, dirB;
  let resyncReceived = 0;
  return {
    name: 'rsync',
    ignore: [],

    async check() {
      const missing = [];
      if (!which('rsync')) missing.push('rsync (apt-get install -y rsync)');
      if (!fs.existsSync(TIME)) missing.push(`${TIME} (apt-get install -y time)`);
      return missing.length ? `missing: ${missing.join(', ')}` : null;
    },

    version() {
      try { return execFileSync('rsync', ['--version'], { encoding: 'utf8' }).split('\n')[0].trim(); } catch { return null; }
    },

    async setupA(dirA, corpus, { deadline }) {
      tmp = tmpDir('rsync');
      port = await freePort();
      const root = process.getuid?.() === 0;
      const conf = [
        'use chroot = no',
        `pid file = ${tmp}/rsyncd.pid`,
        `log file = ${tmp}/rsyncd.log`,
        ...(root ? ['uid = 0', 'gid = 0'] : []),
        '[mod]',
        `  path = ${dirA}`,
        '  read only = yes',
        '  list = yes',
      ].join('\n') + '\n';
      fs.writeFileSync(`${tmp}/rsyncd.conf`, conf);
      daemon = spawnLogged(TIME, ['-f', TIME_FMT, '-o', `${tmp}/daemon.time`,
        'rsync', '--daemon', '--no-detach', `--config=${tmp}/rsyncd.conf`, `--address=${place.hostA}`, `--port=${port}`],
      { logFile: `${tmp}/daemon.out` });
      await waitFor('rsync daemon to listen', async () => {
        if (daemon.exitCode !== null) throw new BenchError(`rsync daemon exited early:\n${tail(`${tmp}/daemon.out`)}\n${tail(`${tmp}/rsyncd.log`)}`);
        return tcpOpen(port);
      }, { deadline });
      // rsync has no index: read A once so its source data is as warm in the
      // page cache as it is for the daemons that hash the folder at startup.
      warmTree(dirA);
    },

    async startB(dir) {
      dirB = dir;
      // B pulls on its side of the link (`--link`)
      client = spawnLogged(...place.asB(TIME, ['-f', TIME_FMT, '-o', `${tmp}/client.time`,
        'rsync', '-a', `rsync://${place.hostA}:${port}/mod/`, `${dirB}/`]), { logFile: `${tmp}/client.out` });
      // the instant the pull ended (the other tools' is the status poll that saw them done)
      client.once('exit', () => (clientExitAt = now()));
    },

    async waitComplete({ deadline }) {
      await waitFor('rsync pull to finish', () => client.exitCode !== null || client.signalCode !== null, {
        deadline, interval: 20,
        onTimeout: () => `client log:\n${tail(`${tmp}/client.out`)}`,
      });
      if (client.exitCode !== 0) {
        throw new BenchError(`rsync client failed (exit ${client.exitCode ?? client.signalCode}):\n${tail(`${tmp}/client.out`)}\n${tail(`${tmp}/rsyncd.log`)}`);
      }
      return clientExitAt ?? now();
    },

    async measure() {
      const c = readTime(`${tmp}/client.time`);
      // the daemon keeps running for the follow-ups: read its figures (and its reaped
      // per-connection children's CPU) from /proc
      const a = procStats(Number(fs.readFileSync(`${tmp}/rsyncd.pid`, 'utf8').trim())) ?? {};
      return { cpuB: c.cpu, peakRssKiBB: c.peakRssKiB, cpuA: a.cpu ?? null, peakRssKiBA: a.peakRssKiB ?? null, dataDirB: null };
    },

    /** rsync has no watcher: one more pull after a change */
    async resync({ deadline }) {
      const run = spawnLogged(...place.asB('rsync', ['-a', '--stats', `rsync://${place.hostA}:${port}/mod/`, `${dirB}/`]), { logFile: `${tmp}/resync.out` });
      await waitFor('rsync re-run to finish', () => run.exitCode !== null || run.signalCode !== null, { deadline, interval: 2 });
      if (run.exitCode !== 0) throw new BenchError(`rsync re-run failed (exit ${run.exitCode ?? run.signalCode}):\n${tail(`${tmp}/resync.out`)}`);
      // "Total bytes received: 1,234" (the pull's own count; the log holds every re-run's: the last)
      const m = [...fs.readFileSync(`${tmp}/resync.out`, 'utf8').matchAll(/Total bytes received: ([\d,]+)/g)].pop();
      if (!m) throw new BenchError(`rsync re-run printed no byte count:\n${tail(`${tmp}/resync.out`)}`);
      resyncReceived += Number(m[1].replaceAll(',', ''));
    },

    /** bytes the re-runs received (the first pull is not counted: only differences are used) */
    async receivedBytesB() {
      return resyncReceived;
    },

    async stop() {
      await stopChild(client, 2000);
      if (daemon && daemon.exitCode === null) {
        try { process.kill(Number(fs.readFileSync(`${tmp}/rsyncd.pid`, 'utf8').trim()), 'SIGTERM'); } catch {}
        await waitExit(daemon, 2000);
      }
      await rmrf(tmp);
    },
  };
}
