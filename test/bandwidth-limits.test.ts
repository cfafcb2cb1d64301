import { randomBytes } from 'node:crypto'
import fs from 'node:fs/promises'
import path from 'node:path'
import { describe, expect, it } from 'vitest'
import type { StatusReport } from '../packages/shared/dist/index.js'
import { newSecret, runCli } from './helpers/cli.ts'
import { useHarness, type Harness } from './helpers/harness.ts'
import { waitConverged } from './helpers/sync.ts'
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
  await until(async () => (await a.status()).state === 'idle', { timeoutMs: 20_000, message: 'A indexed its folder' })
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
    // nothing timed out on the slow link (a wait fails only when the connection carries nothing)
    expect(sb.errors.map((e) => e.code)).toEqual([])
    const human = await runCli(['status', '--control', a.control])
    expect(human.stdout).toMatch(/^network  received .+ \(no limit\), sent \d+\.\d MiB \(at most 1024 KiB\/s\)$/m)
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
