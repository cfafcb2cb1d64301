#!/usr/bin/env node
// Benchmark runner: runs each tool through each scenario on a generated corpus, prints a
// Markdown table and writes JSON to bench/results/. Each run of a tool is a bench process of
// its own (`--child`, which generates the corpus and runs that one tool): on this machine a
// tool run in the same bench process after rsync's or Syncthing's run took ~40% more time
// and CPU (the noise floor: 1.68-1.73 s against 1.19-1.33 s in a fresh process), which
// skewed every figure by the tools' order.
//
//   pnpm bench [--quick] [--small-files N] [--uploads-mb N] [--seed S] [--link RATE]
//              [--only tool,tool] [--repeat N] [--json FILE] [--timeout S] [--keep-corpus]
//
// Exits non-zero if any tool failed to complete (never on timings).
import { spawn } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { generateCorpus, parseCorpusArgs } from './corpus.mjs';
import { dropCaches, killAllChildren, MiB, now, removeAllTmpDirs, rmrf, tmpDir } from './lib/util.mjs';
import * as rsync from './tools/rsync.mjs';
import * as syncthing from './tools/syncthing.mjs';
import * as syncAgent from './tools/sync-agent.mjs';
import * as hypercoreFloor from './tools/hypercore-floor.mjs';
import * as noiseFloor from './tools/noise-floor.mjs';
import initialSync from './scenarios/initial-sync.mjs';
import { linkProblem, parseRate, rateLabel, setUpLink } from './lib/link.mjs';

const BENCH = path.dirname(fileURLToPath(import.meta.url));
const TOOLS = { rsync: rsync.create, syncthing: syncthing.create, 'sync-agent': syncAgent.create, 'hypercore-floor': hypercoreFloor.create, 'noise-floor': noiseFloor.create };
const QUICK = { smallFiles: 600, uploadsMb: 20 };
const PROPAGATION_RUNS = { full: 20, quick: 3 };

const USAGE = `usage: pnpm bench [--quick] [--shape wordpress|many-small|big-file] [--small-files N] [--uploads-mb N] [--big-mb N] [--seed S]
                  [--only ${Object.keys(TOOLS).join(',')}] [--repeat N] [--json FILE] [--timeout S] [--keep-corpus]
                  [--link RATE]   (B behind a link of RATE, e.g. 100mbit or 1gbit: root, iproute2)`;

function parseArgs(argv) {
  const { opts: corpus, rest } = parseCorpusArgs(argv);
  const o = { quick: false, only: Object.keys(TOOLS), json: null, timeoutS: null, keepCorpus: false, repeat: 1, link: null };
  for (let i = 0; i < rest.length; i++) {
    const a = rest[i];
    const val = () => { const v = a.includes('=') ? a.split('=').slice(1).join('=') : rest[++i]; if (v === undefined) throw new Error(`${a} needs a value`); return v; };
    if (a === '--quick') o.quick = true;
    else if (a.startsWith('--only')) o.only = val().split(',').map((s) => s.trim()).filter(Boolean);
    else if (a.startsWith('--json')) o.json = val();
    else if (a.startsWith('--timeout')) o.timeoutS = Number(val());
    else if (a === '--keep-corpus') o.keepCorpus = true;
    else if (a.startsWith('--link')) { o.linkText = val(); o.link = parseRate(o.linkText); }
    else if (a === '--child') o.child = true; // internal: one tool, one run, in this process
    else if (a.startsWith('--repeat')) { o.repeat = Number(val()); if (!(Number.isInteger(o.repeat) && o.repeat >= 1)) throw new Error('--repeat needs a whole number >= 1'); }
    else if (a === '-h' || a === '--help') { console.log(USAGE); process.exit(0); }
    else throw new Error(`unknown argument ${a}\n${USAGE}`);
  }
  for (const t of o.only) if (!TOOLS[t]) throw new Error(`unknown tool ${t} (known: ${Object.keys(TOOLS).join(', ')})`);
  // only what was asked for: each corpus shape has its own defaults
  o.corpus = { ...(o.quick ? QUICK : {}), ...corpus };
  o.corpusArgs = corpus;
  return o;
}

const log = (...a) => console.error('[bench]', ...a);
const fmt = (v, d = 1) => (v == null || !Number.isFinite(v) ? '–' : v.toFixed(d));
const mib = (kib) => (kib == null ? null : kib / 1024);

