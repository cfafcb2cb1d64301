import { randomBytes } from 'node:crypto'
import fs from 'node:fs/promises'
import path from 'node:path'
import { describe, expect, it } from 'vitest'
import { runCli, newSecret } from './helpers/cli.ts'
import { writeFiles } from './helpers/files.ts'
import { useHarness } from './helpers/harness.ts'
import { waitConverged, waitLocalSettled } from './helpers/sync.ts'
import { freePorts } from './helpers/ports.ts'
import { scrape } from './helpers/metrics.ts'
import { until } from './helpers/until.ts'
import type { StatusReport } from '../packages/shared/dist/index.js'

/**
 * An encrypted (blind) peer between two read-write peers that never connect directly: it
 * stores and forwards their drives as ciphertext, so they sync through it, while its data dir
 * holds no file name or content in plain text and its folder stays untouched.
 */
async function filesContaining(dir: string, needle: Buffer): Promise<{ hits: string[]; scanned: number; bytes: number }> {
  const hits: string[] = []
  let scanned = 0
  let bytes = 0
  for (const entry of await fs.readdir(dir, { recursive: true, withFileTypes: true })) {
    if (!entry.isFile()) continue
    const file = path.join(entry.parentPath, entry.name)
    const data = await fs.readFile(file)
    scanned++
    bytes += data.length
    if (data.includes(needle)) hits.push(file)
  }
  return { hits, scanned, bytes }
}

