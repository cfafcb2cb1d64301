// Syncthing baseline: two instances on loopback (or across `--link`) driven through the REST API.
// Config is produced by `syncthing generate` and then edited: static tcp
// addresses on 127.0.0.1, GUI/REST on 127.0.0.1 with a known API key, global
// + local discovery, relays, NAT, usage/crash reporting and auto-upgrade off,
// one sendreceive folder shared by both, fs watcher on with 1 s delay.
import crypto from 'node:crypto';
import fs from 'node:fs';
import http from 'node:http';
import path from 'node:path';
import { execFileSync } from 'node:child_process';
import { BenchError, compareTree, debug, freePort, measurePeers, now, procStats, rmrf, spawnLogged, stopChild, tail, tmpDir, waitFor, which } from '../lib/util.mjs';
import { place } from '../lib/link.mjs';

const FOLDER_ID = 'bench';
const MARKER = '.stfolder';

const xmlEsc = (s) => String(s).replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/>/g, '&gt;').replace(/"/g, '&quot;');

function setTag(xml, tag, value) {
  const re = new RegExp(`<${tag}>[^<]*</${tag}>`);
  if (!re.test(xml)) throw new Error(`config.xml has no <${tag}>`);
  return xml.replace(re, `<${tag}>${xmlEsc(value)}</${tag}>`);
}

function generate(home, env) {
  execFileSync('syncthing', ['generate', `--home=${home}`, '--no-default-folder', '--skip-port-probing'], { env, stdio: 'pipe' });
  const xml = fs.readFileSync(path.join(home, 'config.xml'), 'utf8');
  const id = /<device id="([A-Z0-9-]+)"/.exec(xml)?.[1];
  if (!id) throw new Error(`no device id in ${home}/config.xml`);
  return { xml, id };
}

function writeConfig(node, other, folderPath, apiKey) {
  let xml = node.xml;
  // our own device element (first <device> in the file) and the peer, both with static addresses
  const selfRe = /<device id="[A-Z0-9-]+" name="[^"]*"([\s\S]*?)<\/device>/;
  const selfEl = selfRe.exec(xml)[0];
  const deviceEl = (d, name) => selfEl
    .replace(/id="[A-Z0-9-]+"/, `id="${d.id}"`)
    .replace(/name="[^"]*"/, `name="${name}"`)
    .replace(/<address>[^<]*<\/address>/, `<address>tcp://${d.host}:${d.listenPort}</address>`);
  // folder: start from the generated <defaults><folder>, which has every field
  const defFolder = /<defaults>\s*(<folder [\s\S]*?<\/folder>)/.exec(xml)[1];
  const folderEl = defFolder
    .replace('id=""', `id="${FOLDER_ID}"`)
    .replace('label=""', `label="${FOLDER_ID}"`)
    .replace(/path="[^"]*"/, `path="${xmlEsc(folderPath)}"`)
    .replace(/type="[^"]*"/, 'type="sendreceive"')
    .replace(/fsWatcherEnabled="[^"]*"/, 'fsWatcherEnabled="true"')
    .replace(/fsWatcherDelayS="[^"]*"/, 'fsWatcherDelayS="1"')
    .replace(/<device id="[^"]*" introducedBy="">[\s\S]*?<\/device>/,
      [node, other].map((d) => `<device id="${d.id}" introducedBy=""><encryptionPassword></encryptionPassword></device>`).join('\n            '));
  xml = xml.replace(selfEl, `${folderEl}\n    ${deviceEl(node, node.name)}\n    ${deviceEl(other, other.name)}`);
  xml = xml.replace(/(<gui [^>]*>\s*)<address>[^<]*<\/address>/, `$1<address>${node.host}:${node.guiPort}</address>`);
  xml = setTag(xml, 'apikey', apiKey);
  for (const [tag, val] of [
    ['listenAddress', `tcp://${node.host}:${node.listenPort}`],
    ['globalAnnounceEnabled', 'false'],
    ['localAnnounceEnabled', 'false'],
    ['relaysEnabled', 'false'],
    ['natEnabled', 'false'],
    ['urAccepted', '-1'],
    ['crashReportingEnabled', 'false'],
    ['autoUpgradeIntervalH', '0'],
    ['startBrowser', 'false'],
    // default true lowers Syncthing's CPU/IO priority; off so all tools compete equally
    ['setLowPriority', 'false'],
  ]) xml = setTag(xml, tag, val);
  fs.writeFileSync(path.join(node.home, 'config.xml'), xml);
}

const agent = new http.Agent({ keepAlive: true, maxSockets: 2 });

