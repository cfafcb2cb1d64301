import { randomBytes } from 'node:crypto'
import fs from 'node:fs/promises'
import path from 'node:path'
import { describe, expect, it } from 'vitest'
import type { StatusReport } from '../packages/shared/dist/index.js'
import { newSecret, runCli } from './helpers/cli.ts'
import { useHarness, type Harness } from './helpers/harness.ts'
import { waitConverged, waitLocalSettled } from './helpers/sync.ts'
import { freePort } from './helpers/ports.ts'
import { until } from './helpers/until.ts'

/**
 * Bandwidth limits (maxSendKiBps, maxRecvKiBps) on real agents: a fresh peer's sync gets
 * everything, byte for byte, no faster than the limit (a lower bound on time only: a slow
 * machine is slower, never faster), without a request timing out on the slow link, and
 * status shows the limits and the traffic.
 */
const MiB = 1024 * 1024
const UPLOADS = 3

async function seed(folder: string): Promise<void> {
  await fs.mkdir(path.join(folder, 'themes/t'), { recursive: true })
  await fs.writeFile(path.join(folder, 'themes/t/style.css'), 'body { color: #123 }\n')
  await fs.mkdir(path.join(folder, 'uploads/2026/11'), { recursive: true })
  for (let i = 0; i < UPLOADS; i++) await fs.writeFile(path.join(folder, `uploads/2026/11/${i}.jpg`), randomBytes(MiB))
}

/** seconds from B's start until both agents are converged (trees hashed and equal) */
async function freshSync(harness: Harness, env: { a?: Record<string, string>; b?: Record<string, string> }) {
  const secret = await newSecret()
  const a = await harness.agent({ name: 'a', secret, env: env.a ?? {} })
  await seed(a.folder)
  await a.start()
  await waitLocalSettled(a, 20_000)
  const b = await harness.agent({ name: 'b', secret, peers: [a.address], env: env.b ?? {} })
  const started = performance.now()
  await b.start()
  await waitConverged([a, b], { timeoutMs: 60_000 })
  const seconds = (performance.now() - started) / 1000
  const [sa, sb] = (await Promise.all([a.status(), b.status()])) as unknown as [StatusReport, StatusReport]
  return { a, b, sa, sb, seconds }
}