describe('encrypted (blind) peers', () => {
  const harness = useHarness()

  it('relay data between two read-write peers without being able to read it', async () => {
    const secret = await newSecret()
    const en = (await runCli(['secret', 'encrypted', secret])).stdout.trim()
    expect(en).toMatch(/^sa1en-/)
    const nameMarker = `NAMEMARK${randomBytes(10).toString('hex')}`
    const contentMarker = `BODYMARK${randomBytes(10).toString('hex')}`
    const a = await harness.agent({ name: 'a', secret })
    const e = await harness.agent({ name: 'e', secret: en, peers: [a.address] })
    const [httpB] = (await freePorts(1)) as [number]
    const b = await harness.agent({ name: 'b', secret, peers: [e.address], env: { SYNC_AGENT_HTTP: `127.0.0.1:${httpB}` } })
    await writeFiles(a.folder, {
      [`notes-${nameMarker}.txt`]: `top secret ${contentMarker}\n`.repeat(200),
      [`dir-${nameMarker}/inner.txt`]: contentMarker
    })
    await a.start()
    await e.start()
    await b.start()
    await writeFiles(b.folder, { [`from-b-${nameMarker}.txt`]: `b says ${contentMarker}\n` })
    const { trees } = await waitConverged([a, b], { timeoutMs: 60_000 })
    expect(trees[1]!.has(`notes-${nameMarker}.txt`)).toBe(true)
    expect(trees[0]!.has(`from-b-${nameMarker}.txt`)).toBe(true)
    // no peer with a folder is connected to B: A's contents came as Hypercore blocks, through E
    const metricsB = await scrape(httpB)
    expect(metricsB.get('sync_agent_bytes_in_by_source_total{source="hypercore"}')).toBeGreaterThan(200 * 30)
    expect(metricsB.get('sync_agent_bytes_in_by_source_total{source="peer-folder"}')).toBe(0)

    const [sa, se, sb] = await Promise.all([a.status(), e.status(), b.status()])
    expect(se.role).toBe('en')
    expect(se.members).toBe(2)
    expect(se.bytes).toBeGreaterThan(200 * 30) // it stores the ciphertext of A's file
    expect(sa.peers.filter((p) => p.connected).map((p) => p.deviceId)).toEqual([se.deviceId])
    expect(sb.peers.filter((p) => p.connected).map((p) => p.deviceId)).toEqual([se.deviceId])
    expect(await fs.readdir(e.folder)).toEqual([])

    // E holds the data (it served B), but no name or content in plain text
    for (const needle of [nameMarker, contentMarker]) {
      const { hits, scanned, bytes } = await filesContaining(e.data, Buffer.from(needle))
      expect(scanned).toBeGreaterThan(0)
      expect(bytes).toBeGreaterThan(0)
      expect(hits, `${needle} in plain text under E's data dir`).toEqual([])
    }
    // and E's log names no file
    expect(e.logs.includes(nameMarker)).toBe(false)
  })

  it('reports inSync only once it holds every block the peers claim', async () => {
    const secret = await newSecret()
    const en = (await runCli(['secret', 'encrypted', secret])).stdout.trim()
    const a = await harness.agent({ name: 'a', secret })
    await fs.mkdir(path.join(a.folder, 'uploads'), { recursive: true })
    for (let i = 0; i < 8; i++) await fs.writeFile(path.join(a.folder, `uploads/${i}.bin`), randomBytes(8 * 1024 * 1024))
    await a.start()
    await waitLocalSettled(a, 60_000)
    const e = await harness.agent({ name: 'e', secret: en, peers: [a.address] })
    await e.start()
    // while the 64 MiB of blocks arrive: not in sync, the blocks it lacks pending
    const behind = await until(async () => {
      const s = (await e.tryStatus()) as unknown as StatusReport | undefined
      return s && !s.inSync && s.pending > 0 ? s : null
    }, { timeoutMs: 30_000, intervalMs: 10, message: 'E says it is behind while the blocks arrive' })
    expect(behind.state).toBe('syncing')
    const done = (await until(async () => {
      const s = (await e.status()) as unknown as StatusReport
      return s.inSync ? s : null
    }, { timeoutMs: 60_000, message: 'E is in sync' })) as StatusReport
    expect(done).toMatchObject({ state: 'idle', pending: 0 })
    expect(done.bytes).toBeGreaterThanOrEqual(64 * 1024 * 1024)
  })

  it('is in sync again after the writer replaced a file while it was away (the old version\'s blocks are gone from the writer)', async () => {
    const secret = await newSecret()
    const en = (await runCli(['secret', 'encrypted', secret])).stdout.trim()
    const a = await harness.agent({ name: 'a', secret })
    await fs.mkdir(path.join(a.folder, 'uploads'), { recursive: true })
    await fs.writeFile(path.join(a.folder, 'uploads/first.bin'), randomBytes(1024 * 1024))
    await a.start()
    await waitLocalSettled(a, 30_000)
    const e = await harness.agent({ name: 'e', secret: en, peers: [a.address] })
    await e.start()
    await until(async () => {
      const s = (await e.status()) as unknown as StatusReport
      return s.inSync && s.peers.some((p) => p.connected && p.lastExchangeAt !== null)
    }, { timeoutMs: 30_000, message: 'E is in sync after an exchange with A' })
    await e.stop()
    // while E is away: a large file published, then replaced (its first version's blocks released)
    const big = path.join(a.folder, 'uploads/video.mp4')
    await fs.writeFile(big, randomBytes(4 * 1024 * 1024))
    await waitLocalSettled(a, 30_000)
    await fs.writeFile(big, randomBytes(4 * 1024 * 1024))
    await waitLocalSettled(a, 30_000)
    await e.start()
    const done = (await until(async () => {
      const s = (await e.status()) as unknown as StatusReport
      // in sync after an exchange with A on this run (before it connects, E has nothing to wait for)
      return s.inSync && s.peers.some((p) => p.connected && p.lastExchangeAt !== null) ? s : null
    }, { timeoutMs: 30_000, message: 'E is in sync after an exchange with A, not waiting for blocks no peer has' })) as StatusReport
    expect(done.pending).toBe(0)
    // it holds the new version's blocks: A's blob core minus the released 4 MiB
    expect(done.bytes).toBeGreaterThanOrEqual(5 * 1024 * 1024)
  })
})
