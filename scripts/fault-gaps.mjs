#!/usr/bin/env node
// Where a slow fault round spent its time after the heal: for one round kept with
// SYNC_AGENT_FAULTS_DUMP=DIR, per node, log lines per 2 s window from the heal to the next phase
// (clock skew of a faketime node corrected), and the lines that are not routine (reconciles,
// publishes, diffs). A node that idles while the cluster waits shows as empty windows before
// the line that ended the wait (a periodic rescan, a retry's last look).
//
// usage: node scripts/fault-gaps.mjs DUMPDIR SEED
//        ALL=1 FROM=30 node scripts/fault-gaps.mjs DUMPDIR SEED   # every line from 30 s after the heal
import fs from 'node:fs'

const [dir, seed] = process.argv.slice(2)
if (!dir || !seed) {
  console.error('usage: node scripts/fault-gaps.mjs DUMPDIR SEED')
  process.exit(2)
}
const ops = fs.readFileSync(`${dir}/${seed}-ops.log`, 'utf8').split('\n')
const at = (marker) => {
  const line = ops.find((l) => l.includes(marker))
  return line === undefined ? null : parseFloat(line.slice(1))
}
const healedRel = at('all healed')
if (healedRel === null) {
  console.error(`${dir}/${seed}-ops.log: no "all healed" line`)
  process.exit(1)
}
const endRel = at('REBUILD phase') ?? healedRel + 120
const nodes = fs.readdirSync(dir).filter((f) => f.startsWith(`${seed}-n`)).sort()
const linesOf = {}
// the round's start: the earliest "--- test" marker in the nodes' logs (the ops log's times are relative to it)
let start = Infinity
for (const f of nodes) {
  const lines = fs.readFileSync(`${dir}/${f}`, 'utf8').split('\n')
  linesOf[f] = lines
  const marker = lines.find((l) => l.startsWith('--- test'))
  if (marker) start = Math.min(start, Date.parse(marker.split(' ')[2].replace(/:$/, '')))
}
const healAbs = start + healedRel * 1000
const endAbs = start + endRel * 1000
const routine = new Set(['reconcile', 'published a local change', 'drive diffed'])
console.log('heal', new Date(healAbs).toISOString(), 'next phase', new Date(endAbs).toISOString(), `(${(endRel - healedRel).toFixed(1)} s)`)
for (const f of nodes) {
  let skew = null
  const skews = new Set()
  const windows = {}
  const notes = []
  for (const l of linesOf[f]) {
    if (l.startsWith('--- test')) {
      const t = Date.parse(l.split(' ')[2].replace(/:$/, ''))
      // each start may run with another clock (the round sets a node's skew on a restart)
      if (l.includes(': start #')) skew = null
      if (t > healAbs - 2000 && t < endAbs) notes.push(`${((t - healAbs) / 1000).toFixed(2)} ${l}`)
      continue
    }
    let j
    try {
      j = JSON.parse(l)
    } catch {
      continue
    }
    let t = Date.parse(j.time)
    // a node run under faketime logs hours off: whole hours are its skew
    if (skew === null) skew = Math.abs(t - start) > 1800e3 ? Math.round((t - start) / 3600e3) * 3600e3 : 0
    if (skew) skews.add(skew / 3600e3)
    t -= skew
    if (t < healAbs - 2000 || t > endAbs || j.msg === 'memory') continue
    const k = Math.floor((t - healAbs) / 2000) * 2
    windows[k] = (windows[k] ?? 0) + 1
    const listed = process.env.ALL ? t - healAbs > Number(process.env.FROM ?? 0) * 1000 : !routine.has(j.msg)
    if (listed) notes.push(`${((t - healAbs) / 1000).toFixed(2)} ${j.level} ${j.msg.slice(0, 80)} ${j.path ?? ''} ${j.code ?? ''}`)
  }
  console.log('==', f, skews.size ? `skew ${[...skews].join(', ')} h` : '', JSON.stringify(windows))
  console.log(notes.slice(0, 30).join('\n'))
}
