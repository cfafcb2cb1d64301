// Small helpers shared by the bench tools and scenarios. No dependencies.
import fs from 'node:fs';
import fsp from 'node:fs/promises';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { spawn, execFileSync } from 'node:child_process';

export const MiB = 1024 * 1024;
export const now = () => performance.now() / 1000; // seconds, monotonic
export const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

export class BenchError extends Error {}

const DEBUG = !!process.env.BENCH_DEBUG;
let lastDebug = 0;
/** With BENCH_DEBUG=1, print at most one line per second per call site group. */
export function debug(msg, { throttle = true } = {}) {
  if (!DEBUG) return;
  const t = now();
  if (throttle && t - lastDebug < 1) return;
  lastDebug = t;
  console.error(`[debug ${t.toFixed(2)}] ${typeof msg === 'function' ? msg() : msg}`);
}

/**
 * Poll `check` every `interval` ms until it returns a truthy value (which is
 * returned) or `deadline` (a now() value, in seconds) passes. `check` may be
 * async and may throw (treated as "not yet"; the last error is reported).
 */
export async function waitFor(what, check, { deadline, interval = 50, onTimeout } = {}) {
  let lastErr;
  for (;;) {
    try {
      const v = await check();
      lastErr = undefined;
      if (v) return v;
    } catch (e) {
      if (e instanceof BenchError) throw e;
      lastErr = e;
    }
    if (now() >= deadline) {
      const extra = onTimeout ? await onTimeout() : '';
      throw new BenchError(`timed out waiting for ${what}${lastErr ? ` (last error: ${lastErr.message})` : ''}${extra ? `\n${extra}` : ''}`);
    }
    await sleep(interval);
  }
}

/** A free TCP port on 127.0.0.1 (bind to :0, read it, close). */
export function freePort() {
  return new Promise((resolve, reject) => {
    const srv = net.createServer();
    srv.unref();
    srv.on('error', reject);
    srv.listen(0, '127.0.0.1', () => {
      const { port } = srv.address();
      srv.close(() => resolve(port));
    });
  });
}

export function which(cmd) {
  for (const dir of (process.env.PATH || '/usr/bin:/bin').split(':')) {
    const p = path.join(dir, cmd);
    try { fs.accessSync(p, fs.constants.X_OK); return p; } catch {}
  }
  return null;
}

const tmpDirs = new Set();

export function tmpDir(prefix) {
  const d = fs.mkdtempSync(path.join(os.tmpdir(), `sync-bench-${prefix}-`));
  tmpDirs.add(d);
  return d;
}

export async function rmrf(p) {
  if (!p) return;
  await fsp.rm(p, { recursive: true, force: true, maxRetries: 3 });
  tmpDirs.delete(p);
}

/** On interrupt: remove every temp dir still registered. */
export function removeAllTmpDirs(keep = []) {
  for (const d of tmpDirs) if (!keep.includes(d)) { try { fs.rmSync(d, { recursive: true, force: true }); } catch {} }
  tmpDirs.clear();
}

// ---------------------------------------------------------------- processes
const children = new Set();

/** spawn() with stdout/stderr to a log file; the child is killed if the bench exits. */
export function spawnLogged(cmd, args, { logFile, env, cwd } = {}) {
  const fd = logFile ? fs.openSync(logFile, 'a') : 'ignore';
  const child = spawn(cmd, args, { env: env ?? process.env, cwd, stdio: ['ignore', fd, fd] });
  if (typeof fd === 'number') fs.closeSync(fd);
  children.add(child);
  child.exited = new Promise((resolve) => child.on('exit', (code, signal) => { children.delete(child); resolve({ code, signal }); }));
  child.on('error', (e) => { child.spawnError = e; });
  return child;
}

/** SIGTERM, wait up to `graceMs`, then SIGKILL. Resolves with the exit status. */
export async function stopChild(child, graceMs = 5000) {
  if (!child || child.exitCode !== null || child.signalCode !== null) return child?.exited;
  try { child.kill('SIGTERM'); } catch {}
  const t = setTimeout(() => { try { child.kill('SIGKILL'); } catch {} }, graceMs);
  const r = await child.exited;
  clearTimeout(t);
  return r;
}

