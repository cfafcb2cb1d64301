// One peer of the "Hypercore floor" baseline (see hypercore-floor.mjs).
//
//   node hypercore-floor-peer.mjs seed  <folder> <storeDir>            -> prints {"port","key","encryptionKey"}
//   node hypercore-floor-peer.mjs fetch <folder> <storeDir> <port> <key> <encryptionKey> -> prints {"done":…}
//
// seed: imports <folder> into an encrypted Hyperdrive with sync-agent's own block layout
// (OwnDriveWriter: small files packed into shared 64 KiB blocks, others in 1 MiB blocks),
// then serves it over TCP + Noise (the transport sync-agent uses).
// fetch: replicates that drive into a fresh Corestore and writes every file to <folder> with
// 64 writers: the index downloaded as one range, then each file's blocks read and written
// (plain writeFile + utimes). No merge, no version vectors, no temp files, no crash safety,
// no second hash: what any sync tool built on this stack pays at least.
// Both stay up after their work (the bench reads their CPU and memory, then stops them).
import fs from 'node:fs';
import fsp from 'node:fs/promises';
import net from 'node:net';
import path from 'node:path';
import { createRequire } from 'node:module';
import { randomBytes } from 'node:crypto';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { walkFiles } from '../lib/floor-tool.mjs';

const REPO = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..', '..');
const requireAgent = createRequire(path.join(REPO, 'packages', 'sync-agent', 'package.json'));
const Corestore = requireAgent('corestore');
const CoreStorage = requireAgent('hypercore-storage');
const Rache = requireAgent('rache');
const Hyperdrive = requireAgent('hyperdrive');
const NoiseSecretStream = requireAgent('@hyperswarm/secret-stream');
const { OwnDriveWriter } = await import(pathToFileURL(path.join(REPO, 'packages', 'sync-agent', 'dist', 'own-drive-writer.js')).href);

const WRITERS = 64;
// the storage settings sync-agent uses (packages/sync-agent/src/open-store.ts), so memory compares
const WRITE_BUFFER_BYTES = 8 * 1024 * 1024;
const INDEX_NODE_CACHE = 4096;
const openStore = (dir) => new Corestore(new CoreStorage(dir, { writeBufferSize: WRITE_BUFFER_BYTES }), { globalCache: new Rache({ maxSize: INDEX_NODE_CACHE }) });
const [mode, folder, storeDir, ...rest] = process.argv.slice(2);
// peer A's address: 127.0.0.1, or A's end of the bench's `--link` (bench/lib/link.mjs)
const HOST_A = process.env.BENCH_HOST_A || '127.0.0.1';


async function seed() {
  const store = openStore(storeDir);
  const encryptionKey = randomBytes(32);
  const drive = new Hyperdrive(store, { encryptionKey });
  await drive.ready();
  const writer = new OwnDriveWriter(drive, await drive.getBlobs());
  const puts = [];
  for (const rel of walkFiles(folder)) {
    const abs = path.join(folder, rel);
    const st = fs.statSync(abs);
    // a file too large for one Buffer is streamed, as the agent does
    const { blob, at } = st.size > 256 * 1024 * 1024 ? await writer.storeFile(abs, st.size) : await writer.storeBuffer(fs.readFileSync(abs));
    puts.push(writer.put('/' + rel, { executable: false, linkname: null, blob, metadata: { at, size: st.size, mtime: st.mtimeMs, mode: st.mode & 0o777 } }));
    // let the writer flush now and then, or the whole corpus waits in memory
    if (puts.length >= 256) await Promise.all(puts.splice(0));
  }
  await Promise.all(puts);
  const server = net.createServer((socket) => {
    const stream = new NoiseSecretStream(false, socket);
    stream.on('error', () => {});
    store.replicate(stream);
  });
  await new Promise((resolve) => server.listen(0, HOST_A, resolve));
  console.log(JSON.stringify({ port: server.address().port, key: drive.key.toString('hex'), encryptionKey: encryptionKey.toString('hex') }));
}

async function fetch([port, key, encryptionKey]) {
  const store = openStore(storeDir);
  const socket = net.connect(Number(port), HOST_A);
  const stream = new NoiseSecretStream(true, socket);
  stream.on('error', () => {});
  store.replicate(stream);
  const drive = new Hyperdrive(store, Buffer.from(key, 'hex'), { encryptionKey: Buffer.from(encryptionKey, 'hex') });
  await drive.ready();
  await drive.core.update({ wait: true });
  await drive.core.download({ start: 0, end: drive.core.length }).done();
  const blobs = await drive.getBlobs();
  await blobs.core.update({ wait: true });
  const madeDirs = new Set();
  // the listing feeds a bounded queue the writers take from
  const queue = [];
  let listed = false;
  const waiting = [];
  const wakeAll = () => { for (const w of waiting.splice(0)) w(); };
  let room = null;
  const take = async () => {
    while (queue.length === 0 && !listed) await new Promise((resolve) => waiting.push(resolve));
    const entry = queue.shift() ?? null;
    if (room && queue.length < WRITERS) { room(); room = null; }
    return entry;
  };
  const lister = (async () => {
    for await (const entry of drive.list('/', { recursive: true })) {
      queue.push(entry);
      wakeAll();
      if (queue.length >= WRITERS * 4) await new Promise((resolve) => (room = resolve));
    }
    listed = true;
    wakeAll();
  })();
  let files = 0;
  let bytes = 0;
  const worker = async () => {
    for (;;) {
      const entry = await take();
      if (!entry) return;
      const { blob, metadata } = entry.value;
      const abs = path.join(folder, entry.key);
      const dir = path.dirname(abs);
      if (!madeDirs.has(dir)) {
        await fsp.mkdir(dir, { recursive: true });
        madeDirs.add(dir);
      }
      let buf = Buffer.alloc(0);
      if (metadata.size > 0) {
        buf = blob.blockLength === 1 ? (await blobs.core.get(blob.blockOffset)).subarray(metadata.at, metadata.at + metadata.size) : await blobs.get(blob);
      }
      await fsp.writeFile(abs, buf, { mode: metadata.mode });
      const s = metadata.mtime / 1000;
      await fsp.utimes(abs, s, s);
      files++;
      bytes += buf.length;
    }
  };
  await Promise.all([lister, ...Array.from({ length: WRITERS }, worker)]);
  console.log(JSON.stringify({ done: true, files, bytes, indexBlocks: drive.core.length, blobBlocks: blobs.core.length }));
}

if (mode === 'seed') await seed();
else if (mode === 'fetch') await fetch(rest);
else {
  console.error('usage: hypercore-floor-peer.mjs seed|fetch <folder> <storeDir> [port key encryptionKey]');
  process.exit(2);
}
// stay up until the bench stops us
setInterval(() => {}, 1 << 30);
