import fs from 'node:fs/promises'
import { createRequire } from 'node:module'
import path from 'node:path'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { newSecret, runCli } from './helpers/cli.ts'
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
    // a fresh node that looks for peers expects them: alone, it does not serve its empty folder
    await Promise.all([b.start(), other.start()])
    await stays(
      async () => {
        const s = await b.status()
        return !s.ready && /waiting for a peer/.test(String(s.readyReason))
      },
      { durationMs: 1_500, message: 'b, alone with discovery on, is not ready' }
    )
    await a.start()
    await waitConverged([a, b], { timeoutMs: 60_000 })
    expect(await fs.readFile(path.join(b.folder, 'found.txt'), 'utf8')).toBe('found on the DHT\n')
    const [sa, sb] = await Promise.all([a.status(), b.status()])
    const peerOfB = sb.peers.find((p) => p.connected)
    expect(peerOfB).toMatchObject({ deviceId: sa.deviceId, source: 'dht', role: 'rw' })
    // status says what discovery did: each found the other, one of them opened the connection
    for (const s of [sa, sb]) {
      expect(s.discovery).toMatchObject({ dht: env.SYNC_AGENT_BOOTSTRAP.split(','), node: null, network: 'online', devicesFound: 1 })
      expect(s.discovery!.lookupsDone).toBeGreaterThanOrEqual(1)
    }
    expect(sa.discovery!.connectsOpened + sb.discovery!.connectsOpened).toBeGreaterThanOrEqual(1)
    expect(sa.discovery!.connectsAccepted + sb.discovery!.connectsAccepted).toBeGreaterThanOrEqual(1)
    await stays(async () => (await other.status()).peers.every((p) => !p.connected) && (await fs.readdir(other.folder)).length === 0, {
      durationMs: 2_000,
      message: 'the agent of another folder connects to nobody'
    })
    expect(await other.status()).toMatchObject({ ready: false, discovery: { devicesFound: 0, connectsOpened: 0, connectsAccepted: 0 } })
  })

  // Three fresh pairs: on hyperdht 6.33-6.34 the first connection between two processes on one
  // host was half-open in 7 of 10 runs (the client saw it open, the server never did; it died
  // ~13 s later: holepunchto/hyperdht#304), which cost every pair a failed session or more.
  it('an agent can be the bootstrap node of a private cluster, and the first connection found works', async () => {
    for (let round = 1; round <= 3; round++) {
      const secret = await newSecret()
      const [dhtPort] = await freePorts(1)
      const node = `127.0.0.1:${dhtPort}`
      const a = await harness.agent({ name: `a${round}`, secret, env: { SYNC_AGENT_DHT_NODE: node } })
      const b = await harness.agent({ name: `b${round}`, secret, env: { SYNC_AGENT_BOOTSTRAP: node } })
      await writeFiles(a.folder, { 'private.txt': 'private cluster\n' })
      await a.start()
      await a.waitForLog(/running a DHT bootstrap node/)
      await b.start()
      await waitConverged([a, b], { timeoutMs: 60_000 })
      const [sa, sb] = await Promise.all([a.status(), b.status()])
      expect(sb.peers.find((p) => p.connected)).toMatchObject({ source: 'dht', role: 'rw' })
      expect(sa.discovery).toMatchObject({ node, dht: [node], devicesFound: 1 })
      expect(sb.discovery).toMatchObject({ node: null, dht: [node], devicesFound: 1 })
      const failedSessions = [a, b].flatMap((x) => x.stdout.split('\n').filter((l) => /before the peer proved|did not finish the handshake/.test(l)))
      expect(failedSessions, `round ${round}: no connection failed before it became a session`).toEqual([])
      if (round === 1) {
        const human = (await runCli(['status', '--control', a.control])).stdout
        expect(human).toContain(`discover DHT ${node} (runs the node ${node}), online: 1 device found in `)
      }
      if (round < 3) {
        await b.stop()
        await a.stop()
      } else {
        // the node goes first: b cannot unannounce, and still stops well within docker stop's 10 s
        await a.stop()
        await b.stop()
        expect(b.stdout).toContain('closing discovery without it')
      }
    }
  })
})
