// Follow-ups on a synced pair (run by the initial-sync scenario once B is complete, while
// both peers still run):
//  - propagation: one new 100 KiB upload written on A, timed until B holds the same bytes;
//    repeated, median and p95 reported.
//  - incremental: 1% of the corpus's files changed on A (1 KiB appended to each), timed
//    until B holds every changed file with A's bytes; with the bytes B received meanwhile,
//    as the tool counts them (`tool.receivedBytesB()`, where it has one).
// Tools without a watcher (rsync) are re-run by `tool.resync()` after each change: their
// figure is the time of one more run, as a cron job or deploy hook would do it.
import fs from 'node:fs';
import path from 'node:path';
import { createHash, randomBytes } from 'node:crypto';
import { BenchError, now, waitFor } from '../lib/util.mjs';

const PROPAGATION_BYTES = 100 * 1024;

/** size and sha256 of a file, read in chunks (a file may be larger than a Buffer can hold) */
function contentOf(file) {
  const hash = createHash('sha256');
  const buf = Buffer.allocUnsafe(8 * 1024 * 1024);
  const fd = fs.openSync(file, 'r');
  let size = 0;
  try {
    for (let n; (n = fs.readSync(fd, buf, 0, buf.length, size)) > 0; size += n) hash.update(buf.subarray(0, n));
  } finally {
    fs.closeSync(fd);
  }
  return { size, hash: hash.digest('hex') };
}

function sameBytes(file, expected) {
  try {
    if (fs.statSync(file).size !== expected.size) return false;
    return contentOf(file).hash === expected.hash;
  } catch {
    return false;
  }
}

function percentile(sorted, p) {
  return sorted[Math.min(sorted.length - 1, Math.ceil((p / 100) * sorted.length) - 1)];
}

export async function propagation(tool, dirA, dirB, { runs, timeoutS }) {
  const times = [];
  fs.mkdirSync(path.join(dirA, 'uploads', 'bench-propagation'), { recursive: true });
  for (let i = 0; i < runs; i++) {
    const rel = path.join('uploads', 'bench-propagation', `upload-${i}.jpg`);
    const bytes = randomBytes(PROPAGATION_BYTES);
    const want = { size: bytes.length, hash: createHash('sha256').update(bytes).digest('hex') };
    const t0 = now();
    fs.writeFileSync(path.join(dirA, rel), bytes);
    if (tool.resync) await tool.resync({ deadline: t0 + timeoutS });
    await waitFor(`${tool.name}: new upload ${rel} on B`, () => sameBytes(path.join(dirB, rel), want), { deadline: t0 + timeoutS, interval: 2 });
    times.push((now() - t0) * 1000);
  }
  const sorted = [...times].sort((x, y) => x - y);
  return { propagationRuns: runs, propagationMedianMs: percentile(sorted, 50), propagationP95Ms: percentile(sorted, 95), propagationMs: times };
}

export async function incremental(tool, corpus, dirA, dirB, { timeoutS }) {
  // every 100th file of the corpus (deterministic), at least one, 1 KiB appended to each
  let changed = corpus.entries.filter((_, i) => i % 100 === 50).map((e) => e.path);
  if (!changed.length) changed = corpus.entries.slice(0, 1).map((e) => e.path);
  if (!changed.length) throw new BenchError('the corpus is empty: nothing to change');
  const expected = new Map();
  // what B receives for the change (the tool's own count: protocol overhead included)
  const receivedBefore = tool.receivedBytesB ? await tool.receivedBytesB() : null;
  const t0 = now();
  for (const rel of changed) {
    const abs = path.join(dirA, rel);
    fs.appendFileSync(abs, randomBytes(1024));
  }
  for (const rel of changed) expected.set(rel, contentOf(path.join(dirA, rel)));
  if (tool.resync) await tool.resync({ deadline: t0 + timeoutS });
  let pending = [...changed];
  await waitFor(`${tool.name}: ${changed.length} changed files on B`, () => {
    pending = pending.filter((rel) => !sameBytes(path.join(dirB, rel), expected.get(rel)));
    return pending.length === 0;
  }, { deadline: t0 + timeoutS, interval: 20, onTimeout: () => `still different on B: ${pending.slice(0, 5).join(', ')}` });
  const incrementalS = now() - t0;
  const incrementalReceivedBytes = receivedBefore === null ? null : (await tool.receivedBytesB()) - receivedBefore;
  return { incrementalS, incrementalFiles: changed.length, incrementalReceivedBytes };
}