describe('bandwidth limits', () => {
  const harness = useHarness()

  it('a send limit on the node that has the files holds for a fresh peer, and status shows it', async () => {
    const { a, sa, sb, seconds } = await freshSync(harness, { a: { SYNC_AGENT_MAX_SEND_KIBPS: '1024' } })
    // 3 MiB of uploads less the bucket's 256 KiB burst, at 1 MiB/s
    expect(seconds).toBeGreaterThanOrEqual((UPLOADS * MiB - 256 * 1024) / MiB)
    expect(sa.transfer).toMatchObject({ maxSendKiBps: 1024, maxRecvKiBps: 0 })
    expect(sa.transfer.sentBytes).toBeGreaterThanOrEqual(UPLOADS * MiB)
    expect(sb.transfer.receivedBytes).toBeGreaterThanOrEqual(UPLOADS * MiB)
    expect(sb.transfer.maxRecvKiBps).toBe(0)
    // and per peer, on the connection
    expect(sb.peers.find((p) => p.connected)?.receivedBytes).toBeGreaterThanOrEqual(UPLOADS * MiB)
    expect(sa.peers.find((p) => p.connected)?.rateLimited).toBe(true)
    expect(sb.peers.find((p) => p.connected)?.rateLimited).toBe(false)
    // nothing timed out on the slow link (a wait fails only when the connection carries nothing)
    expect(sb.errors.map((e) => e.code)).toEqual([])
    const human = await runCli(['status', '--control', a.control])
    expect(human.stdout).toMatch(/^network  received .+ \(no limit\), sent \d+\.\d MiB \(at most 1024 KiB\/s\)$/m)
  })

  it('a file asked for now (GET /files/) is served ahead of the backlog queued behind the limit', async () => {
    const secret = await newSecret()
    const a = await harness.agent({ name: 'a', secret, env: { SYNC_AGENT_MAX_SEND_KIBPS: '1024' } })
    await fs.mkdir(path.join(a.folder, 'uploads/2026/11'), { recursive: true })
    // 24 MiB of uploads; B keeps 16 MiB in flight: 4 files, asked for as 8 windows of 2 MiB, 4
    // served at once and 4 queued on A. The small old one (last by name and by date) waits on B.
    for (let i = 0; i < 6; i++) await fs.writeFile(path.join(a.folder, `uploads/2026/11/${i}.jpg`), randomBytes(4 * MiB))
    const old = randomBytes(100 * 1024)
    const oldPath = path.join(a.folder, 'uploads/2026/11/zz-old.jpg')
    await fs.writeFile(oldPath, old)
    await fs.utimes(oldPath, new Date('2020-01-01'), new Date('2020-01-01'))
    await a.start()
    await waitLocalSettled(a, 20_000)
    const http = await freePort()
    const b = await harness.agent({ name: 'b', secret, peers: [a.address], env: { SYNC_AGENT_HTTP: String(http) } })
    await b.start()
    const received = async () => ((await b.status()) as unknown as StatusReport).transfer.receivedBytes
    // B asked for its first 16 MiB and the first bytes came
    await until(async () => (await received()) > MiB, { timeoutMs: 20_000, message: 'B receives the uploads' })
    const before = await received()
    const res = await fetch(`http://127.0.0.1:${http}/files/uploads/2026/11/zz-old.jpg`)
    expect(res.status).toBe(200)
    expect(Buffer.from(await res.arrayBuffer()).equals(old)).toBe(true)
    // A served it beside the windows it was sending, not after the four it had queued (then
    // at least 8 MiB more would have come first)
    expect((await received()) - before).toBeLessThan(6 * MiB)
  })

  it('limitLan off: a peer at a LAN address (here loopback) is left out of the limits', async () => {
    const { a, sa, sb } = await freshSync(harness, { a: { SYNC_AGENT_MAX_SEND_KIBPS: '8', SYNC_AGENT_LIMIT_LAN: 'false' } })
    // 3 MiB at 8 KiB/s would take over 6 minutes: done within freshSync's minute, and shown
    expect(sa.transfer).toMatchObject({ maxSendKiBps: 8 })
    expect(sa.transfer.sentBytes).toBeGreaterThanOrEqual(UPLOADS * MiB)
    expect(sa.peers.find((p) => p.connected)?.rateLimited).toBe(false)
    expect(sb.errors.map((e) => e.code)).toEqual([])
    const human = await runCli(['status', '--control', a.control])
    expect(human.stdout).toMatch(/^network .*\(at most 8 KiB\/s\), LAN peers not limited$/m)
  })

  it('a receive limit on the fresh node holds too, and its own changes still go out', async () => {
    const { a, b, sb, seconds } = await freshSync(harness, { b: { SYNC_AGENT_MAX_RECV_KIBPS: '1024' } })
    expect(seconds).toBeGreaterThanOrEqual((UPLOADS * MiB - 256 * 1024) / MiB)
    expect(sb.transfer).toMatchObject({ maxSendKiBps: 0, maxRecvKiBps: 1024 })
    expect(sb.errors.map((e) => e.code)).toEqual([])
    const upload = randomBytes(200 * 1024)
    await fs.writeFile(path.join(b.folder, 'uploads/2026/11/from-b.jpg'), upload)
    await until(async () => (await fs.readFile(path.join(a.folder, 'uploads/2026/11/from-b.jpg')).catch(() => null))?.equals(upload) === true, {
      timeoutMs: 20_000,
      message: 'A has the upload made on B'
    })
  })
})
