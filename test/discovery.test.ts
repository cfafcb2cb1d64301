import fs from 'node:fs/promises'
import { createRequire } from 'node:module'
import path from 'node:path'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { newSecret } from './helpers/cli.ts'
import { writeFiles } from './helpers/files.ts'
import { useHarness } from './helpers/harness.ts'
import { repoRoot } from './helpers/paths.ts'
import { freePorts } from './helpers/ports.ts'
import { waitConverged } from './helpers/sync.ts'
import { stays } from './helpers/until.ts'

/**
 * DHT discovery on the folder topic: agents with no configured peers find each other through
 * local bootstrap nodes (hyperdht/testnet), or through a bootstrap node one of them runs.
 * Status says how each peer was found and its role. An agent of another folder on the same
 * DHT is never connected.
 */
const requireFromAgent = createRequire(path.join(repoRoot, 'packages/sync-agent/package.json'))
// eslint-disable-next-line @typescript-eslint/no-explicit-any
const createTestnet = requireFromAgent('hyperdht/testnet') as (size: number, opts?: { host?: string }) => Promise<{ bootstrap: Array<{ host: string; port: number }>; destroy(): Promise<void> }>

describe('DHT discovery', () => {
  const harness = useHarness()
  let testnet: Awaited<ReturnType<typeof createTestnet>>

  beforeAll(async () => {
    testnet = await createTestnet(3, { host: '127.0.0.1' })
  })

  afterAll(async () => {
    await testnet?.destroy()
  })

  it('two agents with no configured peers find each other on the topic; another folder stays out', async () => {
    const secret = await newSecret()
    const env = { SYNC_AGENT_BOOTSTRAP: testnet.bootstrap.map((b) => `${b.host}:${b.port}`).join(',') }
    const a = await harness.agent({ name: 'a', secret, env })
    const b = await harness.agent({ name: 'b', secret, env })
    const other = await harness.agent({ name: 'other', secret: await newSecret(), env })
    await writeFiles(a.folder, { 'found.txt': 'found on the DHT\n' })
    await Promise.all([a.start(), b.start(), other.start()])
    await waitConverged([a, b], { timeoutMs: 60_000 })
    expect(await fs.readFile(path.join(b.folder, 'found.txt'), 'utf8')).toBe('found on the DHT\n')
    const [sa, sb] = await Promise.all([a.status(), b.status()])
    const peerOfB = sb.peers.find((p) => p.connected)
    expect(peerOfB).toMatchObject({ deviceId: sa.deviceId, source: 'dht', role: 'rw' })
    await stays(async () => (await other.status()).peers.every((p) => !p.connected) && (await fs.readdir(other.folder)).length === 0, {
      durationMs: 2_000,
      message: 'the agent of another folder connects to nobody'
    })
  })

  it('an agent can be the bootstrap node of a private cluster', async () => {
    const secret = await newSecret()
    const [dhtPort] = await freePorts(1)
    const node = `127.0.0.1:${dhtPort}`
    const a = await harness.agent({ name: 'a', secret, env: { SYNC_AGENT_DHT_NODE: node } })
    const b = await harness.agent({ name: 'b', secret, env: { SYNC_AGENT_BOOTSTRAP: node } })
    await writeFiles(a.folder, { 'private.txt': 'private cluster\n' })
    await a.start()
    await a.waitForLog(/running a DHT bootstrap node/)
    await b.start()
    await waitConverged([a, b], { timeoutMs: 60_000 })
    expect((await b.status()).peers.find((p) => p.connected)).toMatchObject({ source: 'dht', role: 'rw' })
  })
})