/** Wait up to `ms` for a child to exit by itself; then stop it. */
export async function waitExit(child, ms) {
  let t;
  const r = await Promise.race([child.exited, new Promise((res) => { t = setTimeout(() => res(null), ms); })]);
  clearTimeout(t);
  return r ?? stopChild(child, 2000);
}

export function killAllChildren() {
  for (const c of children) { try { c.kill('SIGKILL'); } catch {} }
}

export function tail(file, lines = 30) {
  try {
    const s = fs.readFileSync(file, 'utf8').trimEnd().split('\n');
    return s.slice(-lines).join('\n');
  } catch { return ''; }
}

// ---------------------------------------------------------------- /proc
let CLK_TCK = 100;
try { CLK_TCK = Number(execFileSync('getconf', ['CLK_TCK'], { encoding: 'utf8' }).trim()) || 100; } catch {}

function descendants(pid) {
  const out = [pid];
  for (let i = 0; i < out.length; i++) {
    let tids = [];
    try { tids = fs.readdirSync(`/proc/${out[i]}/task`); } catch { continue; }
    for (const tid of tids) {
      try {
        const kids = fs.readFileSync(`/proc/${out[i]}/task/${tid}/children`, 'utf8').trim();
        if (kids) out.push(...kids.split(/\s+/).map(Number));
      } catch {}
    }
  }
  return out;
}

/**
 * CPU seconds (user+sys, including reaped children) and peak RSS (VmHWM) of a
 * process and its live descendants. RSS is summed over the tree (an upper
 * bound if the processes did not peak at the same time). Returns null if the
 * process is gone.
 */
export function procStats(pid) {
  let cpu = 0, hwmKiB = 0, rssKiB = 0, seen = 0;
  for (const p of descendants(pid)) {
    try {
      const stat = fs.readFileSync(`/proc/${p}/stat`, 'utf8');
      const f = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
      // fields after "(comm) ": state=0 ... utime=11 stime=12 cutime=13 cstime=14
      cpu += (Number(f[11]) + Number(f[12]) + Number(f[13]) + Number(f[14])) / CLK_TCK;
      const status = fs.readFileSync(`/proc/${p}/status`, 'utf8');
      hwmKiB += Number(/VmHWM:\s+(\d+)/.exec(status)?.[1] ?? 0);
      rssKiB += Number(/VmRSS:\s+(\d+)/.exec(status)?.[1] ?? 0);
      seen++;
    } catch {}
  }
  return seen ? { cpu, peakRssKiB: hwmKiB, rssKiB, processes: seen } : null;
}

/** Machine-wide busy CPU seconds so far (all cores; /proc/stat minus idle and iowait). */
export function systemBusyCpu() {
  try {
    const f = fs.readFileSync('/proc/stat', 'utf8').split('\n')[0].trim().split(/\s+/).slice(1).map(Number);
    // user nice system idle iowait irq softirq steal (guest is already in user)
    const [user, nice, system, , , irq = 0, softirq = 0, steal = 0] = f;
    return (user + nice + system + irq + softirq + steal) / CLK_TCK;
  } catch { return null; }
}

// ---------------------------------------------------------------- trees
/** Disk usage (allocated blocks) of a directory tree, in bytes, like `du -s`. */
export async function diskUsage(dir) {
  let total = 0;
  const walk = async (d) => {
    let ents;
    try { ents = await fsp.readdir(d, { withFileTypes: true }); } catch { return; }
    await Promise.all(ents.map(async (e) => {
      const p = path.join(d, e.name);
      try {
        const st = await fsp.lstat(p);
        total += st.blocks * 512;
        if (st.isDirectory()) await walk(p);
      } catch {}
    }));
  };
  try { total += (await fsp.lstat(dir)).blocks * 512; } catch {}
  await walk(dir);
  return total;
}

/** Map of relative path -> size for every regular file under dir, skipping top-level `ignore` names. */
export function listTree(dir, ignore = []) {
  const out = new Map();
  const walk = (d, rel) => {
    for (const e of fs.readdirSync(d, { withFileTypes: true })) {
      if (!rel && ignore.includes(e.name)) continue;
      const r = rel ? `${rel}/${e.name}` : e.name;
      if (e.isDirectory()) walk(path.join(d, e.name), r);
      else if (e.isFile()) out.set(r, fs.statSync(path.join(d, e.name)).size);
      else out.set(r, -1); // symlink/other: counts as a mismatch
    }
  };
  walk(dir, '');
  return out;
}