function table(results) {
  const ok = Object.fromEntries(results.filter((r) => r.ok).map((r) => [r.tool, r]));
  const ratio = (base, r) => (ok[base] && r.ok ? `${(ok[base].wallS / r.wallS).toFixed(2)}×` : '–');
  // settled: the tool's own word that nothing is left, its post-sync rescan included (sync-agent's
  // inSync, Syncthing's idle), with its ratio to Syncthing's
  const settled = (r) => (r.settledS == null ? '–'
    : `${fmt(r.settledS, 2)}${ok.syncthing?.settledS > 0 ? ` (${(ok.syncthing.settledS / r.settledS).toFixed(2)}×)` : ''}`);
  const head = ['tool', 'initial sync s', 'settled s (× vs Syncthing)', 'MiB/s', 'files/s', 'themes s', 'themes+plugins s', 'ready s (share of sync)', 'CPU s (B)',
    'peak RSS MiB (A / B)', 'data dir MiB (B)', '× vs Syncthing', '× vs rsync'];
  const rows = results.map((r) => (r.ok
    ? [r.tool, r.runs ? `${fmt(r.wallS, 2)} (${fmt(r.wallMinS, 2)}–${fmt(r.wallMaxS, 2)}, n=${r.runs.length})` : fmt(r.wallS, 2), settled(r), fmt(r.mibPerS), fmt(r.filesPerS, 0), fmt(r.themesS, 2), fmt(r.themesPluginsS, 2),
      r.readyS == null ? '–' : `${fmt(r.readyS, 2)} (${Math.round((100 * r.readyS) / r.wallS)}%)`, fmt(r.cpuB, 2),
      `${fmt(mib(r.peakRssKiBA), 0)} / ${fmt(mib(r.peakRssKiBB), 0)}`, r.dataDirB == null ? '–' : fmt(r.dataDirB / MiB),
      ratio('syncthing', r), ratio('rsync', r)]
    : [r.tool, `FAILED: ${r.error.split('\n')[0].slice(0, 120)}`, ...head.slice(2).map(() => '')]));
  return [head, head.map(() => '---'), ...rows].map((r) => `| ${r.join(' | ')} |`).join('\n');
}

/** After the initial sync, on the running pair: new uploads and a 1% change. */
function followUpTable(results) {
  const ok = Object.fromEntries(results.filter((r) => r.ok).map((r) => [r.tool, r]));
  const ratio = (base, r, key) => (ok[base] && r.ok && r[key] > 0 ? `${(ok[base][key] / r[key]).toFixed(2)}×` : '–');
  const head = ['tool', 'new 100 KiB upload: median ms', 'p95 ms', 'runs', '1% changed: s', 'files', '1% changed: MiB received by B',
    'upload × vs Syncthing', 'upload × vs rsync', '1% × vs Syncthing', '1% × vs rsync'];
  // (baselines that only do the initial sync have no row here)
  const rows = results.filter((r) => r.ok && (r.propagationMedianMs != null || r.incrementalS != null)).map((r) => [r.tool, fmt(r.propagationMedianMs, 0), fmt(r.propagationP95Ms, 0), r.propagationRuns,
    fmt(r.incrementalS, 2), r.incrementalFiles, r.incrementalReceivedBytes == null ? '–' : fmt(r.incrementalReceivedBytes / 1048576, 2),
    ratio('syncthing', r, 'propagationMedianMs'), ratio('rsync', r, 'propagationMedianMs'), ratio('syncthing', r, 'incrementalS'), ratio('rsync', r, 'incrementalS')]);
  return [head, head.map(() => '---'), ...rows].map((r) => `| ${r.join(' | ')} |`).join('\n');
}

/**
 * `--child`: one run of one tool, in this process: generates the corpus, runs the scenario,
 * writes `{ corpus, notes, result }` to `--json` for the parent (runChild).
 */
