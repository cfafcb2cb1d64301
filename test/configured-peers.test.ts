import { createServer, type Server } from 'node:net'
import { afterEach, describe, expect, it } from 'vitest'
import type { PeerStatus } from '../packages/shared/dist/index.js'
import { deviceIdOf } from '../packages/sync-agent/dist/device-id.js'
import { newSecret } from './helpers/cli.ts'
import { useHarness } from './helpers/harness.ts'
import { HostilePeer } from './helpers/hostile-peer.ts'
import { parseRecords } from './helpers/hostile-scene.ts'
import { freePort } from './helpers/ports.ts'
import { requireFromAgent } from './helpers/paths.ts'
import { stays, until } from './helpers/until.ts'

// eslint-disable-next-line @typescript-eslint/no-explicit-any -- the Holepunch modules ship no types
const NoiseSecretStream: any = requireFromAgent('@hyperswarm/secret-stream')

/**
 * A configured peer that is down: its row says why (the socket's errno, not a protocol
 * error), the log says so once per outage at info (each retry at debug), not a warning at
 * every retry; once it is up the row is connected, and when it goes again that is said once more.
 */
describe('a configured peer that is down', () => {
  const harness = useHarness()

  it('shows ECONNREFUSED, logs it once per outage, connects when the peer comes up', async () => {
    const secret = await newSecret()
    const port = await freePort()
    const peerAddress = `127.0.0.1:${port}`
    const b = await harness.agent({ name: 'b', secret, peers: [peerAddress] })
    await b.start()
    const row = async () => ((await b.status()).peers as PeerStatus[]).find((p) => p.address === peerAddress)
    await until(async () => (await row())?.lastError === 'ECONNREFUSED', { timeoutMs: 20_000, message: 'the row says the peer refused the connection' })
    // retries at 0.2, 0.4, 0.8, 1.6 s (±25%): several within this window, and the row stays
    await stays(async () => (await row())?.lastError === 'ECONNREFUSED' && (await row())?.connected === false, { durationMs: 2_500, message: 'the row keeps saying why' })
    const about = () => parseRecords(b.stdout).filter((r) => r.peer === peerAddress)
    expect(about().filter((r) => r.level === 'warn' || r.level === 'error')).toEqual([])
    expect(about().filter((r) => r.msg === 'cannot reach a configured peer; trying again with a backoff (up to 10 s)')).toEqual([expect.objectContaining({ level: 'info', code: 'ECONNREFUSED' })])

    const a = await harness.agent({ name: 'a', secret, listenPort: port })
    await a.start()
    await until(async () => (await row())?.connected === true && (await row())?.lastError === null, { timeoutMs: 30_000, message: 'b connects once a is up' })
    await a.stop()
    await until(async () => about().filter((r) => r.msg === 'cannot reach a configured peer; trying again with a backoff (up to 10 s)').length === 2, { timeoutMs: 30_000, message: 'the new outage is said once more' })
    expect((await row())?.lastError).toBe('ECONNREFUSED')
  })
})

/**
 * Two agents that both list each other as peers connect twice and each drops the same
 * duplicate. The side whose dial is dropped can see it closed before the peer's proof: then
 * the configured peer is the device already connected (Noise proved its key), not a peer
 * that failed. Here the dialled address is a stand-in that completes Noise with the key of a
 * device connected inbound and closes, as a peer dropping our duplicate does.
 */
describe('a dial the peer drops as a duplicate', () => {
  const harness = useHarness()
  let server: Server | null = null
  let peer: HostilePeer | null = null
  afterEach(async () => {
    await new Promise<void>((resolve) => (server ? server.close(() => resolve()) : resolve()))
    await peer?.close()
  })

  it('shows the configured peer as the connected device, without an error, and does not keep dialling it', async () => {
    const secret = await newSecret()
    peer = await HostilePeer.create(secret)
    const keyPair = peer.keyPair
    let accepted = 0
    server = createServer((socket) => {
      accepted++
      socket.on('error', () => undefined)
      const stream = new NoiseSecretStream(false, socket, { keyPair })
      stream.on('error', () => undefined)
      stream.on('open', () => stream.destroy())
    })
    const port = await freePort()
    await new Promise<void>((resolve) => server?.listen(port, '127.0.0.1', resolve))
    const dialled = `127.0.0.1:${port}`
    const b = await harness.agent({ name: 'b', secret, peers: [dialled] })
    await b.start()
    // the device connects to b itself (inbound), with a valid proof
    await peer.connect(b.address).opened
    const deviceId = deviceIdOf(keyPair.publicKey)
    const rowOf = async () => ((await b.status()).peers as PeerStatus[]).find((p) => p.address === dialled)
    await until(async () => {
      const row = await rowOf()
      return row?.connected === true && row.deviceId === deviceId && row.lastError === null
    }, { timeoutMs: 30_000, message: `the configured ${dialled} shows as the device connected inbound (${deviceId.slice(0, 7)})` })
    // the inbound connection is listed once: as the configured peer
    expect(((await b.status()).peers as PeerStatus[]).filter((p) => p.deviceId === deviceId)).toHaveLength(1)
    const dials = accepted
    await stays(() => accepted === dials, { durationMs: 3_000, message: 'no more dials while the device is connected' })
  })
})
