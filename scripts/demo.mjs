#!/usr/bin/env node
// The quick-start job: two agents on two temp folders, a few files created on each,
// `sync-agent status` showing them in sync. Stops both agents at the end.
import { spawn, execFileSync } from 'node:child_process'
import { mkdtempSync, mkdirSync, writeFileSync, readdirSync, statSync, rmSync } from 'node:fs'
import { createServer } from 'node:net'
import { tmpdir } from 'node:os'
import { join, relative, dirname } from 'node:path'
import { fileURLToPath } from 'node:url'

const root = join(dirname(fileURLToPath(import.meta.url)), '..')
const bin = join(root, 'packages/sync-agent/bin/sync-agent.js')
const cli = (...args) => execFileSync(process.execPath, [bin, ...args], { encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'] })

function freePort() {
  return new Promise((resolve) => {
    const s = createServer().listen(0, '127.0.0.1', () => {
      const { port } = s.address()
      s.close(() => resolve(port))
    })
  })
}

function tree(dir) {
  const out = []
  const walk = (d) => {
    for (const name of readdirSync(d).sort()) {
      const p = join(d, name)
      const st = statSync(p)
      if (st.isDirectory()) walk(p)
      else out.push(`${relative(dir, p)} (${st.size} B)`)
    }
  }
  walk(dir)
  return out
}

async function until(what, fn, timeoutMs = 30_000) {
  const deadline = Date.now() + timeoutMs
  for (;;) {
    try {
      if (await fn()) return
    } catch {}
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`)
    await new Promise((r) => setTimeout(r, 100))
  }
}

const base = mkdtempSync(join(tmpdir(), 'sync-agent-demo-'))
const secret = cli('secret', 'new').trim()
const [portA, portB] = [await freePort(), await freePort()]
const agents = []
for (const [name, port, peer] of [['a', portA, portB], ['b', portB, portA]]) {
  const folder = join(base, name, 'wp-content')
  const data = join(base, name, 'state')
  mkdirSync(folder, { recursive: true })
  agents.push({ name, folder, data, port, peer })
}
// a few files on each side before they meet
const [a, b] = agents
mkdirSync(join(a.folder, 'themes/twentytwentyfour'), { recursive: true })
writeFileSync(join(a.folder, 'themes/twentytwentyfour/style.css'), '/* Theme Name: Twenty Twenty-Four */\n')
writeFileSync(join(a.folder, 'themes/twentytwentyfour/functions.php'), '<?php // theme functions\n')
mkdirSync(join(b.folder, 'uploads/2026/11'), { recursive: true })
writeFileSync(join(b.folder, 'uploads/2026/11/photo.jpg'), Buffer.alloc(200_000, 7))
mkdirSync(join(b.folder, 'plugins/hello'), { recursive: true })
writeFileSync(join(b.folder, 'plugins/hello/hello.php'), '<?php /* Plugin Name: Hello */\n')

console.log(`demo folder: ${base}\nsecret: ${secret.slice(0, 10)}… (shared by both agents)\n`)
for (const ag of agents) {
  ag.child = spawn(process.execPath, [bin, 'start'], {
    env: {
      ...process.env,
      SYNC_AGENT_FOLDER: ag.folder,
      SYNC_AGENT_DATA: ag.data,
      SYNC_AGENT_SECRET: secret,
      SYNC_AGENT_LISTEN: `127.0.0.1:${ag.port}`,
      SYNC_AGENT_PEERS: `127.0.0.1:${ag.peer}`,
      SYNC_AGENT_LOG_LEVEL: 'warn'
    },
    stdio: ['ignore', 'inherit', 'inherit']
  })
}
const T0 = Date.now(); const lap = (m) => process.env.DEMO_DEBUG && console.log(`[${Date.now() - T0} ms] ${m}`)
const status = (ag) => JSON.parse(cli('status', '--json', '--control', join(ag.data, 'control.sock')))
let code = 0
try {
  await until('both agents in sync', () => agents.every((ag) => {
    const s = status(ag)
    lap(`${ag.name}: inSync=${s.inSync} ready=${s.ready} files=${s.files} pending=${s.pending}`)
    return s.inSync && s.ready && s.files === 4
  }))
  lap('in sync')
  // one more edit after they met, to show live propagation
  const t0 = Date.now()
  writeFileSync(join(a.folder, 'uploads/2026/11/new-upload.png'), Buffer.alloc(50_000, 1))
  await until('the new upload on b', () => tree(b.folder).some((l) => l.startsWith('uploads/2026/11/new-upload.png (50000')))
  console.log(`a new upload on a reached b in ${Date.now() - t0} ms\n`)
  await until('both agents in sync', () => agents.every((ag) => status(ag).inSync))
  for (const ag of agents) {
    console.log(`── sync-agent status (agent ${ag.name}) ──`)
    console.log(cli('status', '--control', join(ag.data, 'control.sock')))
    console.log(`files in ${ag.name}/wp-content:\n  ${tree(ag.folder).join('\n  ')}\n`)
  }
  const same = JSON.stringify(tree(a.folder)) === JSON.stringify(tree(b.folder))
  console.log(same ? 'both folders are identical ✓' : 'folders differ ✗')
  if (!same) code = 1
} catch (err) {
  console.error(String(err))
  code = 1
} finally {
  await Promise.all(agents.map((ag) => new Promise((r) => {
    ag.child.once('exit', r)
    ag.child.kill('SIGTERM')
  })))
  lap('stopped')
  rmSync(base, { recursive: true, force: true })
}
process.exit(code)