async function runHere(o, tool, { setupTimeoutS, syncTimeoutS }) {
  const corpusDir = path.join(tmpDir('corpus'), 'wp-content');
  // B behind a rate-limited link (bench/lib/link.mjs); taken down when this run ends
  const closeLink = o.link ? setUpLink(o.link) : () => {};
  process.on('exit', closeLink);
  for (const sig of ['SIGINT', 'SIGTERM']) {
    process.on(sig, () => {
      killAllChildren();
      closeLink();
      removeAllTmpDirs(o.keepCorpus ? [path.dirname(corpusDir)] : []);
      if (o.keepCorpus) console.error(`[bench] corpus kept at ${corpusDir}`);
      process.exit(130);
    });
  }
  const g0 = now();
  const corpus = await generateCorpus(corpusDir, o.corpus);
  const genS = now() - g0;
  const co = corpus.options;
  log(`corpus: ${corpus.files} files, ${(corpus.bytes / MiB).toFixed(1)} MiB (shape ${co.shape}, small files ${co.smallFiles}, uploads ${co.uploadsMb} MiB, seed ${co.seed}) generated in ${genS.toFixed(2)} s at ${corpusDir}`);

  const notes = [];
  // the one scenario (the follow-ups run on the synced pair inside it)
  const scenario = initialSync;
  const t = TOOLS[tool.name]();
  const label = `${scenario.name} / ${t.name}`;
  const note = await dropCaches();
  if (note) { notes.push(note); log(note); }
  const load = os.loadavg()[0];
  if (load > os.cpus().length * 0.5) log(`warning: load average ${load.toFixed(2)} before ${label}`);
  log(`${label}: running (timeouts: setup ${setupTimeoutS} s, sync ${syncTimeoutS} s)`);
  let result;
  try {
    const propagationRuns = o.quick ? PROPAGATION_RUNS.quick : PROPAGATION_RUNS.full;
    result = { tool: t.name, scenario: scenario.name, version: t.version?.() ?? null, ...(await scenario.run(t, corpus, { setupTimeoutS, syncTimeoutS, propagationRuns })) };
    log(`${label}: ${result.wallS.toFixed(2)} s`);
    if (result.otherCpuS != null && result.otherCpuS > Math.max(0.5, 0.1 * result.wallS)) {
      const n = `${label}: other processes used ${result.otherCpuS.toFixed(1)} CPU-s during its ${result.wallS.toFixed(1)} s sync (machine busy; figures unreliable)`;
      notes.push(n); log(n);
    }
  } catch (e) {
    result = { tool: t.name, scenario: scenario.name, ok: false, error: e.message || String(e) };
  }
  if (o.keepCorpus) log(`corpus kept at ${corpusDir}`);
  else await rmrf(path.dirname(corpusDir));
  const corpusInfo = { files: corpus.files, bytes: corpus.bytes, mib: +(corpus.bytes / MiB).toFixed(1), ...corpus.options, generateS: +genS.toFixed(2) };
  fs.writeFileSync(o.json, JSON.stringify({ corpus: corpusInfo, notes, result }) + '\n');
}

/** set by SIGINT/SIGTERM: the run in progress is stopped and no other starts */
let interrupted = false;
let corpusKept = false;

/** One run of `name` in a fresh bench process (see the top of this file); its progress goes to stderr. */
async function runChild(o, name) {
  const dir = tmpDir('run');
  const out = path.join(dir, 'run.json');
  const args = [fileURLToPath(import.meta.url), '--child', '--only', name, '--json', out];
  if (o.quick) args.push('--quick');
  // one corpus kept (the first run's), not one per run
  if (o.keepCorpus && !corpusKept) args.push('--keep-corpus');
  corpusKept = o.keepCorpus;
  if (o.timeoutS != null) args.push('--timeout', String(o.timeoutS));
  if (o.link) args.push('--link', o.linkText);
  const flags = { shape: '--shape', smallFiles: '--small-files', uploadsMb: '--uploads-mb', bigMb: '--big-mb', seed: '--seed' };
  for (const [key, flag] of Object.entries(flags)) if (o.corpusArgs[key] !== undefined) args.push(flag, String(o.corpusArgs[key]));
  const child = spawn(process.execPath, args, { stdio: ['ignore', 'ignore', 'inherit'] });
  const stop = () => {
    interrupted = true;
    child.kill('SIGINT');
  };
  process.on('SIGINT', stop);
  process.on('SIGTERM', stop);
  try {
    const code = await new Promise((resolve) => child.on('exit', (c, sig) => resolve(c ?? sig)));
    if (!fs.existsSync(out)) return { notes: [], corpus: null, error: `the bench process for ${name} exited (${code}) with no result` };
    return JSON.parse(fs.readFileSync(out, 'utf8'));
  } finally {
    process.off('SIGINT', stop);
    process.off('SIGTERM', stop);
    await rmrf(dir);
  }
}

