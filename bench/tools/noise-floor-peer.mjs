// One peer of the "Noise floor" baseline (see noise-floor.mjs).
//
//   node noise-floor-peer.mjs seed  <folder>          -> prints {"port","files","bytes"}
//   node noise-floor-peer.mjs fetch <folder> <port> <files> -> prints {"done":true,…}
//
// seed: lists <folder> and hashes every file (sha256, as an index would; before the clock
// starts), then, to the first peer that connects, sends the whole folder over TCP + Noise
// (@hyperswarm/secret-stream, the transport sync-agent uses) as one stream: for each file a
// header (path, size, mtime, mode, sha256) and its bytes, read from the folder as it goes,
// packed into messages of up to MESSAGE_BYTES. In sync-agent's class order (its `wordpress`
// preset: themes, plugins, mu-plugins, languages and root *.php first, then uploads, then the rest).
// fetch: receives that stream and places every file as a sync tool that is safe must, on one
// thread with synchronous calls (the cheapest form on Node): the bytes hashed as they
// arrive and checked against the sha256, written to a temp file in a staging directory,
// mtime and mode set, then renamed into place.
//
// What it leaves out: an index of its own, version vectors, merge, a journal, requests (the
// sender pushes everything unasked), priorities beyond the sort, a watcher. So it is the
// least that any design with encrypted transport, verified content and atomic placement
// pays on this stack and machine.
import fs from 'node:fs';
import net from 'node:net';
import path from 'node:path';
import { createHash } from 'node:crypto';
import { createRequire } from 'node:module';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { walkFiles } from '../lib/floor-tool.mjs';

const REPO = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..', '..');
const requireAgent = createRequire(path.join(REPO, 'packages', 'sync-agent', 'package.json'));
const NoiseSecretStream = requireAgent('@hyperswarm/secret-stream');
// sync-agent's own classes (its `wordpress` preset), so both send the same files first
const { PriorityClasses } = await import(pathToFileURL(path.join(REPO, 'packages', 'sync-agent', 'dist', 'priority', 'priority-classes.js')).href);
const classes = new PriorityClasses('wordpress');
const isCritical = (rel) => classes.classOf(rel) === 0;

export const STAGING = '.noise-floor-staging';
const MESSAGE_BYTES = 256 * 1024;
const [mode, folder, ...rest] = process.argv.slice(2);
// peer A's address: 127.0.0.1, or A's end of the bench's `--link` (bench/lib/link.mjs)
const HOST_A = process.env.BENCH_HOST_A || '127.0.0.1';


/** header: u16 path length, path, f64 size, f64 mtime ms, u16 mode, 32 bytes sha256 */
function header(file) {
  const p = Buffer.from(file.rel);
  const h = Buffer.allocUnsafe(2 + p.length + 8 + 8 + 2 + 32);
  let at = h.writeUInt16BE(p.length, 0);
  at += p.copy(h, at);
  at = h.writeDoubleBE(file.size, at);
  at = h.writeDoubleBE(file.mtimeMs, at);
  at = h.writeUInt16BE(file.mode, at);
  file.hash.copy(h, at);
  return h;
}

async function seed() {
  const files = [];
  let bytes = 0;
  for (const rel of walkFiles(folder)) {
    const abs = path.join(folder, rel);
    const st = fs.statSync(abs);
    files.push({ rel, abs, size: st.size, mtimeMs: st.mtimeMs, mode: st.mode & 0o777, hash: createHash('sha256').update(fs.readFileSync(abs)).digest() });
    bytes += st.size;
  }
  files.sort((a, b) => classes.classOf(a.rel) - classes.classOf(b.rel));
  const server = net.createServer((socket) => {
    const stream = new NoiseSecretStream(false, socket);
    stream.on('error', () => {});
    stream.once('open', () => send(stream, files).catch((err) => console.error(err)));
  });
  await new Promise((resolve) => server.listen(0, HOST_A, resolve));
  console.log(JSON.stringify({ port: server.address().port, files: files.length, bytes }));
}

async function send(stream, files) {
  let parts = [];
  let pending = 0;
  const flush = async () => {
    if (pending === 0) return;
    const ok = stream.write(parts.length === 1 ? parts[0] : Buffer.concat(parts, pending));
    parts = [];
    pending = 0;
    if (!ok) await new Promise((resolve) => stream.once('drain', resolve));
  };
  const push = async (buf) => {
    parts.push(buf);
    pending += buf.length;
    if (pending >= MESSAGE_BYTES) await flush();
  };
  for (const file of files) {
    await push(header(file));
    const fd = fs.openSync(file.abs, 'r');
    try {
      for (let at = 0; at < file.size; ) {
        const buf = Buffer.allocUnsafe(Math.min(MESSAGE_BYTES, file.size - at));
        const n = fs.readSync(fd, buf, 0, buf.length, at);
        if (n === 0) throw new Error(`${file.rel} shrank while it was sent`);
        at += n;
        await push(n === buf.length ? buf : buf.subarray(0, n));
      }
    } finally {
      fs.closeSync(fd);
    }
  }
  await flush();
}