export function create() {
  let tmp, env, apiKey, A, B, dirA, corpus, cpuAAtStart;
  const procs = [];

  /**
   * One GET of Syncthing's REST API. A keep-alive socket the server closed as idle just as it
   * was reused fails with "socket hang up" (ECONNRESET) before the request reached Syncthing:
   * that one is sent again, once, on a fresh socket (a big-file run failed on it).
   */
  async function rest(node, p) {
    try {
      return await restOnce(node, p);
    } catch (err) {
      if (err.code !== 'ECONNRESET') throw err;
      return restOnce(node, p);
    }
  }

  function restOnce(node, p) {
    return new Promise((resolve, reject) => {
      const req = http.get({ host: node.host, port: node.guiPort, path: p, agent, headers: { 'X-API-Key': apiKey }, timeout: 5000 }, (res) => {
        let body = '';
        res.setEncoding('utf8');
        res.on('data', (c) => { body += c; });
        res.on('end', () => {
          if (res.statusCode !== 200) return reject(new Error(`${p}: HTTP ${res.statusCode} ${body.slice(0, 200)}`));
          try { resolve(JSON.parse(body)); } catch (e) { reject(e); }
        });
      });
      req.on('timeout', () => req.destroy(new Error(`${p}: timeout`)));
      req.on('error', reject);
    });
  }
  const folderStatus = (node) => rest(node, `/rest/db/status?folder=${FOLDER_ID}`);
  const exitedCheck = (node) => {
    if (node.proc.exitCode !== null || node.proc.signalCode !== null) {
      throw new BenchError(`syncthing ${node.name} exited (${node.proc.exitCode ?? node.proc.signalCode}):\n${tail(node.log)}`);
    }
  };

  function startNode(node) {
    const args = ['serve', `--home=${node.home}`, '--no-browser', '--no-restart', '--no-upgrade', '--logflags=3'];
    // B runs on its side of the link (`--link`; its REST API is reached through it)
    node.proc = spawnLogged(...(node === B ? place.asB('syncthing', args) : ['syncthing', args]), { env, logFile: node.log });
    procs.push(node.proc);
  }

  return {
    name: 'syncthing',
    ignore: [MARKER],

    async check() {
      return which('syncthing') ? null : 'missing: syncthing (apt-get install -y syncthing)';
    },

    version() {
      try { return execFileSync('syncthing', ['--version'], { encoding: 'utf8' }).trim().split(' ').slice(0, 2).join(' '); } catch { return null; }
    },

    async setupA(dir, c, { deadline }) {
      dirA = dir; corpus = c;
      tmp = tmpDir('syncthing');
      fs.mkdirSync(`${tmp}/home`);
      env = { ...process.env, HOME: `${tmp}/home`, STNODEFAULTFOLDER: '1', STNOUPGRADE: '1', STNORESTART: '1' };
      apiKey = crypto.randomBytes(16).toString('hex');
      A = { name: 'A', home: `${tmp}/a`, log: `${tmp}/a.log`, host: place.hostA };
      B = { name: 'B', home: `${tmp}/b`, log: `${tmp}/b.log`, host: place.hostB };
      for (const n of [A, B]) {
        Object.assign(n, generate(n.home, env));
        n.listenPort = await freePort();
        n.guiPort = await freePort();
      }
      writeConfig(A, B, dirA, apiKey);
      fs.mkdirSync(path.join(dirA, MARKER), { recursive: true });
      startNode(A);
      await waitFor(`syncthing A to index ${corpus.files} files`, async () => {
        exitedCheck(A);
        const s = await folderStatus(A);
        A.lastStatus = s;
        return s.state === 'idle' && s.localFiles === corpus.files && s.globalFiles === corpus.files;
      }, { deadline, interval: 100, onTimeout: () => `A status: ${JSON.stringify(A.lastStatus)}\n${tail(A.log)}` });
    },

    async startB(dirB) {
      B.dir = dirB;
      writeConfig(B, A, dirB, apiKey);
      fs.mkdirSync(path.join(dirB, MARKER), { recursive: true });
      cpuAAtStart = procStats(A.proc.pid)?.cpu ?? null;
      startNode(B);
    },

    async waitComplete({ deadline }) {
      const complete = await waitFor(`syncthing B to receive ${corpus.files} files`, async () => {
        exitedCheck(B); exitedCheck(A);
        const s = await folderStatus(B);
        const seenAt = now();
        B.lastStatus = s;
        debug(() => `B: state=${s.state} local=${s.localFiles} need=${s.needFiles} global=${s.globalFiles} inSyncBytes=${s.inSyncBytes}`);
        if (s.state === 'idle' && s.needFiles === 0 && s.localFiles === corpus.files && B.idleAt == null) B.idleAt = seenAt;
        // not requiring state idle: after pulling, B's own fs watcher triggers a rescan of what
        // it just wrote (when B is idle again is recorded below, outside the clock)
        if (!(s.needFiles === 0 && s.localFiles === corpus.files && s.globalFiles === corpus.files)) return false;
        // Syncthing says it is done: check B's tree; the sync took until it said so
        return compareTree(B.dir, corpus, [MARKER]) === null && seenAt;
      }, { deadline, interval: 50, onTimeout: () => `B status: ${JSON.stringify(B.lastStatus)}\nB tree: ${compareTree(B.dir, corpus, [MARKER])}\n${tail(B.log)}` });
      await waitFor('syncthing B to be idle', async () => {
        exitedCheck(B);
        if (B.idleAt != null) return true;
        const s = await folderStatus(B);
        if (s.state === 'idle' && s.needFiles === 0) B.idleAt = now();
        return B.idleAt != null;
      }, { deadline, interval: 10, onTimeout: () => `B status: ${JSON.stringify(B.lastStatus)}` });
      return complete;
    },

    /** when B's folder was first idle with nothing needed (its scans done), or null */
    settledAt() {
      return B?.idleAt ?? null;
    },

    /** bytes B received on its connections (Syncthing's own count) */
    async receivedBytesB() {
      return (await rest(B, '/rest/system/connections')).total.inBytesTotal;
    },

    async measure() {
      return measurePeers({ procA: A.proc, procB: B.proc, cpuAAtStart, dataA: A.home, dataB: B.home });
    },

    async stop() {
      await Promise.all(procs.map((p) => stopChild(p, 5000)));
      if (dirA) await rmrf(path.join(dirA, MARKER));
      await rmrf(tmp);
    },
  };
}