/** Compare B's tree with the corpus manifest; returns null if identical in names+sizes, else a short description. */
export function compareTree(dir, corpus, ignore = []) {
  let tree;
  try { tree = listTree(dir, ignore); } catch (e) { return e.message; }
  const missing = [], wrong = [];
  let bytes = 0;
  for (const { path: p, size } of corpus.entries) {
    const s = tree.get(p);
    if (s === undefined) missing.push(p);
    else { if (s !== size) wrong.push(`${p} (${s} != ${size})`); bytes += Math.max(0, s); tree.delete(p); }
  }
  const extra = [...tree.keys()];
  if (!missing.length && !wrong.length && !extra.length && bytes === corpus.bytes) return null;
  const few = (a) => a.slice(0, 3).join(', ') + (a.length > 3 ? ', ...' : '');
  return [
    missing.length && `${missing.length} missing (${few(missing)})`,
    wrong.length && `${wrong.length} wrong size (${few(wrong)})`,
    extra.length && `${extra.length} unexpected (${few(extra)})`,
  ].filter(Boolean).join('; ') || `byte total ${bytes} != ${corpus.bytes}`;
}

/**
 * Watch for a subset of the corpus (e.g. themes/ + plugins/) to appear in `dir`
 * with the right sizes. Cheap: each poll stat()s files in list order only up to
 * the first one still missing, so the whole run costs about one stat per file
 * plus one per poll. (Files are never removed in these scenarios, so a file
 * seen complete stays complete.) Returns { promise (resolves with now() when
 * all are present), stop(), done }.
 */
export function watchSubset(dir, entries, { interval = 50 } = {}) {
  let i = 0, timer, done = false, resolveFn;
  const promise = new Promise((r) => { resolveFn = r; });
  const poll = () => {
    if (done) return;
    while (i < entries.length) {
      let ok = false;
      try { ok = fs.statSync(path.join(dir, entries[i].path)).size === entries[i].size; } catch {}
      if (!ok) break;
      i++;
    }
    if (i === entries.length) { done = true; resolveFn(now()); return; }
    timer = setTimeout(poll, interval);
  };
  timer = setTimeout(poll, 0);
  return { promise, stop() { done = true; clearTimeout(timer); }, get done() { return done; } };
}

export async function dropCaches() {
  if (process.getuid?.() !== 0) return 'not root: page cache not dropped';
  try {
    execFileSync('sync');
    fs.writeFileSync('/proc/sys/vm/drop_caches', '3\n');
    return null;
  } catch (e) {
    return `could not drop page cache (${e.code || e.message})`;
  }
}

/** Read every file under dir once (puts it in the page cache). */
export function warmTree(dir) {
  const buf = Buffer.allocUnsafe(1 << 20);
  const walk = (d) => {
    for (const e of fs.readdirSync(d, { withFileTypes: true })) {
      const p = path.join(d, e.name);
      if (e.isDirectory()) walk(p);
      else if (e.isFile()) {
        const fd = fs.openSync(p, 'r');
        try { while (fs.readSync(fd, buf, 0, buf.length, null) > 0); } finally { fs.closeSync(fd); }
      }
    }
  };
  walk(dir);
}

/** CPU, peak RSS and data-dir figures of a tool's two peers (A's CPU counted from `cpuAAtStart`). */
export async function measurePeers({ procA, procB, cpuAAtStart, dataA, dataB }) {
  const a = procStats(procA.pid) ?? {};
  const b = procStats(procB.pid) ?? {};
  return {
    cpuB: b.cpu, peakRssKiBB: b.peakRssKiB,
    cpuA: a.cpu != null && cpuAAtStart != null ? a.cpu - cpuAAtStart : null, peakRssKiBA: a.peakRssKiB,
    cpuATotal: a.cpu,
    dataDirB: await diskUsage(dataB), dataDirA: await diskUsage(dataA),
  };
}
