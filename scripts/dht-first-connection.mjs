#!/usr/bin/env node
// Does the first connection between two processes on this host carry data? hyperdht 6.33-6.34
// leave it half-open (the client sees it open, the server never does; it dies ~13 s later:
// holepunchto/hyperdht#304), which is why pnpm-workspace.yaml holds hyperdht at 6.32.0. Run this
// against a newer hyperdht before lifting that pin.
//
// Each trial: process A runs a DHT bootstrap node and a Hyperswarm on a fresh topic; process B
// joins the topic through A's node; B's first connection must carry a message from A before it
// closes. Prints each failed trial and a summary; exits 1 if any trial failed.
//
// usage: node scripts/dht-first-connection.mjs [TRIALS]      (default 10)
//        DHT_FROM=DIR node scripts/dht-first-connection.mjs   # the hyperswarm + hyperdht installed
//                                                             # in DIR (e.g. `npm i hyperdht@NEXT hyperswarm`)
import { spawn } from 'node:child_process'
import crypto from 'node:crypto'
import { createRequire } from 'node:module'
import path from 'node:path'
import { fileURLToPath } from 'node:url'

const root = path.dirname(path.dirname(fileURLToPath(import.meta.url)))
const fromAgent = createRequire(path.join(process.env.DHT_FROM ? path.resolve(process.env.DHT_FROM) : path.join(root, 'packages/sync-agent'), 'package.json'))
/** how long B waits for its first connection to carry data before the trial counts as failed */
const TRIAL_LIMIT_MS = 30_000

if (process.argv[2] === '--peer') {
  await peer(process.argv[3], Number(process.argv[4]), process.argv[5])
} else {
  await main(Number(process.argv[2] ?? 10))
}

async function main(trials) {
  if (!Number.isInteger(trials) || trials < 1) {
    console.error('usage: node scripts/dht-first-connection.mjs [TRIALS]')
    process.exit(2)
  }
  console.log(`hyperdht ${fromAgent('hyperdht/package.json').version}, ${trials} trials`)
  let failed = 0
  for (let i = 1; i <= trials; i++) {
    const port = 20_000 + crypto.randomInt(12_000)
    const topic = crypto.randomBytes(32).toString('hex')
    const a = run('A', port, topic)
    await a.line((l) => l.startsWith('announced'))
    const b = run('B', port, topic)
    const result = await b.exit
    a.child.kill()
    await a.exit
    if (result.code !== 0) {
      failed++
      console.log(`trial ${i}: ${b.out.trim().split('\n').pop()}`)
    }
  }
  console.log(`${trials - failed} of ${trials} first connections carried data; ${failed} did not`)
  process.exit(failed === 0 ? 0 : 1)
}

function run(role, port, topic) {
  const child = spawn(process.execPath, [fileURLToPath(import.meta.url), '--peer', role, String(port), topic], { stdio: ['ignore', 'pipe', 'inherit'] })
  const state = { child, out: '', waiters: [] }
  child.stdout.setEncoding('utf8')
  child.stdout.on('data', (chunk) => {
    state.out += chunk
    for (const w of state.waiters.splice(0)) if (!w()) state.waiters.push(w)
  })
  state.exit = new Promise((resolve) => child.once('exit', (code, signal) => resolve({ code, signal })))
  state.line = (match) =>
    new Promise((resolve, reject) => {
      const check = () => {
        if (state.out.split('\n').some(match)) return resolve(), true
        return false
      }
      if (!check()) state.waiters.push(check)
      state.exit.then(() => reject(new Error(`${role} exited: ${state.out}`)))
    })
  return state
}

async function peer(role, port, topicHex) {
  const Hyperswarm = fromAgent('hyperswarm')
  const HyperDHT = fromAgent('hyperdht')
  const started = Date.now()
  if (role === 'A') await HyperDHT.bootstrapper(port, '127.0.0.1').ready()
  const swarm = new Hyperswarm({ dht: new HyperDHT({ bootstrap: [{ host: '127.0.0.1', port }], host: '127.0.0.1' }) })
  let first = true
  swarm.on('connection', (conn) => {
    conn.on('error', () => {})
    conn.write(Buffer.from(`hello from ${role}`))
    if (role !== 'B' || !first) return
    first = false
    conn.once('data', () => {
      console.log(`first connection carried data after ${Date.now() - started} ms`)
      process.exit(0)
    })
    conn.once('close', () => {
      console.log(`first connection closed after ${Date.now() - started} ms without data (half-open)`)
      process.exit(1)
    })
  })
  const joined = swarm.join(Buffer.from(topicHex, 'hex'), { server: true, client: true })
  await joined.flushed()
  console.log('announced')
  if (role === 'B') {
    setTimeout(() => {
      console.log(`no connection carried data within ${TRIAL_LIMIT_MS} ms`)
      process.exit(1)
    }, TRIAL_LIMIT_MS).unref()
  }
}