async function main() {
  const o = parseArgs(process.argv.slice(2));
  const setupTimeoutS = o.timeoutS ?? (o.quick ? 30 : 300);
  const syncTimeoutS = o.timeoutS ?? (o.quick ? 30 : 600);
  const tools = o.only.map((name) => TOOLS[name]());

  // prerequisites first, so a missing binary is reported before any work
  if (o.link) {
    const problem = linkProblem();
    if (problem) { console.error(`bench: --link ${o.linkText}: ${problem}`); process.exit(1); }
  }
  const results = [];
  const runnable = []; // tool objects used only for check(); each run gets a fresh one
  for (const t of tools) {
    const problem = await t.check();
    if (problem) { log(`${t.name}: cannot run: ${problem}`); results.push({ tool: t.name, ok: false, error: `not available: ${problem}` }); }
    else runnable.push(t);
  }

  if (!runnable.length) {
    console.error(`bench: no tool can run:\n${results.map((r) => `  ${r.tool}: ${r.error}`).join('\n')}`);
    process.exit(1);
  }

  if (o.child) return runHere(o, runnable[0], { setupTimeoutS, syncTimeoutS });

  const notes = [];
  const runs = new Map(); // tool -> results of each repetition
  let corpusInfo = null;
  for (let rep = 1; rep <= o.repeat; rep++) {
    for (const { name } of runnable) {
      const label = `${name}${o.repeat > 1 ? ` #${rep}` : ''}`;
      const child = await runChild(o, name);
      if (interrupted) process.exit(130);
      for (const n of child.notes) if (!notes.includes(n)) notes.push(n);
      corpusInfo ??= child.corpus;
      const r = child.result ?? { tool: name, scenario: initialSync.name, ok: false, error: child.error };
      if (!r.ok) log(`${label}: FAILED\n${r.error}`);
      if (!runs.has(name)) runs.set(name, []);
      runs.get(name).push(r);
    }
  }
  // one row per tool: the run with the median wall time (a tool fails if any run failed)
  for (const [, rs] of runs) {
    const failed = rs.find((r) => !r.ok);
    if (failed) { results.push({ ...failed, runs: rs }); continue; }
    const sorted = [...rs].sort((a, b) => a.wallS - b.wallS);
    const median = sorted[Math.floor((sorted.length - 1) / 2)];
    results.push(rs.length > 1 ? { ...median, runs: rs, wallMinS: sorted[0].wallS, wallMaxS: sorted[sorted.length - 1].wallS } : median);
  }

  const order = Object.keys(TOOLS);
  results.sort((a, b) => order.indexOf(a.tool) - order.indexOf(b.tool));
  const md = table(results);
  if (!corpusInfo) {
    console.error('bench: no run started (see above)');
    process.exit(1);
  }
  const where = o.link ? `, B behind a ${rateLabel(o.link)} link` : ', loopback';
  console.log(`\n### initial sync: ${corpusInfo.files} files, ${corpusInfo.mib} MiB (shape ${corpusInfo.shape}, seed ${corpusInfo.seed}${where})${o.quick ? ' — quick' : ''}\n`);
  console.log(md);
  console.log(`\n### after the initial sync: new uploads and a 1% change (same pair, still running)\n`);
  console.log(followUpTable(results));
  if (notes.length) console.log(`\nNotes:\n${notes.map((n) => `- ${n}`).join('\n')}`);

  const report = {
    date: new Date().toISOString(),
    quick: o.quick,
    // null: both peers on 127.0.0.1; else B's link to A in bits/s each way (tc tbf)
    linkBits: o.link,
    host: { cpus: os.cpus().length, cpuModel: os.cpus()[0]?.model, memGiB: +(os.totalmem() / 2 ** 30).toFixed(1), node: process.version, kernel: os.release() },
    corpus: corpusInfo,
    notes,
    results,
  };
  const resultsDir = path.join(BENCH, 'results');
  fs.mkdirSync(resultsDir, { recursive: true });
  const file = path.join(resultsDir, `${report.date.replace(/[:.]/g, '-')}.json`);
  fs.writeFileSync(file, JSON.stringify(report, null, 2) + '\n');
  if (o.json) fs.writeFileSync(o.json, JSON.stringify(report, null, 2) + '\n');
  console.log(`\nJSON: ${path.relative(process.cwd(), file)}${o.json ? `, ${o.json}` : ''}`);

  const failed = results.filter((r) => !r.ok);
  if (failed.length) {
    console.error(`\nbench: ${failed.length} tool(s) failed: ${failed.map((r) => r.tool).join(', ')}`);
    process.exitCode = 1;
  }
  console.log(`\nbench: ${results.length - failed.length} passed, ${failed.length} failed`);
}

main().catch((e) => {
  killAllChildren();
  removeAllTmpDirs();
  console.error(`bench: ${e.message}`);
  process.exit(1);
});