function fetch([port, count]) {
  const staging = path.join(folder, STAGING);
  fs.mkdirSync(staging, { recursive: true });
  const madeDirs = new Set([folder]);
  const started = performance.now();
  let criticalMs = null;
  let files = 0;
  let bytes = 0;
  let expected = null;
  let pendingHead = null; // bytes of a header split across messages
  let file = null; // { rel, size, mtimeMs, mode, hash, fd, tmp, left, digest }
  let tmpSeq = 0;

  const begin = (h) => {
    const len = h.readUInt16BE(0);
    const rel = h.toString('utf8', 2, 2 + len);
    let at = 2 + len;
    const size = h.readDoubleBE(at); at += 8;
    const mtimeMs = h.readDoubleBE(at); at += 8;
    const fileMode = h.readUInt16BE(at); at += 2;
    const hash = h.subarray(at, at + 32);
    if (rel.split('/').some((s) => s === '' || s === '.' || s === '..')) throw new Error(`unsafe path ${rel}`);
    const tmp = path.join(staging, `t${tmpSeq++}`);
    file = { rel, size, mtimeMs, mode: fileMode, hash: Buffer.from(hash), fd: fs.openSync(tmp, 'wx', fileMode), tmp, left: size, digest: createHash('sha256') };
    if (size === 0) finish();
  };
  const finish = () => {
    const f = file;
    file = null;
    if (!f.digest.digest().equals(f.hash)) throw new Error(`${f.rel}: content does not match its sha256`);
    const s = f.mtimeMs / 1000;
    fs.futimesSync(f.fd, s, s);
    fs.closeSync(f.fd);
    const abs = path.join(folder, f.rel);
    const dir = path.dirname(abs);
    if (!madeDirs.has(dir)) {
      fs.mkdirSync(dir, { recursive: true });
      madeDirs.add(dir);
    }
    fs.renameSync(f.tmp, abs);
    files++;
    bytes += f.size;
    if (criticalMs === null && !isCritical(f.rel)) criticalMs = performance.now() - started;
  };
  /** bytes of a header that starts at `at` in `buf`, or -1 if it is not all there */
  const headerLength = (buf, at) => {
    if (buf.length - at < 2) return -1;
    const n = 2 + buf.readUInt16BE(at) + 8 + 8 + 2 + 32;
    return buf.length - at >= n ? n : -1;
  };

  const socket = net.connect(Number(port), HOST_A);
  const stream = new NoiseSecretStream(true, socket);
  stream.on('error', (err) => { console.error(err); process.exit(1); });
  stream.on('data', (msg) => {
    let buf = msg;
    if (pendingHead) {
      buf = Buffer.concat([pendingHead, msg]);
      pendingHead = null;
    }
    let at = 0;
    while (at < buf.length) {
      if (file) {
        const n = Math.min(file.left, buf.length - at);
        const part = buf.subarray(at, at + n);
        file.digest.update(part);
        for (let w = 0; w < n; ) w += fs.writeSync(file.fd, part, w, n - w);
        file.left -= n;
        at += n;
        if (file.left === 0) finish();
        continue;
      }
      const n = headerLength(buf, at);
      if (n < 0) {
        pendingHead = Buffer.from(buf.subarray(at));
        break;
      }
      begin(buf.subarray(at, at + n));
      at += n;
    }
    if (expected !== null && files === expected.files) done();
  });
  // the file count comes from the bench, so B knows when it is complete
  expected = { files: Number(count) };
  const done = () => {
    expected = null;
    fs.rmdirSync(staging);
    console.log(JSON.stringify({ done: true, files, bytes, criticalMs: Math.round(criticalMs ?? 0), totalMs: Math.round(performance.now() - started) }));
  };
}

if (mode === 'seed') await seed();
else if (mode === 'fetch') fetch(rest);
else {
  console.error('usage: noise-floor-peer.mjs seed <folder> | fetch <folder> <port> <files>');
  process.exit(2);
}
// stay up until the bench stops us
setInterval(() => {}, 1 << 30);
