#!/usr/bin/env node
// Summarises `pnpm test:faults --results FILE` files: rounds, operations, faults, convergence.
import { readFileSync } from 'node:fs'

// several files (one per runner) make one row
const files = process.argv.slice(2)
if (files.length === 0) {
  console.error('usage: node scripts/fault-figures.mjs RESULTS.jsonl [MORE.jsonl ...]')
  process.exit(2)
}
const rounds = files.flatMap((file) => readFileSync(file, 'utf8').split('\n').filter(Boolean).map((l) => JSON.parse(l)))
if (rounds.length === 0) {
  console.error(`${files.join(', ')}: no rounds`)
  process.exit(1)
}
const sum = (f) => rounds.reduce((n, r) => n + f(r), 0)
const faults = {}
for (const r of rounds) for (const [k, v] of Object.entries(r.faults)) faults[k] = (faults[k] ?? 0) + v
const ms = rounds.map((r) => r.convergeMs).sort((a, b) => a - b)
const median = ms.length % 2 ? ms[ms.length >> 1] : (ms[ms.length / 2 - 1] + ms[ms.length / 2]) / 2
const seeds = rounds.map((r) => r.seed)
const s = (x) => (x / 1000).toFixed(1)
const problems = {}
for (const r of rounds) for (const [k, v] of Object.entries(r.problems ?? {})) problems[k] = (problems[k] ?? 0) + v
const clean = rounds.filter((r) => Object.keys(r.problems ?? {}).length === 0).length
console.log(`| rounds (seeds) | nodes | operations (failed: full disk…) | faults injected | mass deletes held, accepted by the operator | converged after heal: median / max s | conflict copies | rounds the oracle passed | oracle findings |`)
console.log(`| --- | --- | --- | --- | --- | --- | --- | --- | --- |`)
console.log(
  `| ${rounds.length} (${Math.min(...seeds)}–${Math.max(...seeds)}) | ${Math.min(...rounds.map((r) => r.nodes))}–${Math.max(...rounds.map((r) => r.nodes))} ` +
    `| ${sum((r) => r.ops)} (${sum((r) => r.failedOps)}) | ${Object.entries(faults).map(([k, v]) => `${k} ${v}`).join(', ')} ` +
    `| ${sum((r) => r.acceptedHolds ?? 0)} | ${s(median)} / ${s(ms[ms.length - 1])} | ${sum((r) => r.conflictCopies)} | ${clean} | ${Object.entries(problems).map(([k, v]) => `${k} ${v}`).join(', ') || 'none'} |`
)
// the rebuild phase (rounds since session 14): a node wiped and started fresh
const rebuilt = rounds.filter((r) => r.rebuild && r.rebuild !== 'none')
if (rebuilt.length > 0) {
  const byFault = {}
  for (const r of rebuilt) {
    const fault = r.rebuild.split(' ')[1]
    byFault[fault] = (byFault[fault] ?? 0) + 1
  }
  const rms = rebuilt.map((r) => r.rebuildConvergeMs).sort((a, b) => a - b)
  const rmedian = rms.length % 2 ? rms[rms.length >> 1] : (rms[rms.length / 2 - 1] + rms[rms.length / 2]) / 2
  console.log('')
  console.log(`| rounds with a rebuild | fault while it caught up | rebuilt nodes that read an index snapshot | snapshots read | rebuilt node caught up: median / max s |`)
  console.log(`| --- | --- | --- | --- | --- |`)
  console.log(
    `| ${rebuilt.length} | ${Object.entries(byFault).map(([k, v]) => `${k} ${v}`).join(', ')} | ${rebuilt.filter((r) => r.rebuildSnapshots > 0).length} ` +
      `| ${sum((r) => r.rebuildSnapshots ?? 0)} | ${s(rmedian)} / ${s(rms[rms.length - 1])} |`
  )
}
// files fetched as the blocks that differ (rounds since session 23)
const withDelta = rounds.filter((r) => typeof r.deltaFetches === 'number')
if (withDelta.length > 0) {
  console.log('')
  console.log(`delta fetches (changed files fetched as the blocks that differ): ${sum((r) => r.deltaFetches ?? 0)} in ${withDelta.length} rounds, ${withDelta.filter((r) => r.deltaFetches > 0).length} rounds with one or more`)
}
// changes a periodic rescan found that the watcher had not reported (rounds since session 35)
const withMissed = rounds.filter((r) => typeof r.watcherMissed === 'number')
if (withMissed.length > 0) {
  console.log('')
  console.log(`changes the watcher did not report (found by a periodic rescan): ${sum((r) => r.watcherMissed ?? 0)} in ${withMissed.length} rounds, seeds ${withMissed.filter((r) => r.watcherMissed > 0).map((r) => r.seed).join(', ') || 'none'}`)
}
